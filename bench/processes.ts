// Child processes the benchmark starts (the box office, the canned-reply ceiling), and what it
// reads about them from /proc: resident memory and CPU time. Servers run in their own process
// so their memory can be measured and the load generator does not share their event loop.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Child {
  readonly pid: number;
  readonly port: number;
  readonly logFile: string;
  /** Stops the child (SIGTERM, then SIGKILL after a timeout) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** A TypeScript entry point, run through tsx (resolved from `cwd`'s node_modules). */
  script?: string;
  /** Or plain arguments for node, e.g. ['bin/box-office.js', 'serve']. */
  args?: string[];
  /** Working directory of the child (default: this process's). */
  cwd?: string;
  env: Record<string, string>;
  label: string;
  logDir: string;
  nodeArgs?: string[];
  timeoutMs?: number;
  /**
   * How the child says it is ready. Absent: it sends {ready, port} over IPC (bench/server.ts,
   * bench/ceiling.ts). Present: it listens on this port, and is ready once GET `path` answers 200
   * (a compiled `box-office serve`, which knows nothing of the bench).
   */
  http?: { port: number; path: string };
}

const live = new Set<ChildProcess>();

/** Kills every child still running; for an interrupted benchmark. */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls GET http://127.0.0.1:port/path until it answers 200. */
async function waitForHttp(port: number, path: string, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
}

/** Starts a server child and waits for it to be ready (IPC message, or an HTTP probe). */
export async function startChild(options: StartOptions): Promise<Child> {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${options.label}.log`);
  const logFd = openSync(logFile, 'w');
  const entry = options.script !== undefined ? ['--import', 'tsx', options.script] : (options.args ?? []);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    // The server's logs go to a file: a pipe the parent must drain would cost the load
    // generator CPU, and a full pipe would stall the server.
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  live.add(child);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      live.delete(child);
      resolve();
    }),
  );

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.label} did not start in time; see ${logFile}`)),
      options.timeoutMs ?? 120_000,
    );
    const http = options.http;
    if (http === undefined) {
      child.on('message', (message: { ready?: boolean; port?: number }) => {
        if (message.ready === true && typeof message.port === 'number') {
          clearTimeout(timer);
          resolve(message.port);
        }
      });
    } else {
      waitForHttp(http.port, http.path, () => gone).then(
        () => {
          clearTimeout(timer);
          if (!gone) resolve(http.port);
        },
        (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
      );
    }
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${options.label} exited with ${code} before it was ready; see ${logFile}`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });

  return {
    pid: child.pid!,
    port,
    logFile,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface Memory {
  rssKb: number;
  /** The process's lifetime peak RSS (VmHWM). */
  hwmKb: number;
}

export function readMemory(pid: number): Memory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
  } catch {
    return null;
  }
}

const TICKS_PER_SECOND = 100;

interface ProcStat {
  ppid: number;
  /** utime + stime, in ms. */
  ownMs: number;
  /** cutime + cstime: children that exited and were waited for, in ms. */
  reapedMs: number;
}

function readProcStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (i: number) => (Number(fields[i]) * 1000) / TICKS_PER_SECOND;
    return { ppid: Number(fields[1]), ownMs: ms(11) + ms(12), reapedMs: ms(13) + ms(14) };
  } catch {
    return null;
  }
}

/** User plus system CPU time of a process (all its threads), in ms. */
export function readCpuMs(pid: number): number {
  return readProcStat(pid)?.ownMs ?? 0;
}

/** The parent of a process, or null when it cannot be read. */
export function parentOf(pid: number): number | null {
  return readProcStat(pid)?.ppid ?? null;
}

/** A process's command name (/proc/<pid>/comm), or null. */
export function commandOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * CPU used so far by a process and everything under it (a PostgreSQL postmaster and its
 * backends): the sum over the live processes of their own time plus the time of their children
 * that already exited. A backend that exits between two readings moves its time into its
 * parent's reaped time, so the difference of two readings is the CPU the whole tree used in
 * between, churn included.
 */
export function processTreeCpu(root: number): { cpuMs: number; processes: number } | null {
  const byParent = new Map<number, Array<{ pid: number; stat: ProcStat }>>();
  let rootStat: ProcStat | null = null;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const stat = readProcStat(pid);
    if (stat === null) continue;
    if (pid === root) rootStat = stat;
    const siblings = byParent.get(stat.ppid);
    if (siblings === undefined) byParent.set(stat.ppid, [{ pid, stat }]);
    else siblings.push({ pid, stat });
  }
  if (rootStat === null) return null;
  let cpuMs = rootStat.ownMs + rootStat.reapedMs;
  let processes = 1;
  const queue = [root];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.pop()!) ?? []) {
      cpuMs += child.stat.ownMs + child.stat.reapedMs;
      processes++;
      queue.push(child.pid);
    }
  }
  return { cpuMs, processes };
}

/** Busy and total jiffies over all CPUs of the machine. */
export function readMachineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

export interface Watch {
  /** Stops sampling; returns the peak RSS seen and CPU used since start. */
  stop(): { peakRssKb: number; serverCpuMs: number; machineBusy: number };
}

/** Samples a server's RSS every 100 ms and measures its CPU and the machine's over a window. */
export function watch(pid: number | undefined): Watch {
  let peakRssKb = 0;
  const sample = () => {
    if (pid === undefined) return;
    const memory = readMemory(pid);
    if (memory !== null) peakRssKb = Math.max(peakRssKb, memory.rssKb);
  };
  sample();
  const timer = setInterval(sample, 100);
  const cpuBefore = pid === undefined ? 0 : readCpuMs(pid);
  const machineBefore = readMachineCpu();
  return {
    stop() {
      clearInterval(timer);
      sample();
      const machine = readMachineCpu();
      return {
        peakRssKb,
        serverCpuMs: pid === undefined ? 0 : readCpuMs(pid) - cpuBefore,
        machineBusy: (machine.busy - machineBefore.busy) / Math.max(1, machine.total - machineBefore.total),
      };
    },
  };
}

/**
 * This machine is shared. Waits (up to `maxWaitMs`) for a second in which the whole box is
 * less than `threshold` busy, and returns how busy the last second was, for the report.
 */
export async function waitForQuiet(maxWaitMs: number, threshold = 0.15): Promise<number> {
  const until = Date.now() + maxWaitMs;
  for (;;) {
    const before = readMachineCpu();
    await sleep(1000);
    const after = readMachineCpu();
    const busy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    if (busy < threshold || Date.now() >= until) return busy;
  }
}
