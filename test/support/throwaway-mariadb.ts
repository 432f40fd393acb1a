// A throwaway MariaDB server that a test starts and owns, for the fault tests: the machine's
// shared MariaDB (127.0.0.1:3306) is not ours to restart, stop or freeze, so this one runs from
// the installed binaries (mariadb-install-db, mariadbd) on a free port with its own data
// directory, socket and pid file in a temporary directory, removed on stop() and at exit.
//
// Unlike PostgreSQL, mariadbd is one process (threads, no children): every fault is a signal to
// the one pid this module spawned, and nothing else is ever signalled. Restarts keep the data
// directory, so a crash (SIGKILL) is followed by InnoDB's crash recovery, as on a real server.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import mysql from 'mysql2/promise';
import { type ThrowawayState, exited, freePort, sleep, waitExit } from './throwaway-postgres.ts';

/** Initialising a data directory takes ~3 s here; a slow shared machine may need much more. */
const INSTALL_TIMEOUT_MS = 120_000;
/** From spawn (or a crash restart, with InnoDB recovery) to accepting connections. */
const START_TIMEOUT_MS = 60_000;
/** A clean shutdown (SIGTERM) before we give up and SIGKILL. */
const SHUTDOWN_TIMEOUT_MS = 20_000;
/** How often we try to connect while the server starts. */
const POLL_INTERVAL_MS = 50;
/** Small: the server runs beside the service and its load on a shared two-core machine. */
const INNODB_BUFFER_POOL = '64M';
/** Signals that end this process without running its 'exit' handlers. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The binaries, from MARIADBD / MARIADB_INSTALL_DB when set, else PATH and the sbin directories. */
function findBinary(name: string, override: string | undefined): string | undefined {
  const candidates =
    override !== undefined && override !== ''
      ? [override]
      : [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
          .filter((dir) => dir !== '')
          .map((dir) => join(dir, name));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const binaries = () => ({
  mariadbd: findBinary('mariadbd', process.env.MARIADBD),
  installDb: findBinary('mariadb-install-db', process.env.MARIADB_INSTALL_DB),
});

/** Why no throwaway MariaDB can be started here, or undefined when it can. */
export function whyMariadbUnavailable(): string | undefined {
  const { mariadbd, installDb } = binaries();
  const missing = [mariadbd ? undefined : 'mariadbd', installDb ? undefined : 'mariadb-install-db'].filter(Boolean);
  if (missing.length === 0) return undefined;
  const verb = missing.length === 1 ? 'is' : 'are';
  return `${missing.join(' and ')} ${verb} not installed (apt-get install mariadb-server; or set MARIADBD / MARIADB_INSTALL_DB)`;
}

export const mariadbAvailable = (): boolean => whyMariadbUnavailable() === undefined;

export interface ThrowawayMariadb {
  /** `mysql://root@127.0.0.1:<port>/` (no database: create one per test). */
  url: string;
  port: number;
  /** The temporary directory: data directory, socket, pid file, error log. */
  dir: string;
  state(): ThrowawayState;
  /** mariadbd's pid while it runs. */
  pid(): number | undefined;
  /** Clean shutdown (thaws first when frozen), then removes the directory. Idempotent. */
  stop(): Promise<void>;
  /**
   * `crash`: SIGKILL, as a power cut (InnoDB recovers on the next start); `clean`: SIGTERM, a
   * normal shutdown. Then starts again on the same port and data; resolves once it accepts
   * connections.
   */
  restart(mode: 'crash' | 'clean'): Promise<void>;
  /** Clean shutdown, stays down `ms`, starts again; resolves once it accepts connections. */
  stopFor(ms: number): Promise<void>;
  /** SIGSTOP: open connections hang, new ones are queued by the kernel, until thaw(). */
  freeze(): Promise<void>;
  /** SIGCONT. */
  thaw(): Promise<void>;
}

/** Whether the process is stopped (state T in /proc/<pid>/stat) or gone. */
function stopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state …": comm may hold spaces and parentheses, so look after the last ')'.
    return ['T', 't'].includes(stat.charAt(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Runs mariadb-install-db into `dataDir`; rejects with its output when it fails. */
function installDb(installDbPath: string, dataDir: string, asRoot: boolean): Promise<void> {
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    // root@localhost with an empty password, reachable over TCP (not only unix_socket auth).
    '--auth-root-authentication-method=normal',
    '--skip-test-db',
    '--skip-name-resolve',
    ...(asRoot ? ['--user=root'] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(installDbPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), INSTALL_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`mariadb-install-db failed (${code ?? sig}):\n${output.slice(-2000)}`));
    });
  });
}

