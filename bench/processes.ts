// Child processes the benchmark starts (the box office, the canned-reply ceiling), and what it
// reads about them from /proc: resident memory and CPU time. Servers run in their own process
// so their memory can be measured and the load generator does not share their event loop.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Child {
  readonly pid: number;
  readonly port: number;
  readonly logFile: string;
  /** Stops the child (SIGTERM, then SIGKILL after a timeout) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The TypeScript entry point, run through tsx. */
  script: string;
  env: Record<string, string>;
  label: string;
  logDir: string;
  nodeArgs?: string[];
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();

/** Kills every child still running; for an interrupted benchmark. */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}

/** Starts a server child and waits for it to report its port over IPC. */
export async function startChild(options: StartOptions): Promise<Child> {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${options.label}.log`);
  const logFd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', options.script], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    // The server's logs go to a file: a pipe the parent must drain would cost the load
    // generator CPU, and a full pipe would stall the server.
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  live.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.label} did not start in time; see ${logFile}`)),
      options.timeoutMs ?? 120_000,
    );
    child.on('message', (message: { ready?: boolean; port?: number }) => {
      if (message.ready === true && typeof message.port === 'number') {
        clearTimeout(timer);
        resolve(message.port);
      }
    });
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

/** User plus system CPU time of a process, in ms. */
export function readCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