export async function startThrowawayMariadb(prefix = 'box-office-mariadb-'): Promise<ThrowawayMariadb> {
  const reason = whyMariadbUnavailable();
  if (reason !== undefined) throw new Error(reason);
  const { mariadbd, installDb: installDbPath } = binaries() as { mariadbd: string; installDb: string };
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(dir, 'data');
  const errorLog = join(dir, 'error.log');
  const asRoot = process.getuid?.() === 0;
  const port = await freePort();
  const url = `mysql://root@127.0.0.1:${port}/`;
  const args = [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(dir, 'mariadb.sock')}`,
    `--pid-file=${join(dir, 'mariadb.pid')}`,
    `--log-error=${errorLog}`,
    '--skip-name-resolve',
    `--innodb-buffer-pool-size=${INNODB_BUFFER_POOL}`,
    // mariadbd refuses to run as root unless told to.
    ...(asRoot ? ['--user=root'] : []),
  ];

  let child: ChildProcess | undefined;
  let state: ThrowawayState = 'down';
  // Faults run one at a time: a stop() during stopFor() waits for the restart, then stops.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };
  const running = () => (child !== undefined && !exited(child) ? child : undefined);

  const start = async (): Promise<void> => {
    const started = spawn(mariadbd, args, { stdio: 'ignore' });
    let spawnError: Error | undefined;
    started.once('error', (error) => (spawnError = error));
    child = started;
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (spawnError) throw spawnError;
      if (exited(started)) throw new Error(`mariadbd exited while starting (port ${port}):\n${tail(errorLog)}`);
      try {
        const connection = await mysql.createConnection({ uri: url, connectTimeout: 1000 });
        connection.on('error', () => {});
        await connection.query('select 1');
        await connection.end();
        break;
      } catch (error) {
        if (Date.now() > deadline) {
          await shutdown('SIGKILL');
          throw new Error(`mariadbd on port ${port} does not accept connections: ${String(error)}\n${tail(errorLog)}`);
        }
        await sleep(POLL_INTERVAL_MS);
      }
    }
    state = 'running';
  };

  /** Sends `sig` to our mariadbd (SIGCONT first when frozen) and waits until it is gone. */
  const shutdown = async (sig: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const current = running();
    if (current) {
      if (state === 'frozen') current.kill('SIGCONT');
      state = 'down';
      current.kill(sig);
      if (!(await waitExit(current, SHUTDOWN_TIMEOUT_MS))) {
        current.kill('SIGKILL');
        await waitExit(current, 5_000);
      }
    }
    child = undefined;
    if (state !== 'stopped') state = 'down';
  };

  const exitHandler = (): void => {
    // Last resort when the process exits without stop(): nothing asynchronous runs here, and
    // the data is thrown away anyway, so no clean shutdown.
    const current = running();
    if (current) {
      current.kill('SIGCONT');
      current.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C or a kill does not run 'exit' handlers: clean up, then let the signal do what it
  // would have done (unless someone else listens for it too).
  const onSignal = (sig: NodeJS.Signals): void => {
    forget();
    exitHandler();
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  };
  const forget = () => {
    process.off('exit', exitHandler);
    for (const sig of SIGNALS) process.off(sig, onSignal);
  };
  process.on('exit', exitHandler);
  for (const sig of SIGNALS) process.on(sig, onSignal);

  try {
    await installDb(installDbPath, dataDir, asRoot);
    await start();
  } catch (error) {
    await shutdown('SIGKILL');
    state = 'stopped';
    forget();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const requireUp = (what: string) => {
    if (state === 'stopped' || state === 'down') throw new Error(`${what}: the throwaway MariaDB is ${state}`);
  };

  const thawNow = () => {
    if (state !== 'frozen') return;
    running()?.kill('SIGCONT');
    state = 'running';
  };

  return {
    url,
    port,
    dir,
    state: () => state,
    pid: () => running()?.pid,

    stop: () =>
      serial(async () => {
        if (state === 'stopped') return;
        thawNow();
        await shutdown('SIGTERM');
        state = 'stopped';
        forget();
        rmSync(dir, { recursive: true, force: true });
      }),

    restart: (mode) =>
      serial(async () => {
        requireUp('restart');
        thawNow();
        await shutdown(mode === 'crash' ? 'SIGKILL' : 'SIGTERM');
        await start();
      }),

    stopFor: (ms) =>
      serial(async () => {
        requireUp('stopFor');
        thawNow();
        await shutdown('SIGTERM');
        await sleep(ms);
        await start();
      }),

    freeze: () =>
      serial(async () => {
        requireUp('freeze');
        const current = running();
        if (state === 'frozen' || !current) return;
        state = 'frozen';
        current.kill('SIGSTOP');
        // The signal is delivered asynchronously: resolve once the process stands still.
        for (let waited = 0; waited < 2_000 && !stopped(current.pid!); waited += 5) await sleep(5);
      }),

    thaw: () =>
      serial(async () => {
        thawNow();
      }),
  };
}
