// A real pg_auto_failover cluster (Debian's postgresql-15-auto-failover and pg-auto-failover-cli)
// for failover tests: one monitor and a primary with N synchronous-quorum standbys, all on free
// loopback ports, in a temporary directory that stop() removes.
//
//   const cluster = await startFailoverCluster();      // ~7-12 s on 2 cores
//   process.env.DATABASE_URL = cluster.uri;            // libpq multi-host URI, read-write
//   await cluster.killPrimary();                       // SIGKILL postgres + keeper: really gone
//   await cluster.waitForWritablePrimary(60_000);      // a standby was promoted
//   await cluster.stop();
//
// Run directly (`npx tsx test/support/pg-auto-failover.ts [--standbys N]`) it starts a cluster, prints
// its URI and nodes as JSON, and keeps it up until Ctrl-C.
//
// Why it is built the way it is:
//  - As root, every pg_autoctl/postgres process runs as the `postgres` OS user (PostgreSQL
//    refuses root), with a clean environment: only Debian binaries run as that user, so the repo
//    may sit under a 0700 directory.
//  - pg_autoctl keeps its config and state under XDG_CONFIG_HOME/XDG_DATA_HOME and its pid files
//    under XDG_RUNTIME_DIR; pointing all three into the temp dir keeps clusters from ever seeing
//    each other's (or the machine's) state. PG_REGRESS_SOCK_DIR (pg_autoctl's own test hook)
//    makes it start postgres with `-k <tempdir>/sock`, so nothing touches /var/run/postgresql.
//  - PostgreSQL backends call setsid(), so killing a process group misses them. Every process we
//    start runs with its working directory inside the temp dir (postgres: its data directory), and
//    /proc/<pid>/cwd is how stop(), killPrimary() and the exit safety net find them all.
//  - We initdb the monitor and the first node ourselves (pg_autoctl accepts an existing PGDATA) to
//    add fsync=off (throwaway data, much less I/O on a small machine) and
//    dynamic_shared_memory_type=mmap (segments live in PGDATA, so a SIGKILLed postmaster leaves
//    nothing behind in /dev/shm). Standbys inherit both through pg_basebackup.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  closeSync,
  constants,
  accessSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';

export interface FailoverCluster {
  /**
   * The formation's URI, verbatim as `pg_autoctl show uri --formation default` prints it, e.g.
   * postgres://127.0.0.1:p2,127.0.0.1:p1,127.0.0.1:p3/postgres?target_session_attrs=read-write&sslmode=prefer
   * (no user: libpq, and node-postgres, take PGUSER; the nodes' superuser is postgres).
   */
  uri: string;
  /** the data nodes, in creation order */
  nodes: Array<{ name: string; host: string; port: number; dataDir: string }>;
  /** current primary per the monitor (the node assigned a primary state) */
  primary(): Promise<{ name: string; port: number }>;
  /** every data node as the monitor sees it, like `pg_autoctl show state` */
  state(): Promise<NodeState[]>;
  /** SIGKILL the current primary's postgres (postmaster and ALL its child processes) AND its pg_autoctl keeper, so it is really gone; returns the killed node. Later `restartNode(name)` can bring it back as a standby. */
  killPrimary(): Promise<{ name: string; port: number }>;
  /** start a killed node's keeper again; resolves once the monitor sees it settled (e.g. back as a secondary) */
  restartNode(name: string): Promise<void>;
  /** planned switchover: `pg_autoctl perform switchover` and wait until a different node is primary and accepts writes */
  switchover(): Promise<{ from: string; to: string }>;
  /**
   * resolves when some node is primary per the monitor AND accepts a write through a plain
   * pg.Client to it (an upsert into the one-row table pg_auto_failover_probe in database
   * postgres); rejects after timeoutMs
   */
  waitForWritablePrimary(timeoutMs: number): Promise<{ name: string; port: number }>;
  /** stop every process (keepers, postgres, monitor) and remove the temp dir; safe to call twice; leaves no stray processes */
  stop(): Promise<void>;
}

export interface NodeState {
  name: string;
  port: number;
  /** what the node's keeper last reported (pg_autoctl show state's "Reported State") */
  reportedState: string;
  /** what the monitor wants it to be ("Assigned State") */
  assignedState: string;
  /** the monitor's health check: 1 good, 0 bad, -1 not checked yet */
  health: number;
}

export interface StartOptions {
  /** standbys besides the primary; default 2 (so one standby can die and writes still commit) */
  standbys?: number;
  /** the whole startup, default 120 s: the machine has 2 cores and the startup saturates them */
  startupTimeoutMs?: number;
}

const PG_BIN = '/usr/lib/postgresql/15/bin';
const HOST = '127.0.0.1';
const FORMATION = 'default';
/** Assigned states in which a node is the group's primary, and takes writes once it reports them. */
const PRIMARY_STATES = new Set(['single', 'wait_primary', 'primary', 'join_primary', 'apply_settings']);

/**
 * Monitor tuning, written into the monitor's postgresql.conf before its first start (so even its
 * first health checks use it; checked through pg_settings once it runs), rather than ALTER SYSTEM
 * afterwards. The defaults take ~60 s to fail over a dead primary; these take 10-14 s here.
 * A node is declared unhealthy when its keeper has not reported for
 * node_considered_unhealthy_timeout AND the monitor's health checks (every health_check_period,
 * retried health_check_max_retries times) fail; the promotion then waits primary_demote_timeout
 * for the old primary to step down. Keepers report every second, so 4 s of silence is not load
 * noise even when startup saturates both cores.
 */
const MONITOR_SETTINGS: Record<string, string> = {
  'pgautofailover.health_check_period': '1000',
  'pgautofailover.health_check_timeout': '2000',
  'pgautofailover.health_check_max_retries': '1',
  'pgautofailover.health_check_retry_delay': '500',
  'pgautofailover.node_considered_unhealthy_timeout': '4000',
  'pgautofailover.primary_demote_timeout': '4000',
  // Health checks are ignored for this long after the monitor starts; a test may kill the primary
  // right after a ~10 s startup, and should not wait for the default 10 s grace to pass.
  'pgautofailover.startup_grace_period': '2000',
};

/**
 * Keeper tuning, per node. A primary that can reach neither the monitor nor any standby demotes
 * itself after network_partition_timeout; keeping that below primary_demote_timeout keeps
 * pg_auto_failover's guarantee that the old primary stops taking writes before another is promoted.
 */
const KEEPER_SETTINGS: Record<string, string> = {
  'timeout.network_partition_timeout': '3',
};

/** Added to postgresql.conf of the monitor and the first node; standbys copy it. */
const SERVER_SETTINGS = [
  '# added by test/support/pg-auto-failover.ts: a throwaway test cluster',
  'fsync = off',
  'dynamic_shared_memory_type = mmap',
  'shared_buffers = 32MB',
];

/** PG_AUTOCTL names the binary and nothing else is searched (CI points it away to prove the skip). */
function findPgAutoctl(): string | undefined {
  const named = process.env.PG_AUTOCTL;
  if (named !== undefined) return existsSync(named) ? named : undefined;
  const dirs = [PG_BIN, ...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin'];
  for (const dir of dirs) {
    const candidate = join(dir, 'pg_autoctl');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** The `postgres` OS user, when we are root and must drop to it. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error('running as root, but there is no `postgres` OS user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** True when pg_autoctl, PostgreSQL 15 and the monitor extension are installed, so tests can skip with a clear message otherwise. */
export function pgAutoFailoverAvailable(): boolean {
  try {
    if (findPgAutoctl() === undefined) return false;
    if (!existsSync(join(PG_BIN, 'postgres')) || !existsSync(join(PG_BIN, 'initdb'))) return false;
    if (!existsSync('/usr/lib/postgresql/15/lib/pgautofailover.so')) return false;
    postgresUser();
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes, found through /proc so that nothing escapes (see the header).

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  cwd: string | undefined;
}

function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let cwd: string | undefined;
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
      } catch {
        /* another user's process, or gone */
      }
      out.push({ pid, ppid: Number(fields[1]), state: fields[0] ?? '?', cwd });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Live processes whose working directory is under one of `dirs`, plus all their descendants. */
function processesUnder(dirs: string[]): number[] {
  const all = listProcesses().filter((p) => p.state !== 'Z' && p.pid !== process.pid);
  const found = new Set(
    all
      .filter((p) => p.cwd !== undefined && dirs.some((d) => p.cwd === d || p.cwd!.startsWith(`${d}/`)))
      .map((p) => p.pid),
  );
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return [...found];
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * SIGKILL everything under `dirs`. First SIGSTOP until the set stops growing, so that no keeper
 * forks a new pg_ctl or postgres between our snapshot and the kill.
 */
function stopAndKill(dirs: string[]): number[] {
  const frozen = new Set<number>();
  for (let round = 0; round < 20; round++) {
    const fresh = processesUnder(dirs).filter((pid) => !frozen.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, 'SIGSTOP');
      frozen.add(pid);
    }
  }
  for (const pid of frozen) signal(pid, 'SIGKILL');
  return [...frozen];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

async function waitUntilGone(dirs: string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processesUnder(dirs).length > 0) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * A postmaster that was SIGKILLed leaves its small System V segment (key and id on line 7 of
 * postmaster.pid). Remove it once nothing is attached, the way postgres itself would on restart.
 */
function removeStaleSysvSegment(dataDir: string): void {
  let lines: string[];
  try {
    lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return; // clean shutdown: no pid file, nothing left
  }
  const [key, id] = (lines[6] ?? '').trim().split(/\s+/).map(Number);
  if (!Number.isFinite(key) || !Number.isFinite(id)) return;
  let table = '';
  try {
    table = readFileSync('/proc/sysvipc/shm', 'utf8');
  } catch {
    return;
  }
  // columns: key shmid perms size cpid lpid nattch ...
  const row = table
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((c) => Number(c[0]) === key && Number(c[1]) === id);
  if (row !== undefined && Number(row[6]) === 0) spawnSync('ipcrm', ['-m', String(id)], { stdio: 'ignore' });
}

async function freePorts(count: number): Promise<number[]> {
  // All listening at once, so the ports are distinct.
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(0, HOST, () => res());
      });
    }
    return servers.map((s) => {
      const address = s.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

function tail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------------------------

interface Member {
  name: string;
  port: number;
  /** working directory of its processes; PGDATA is inside it */
  home: string;
  dataDir: string;
  log: string;
  /** the long-running pg_autoctl we started, while it runs */
  proc?: ChildProcess;
}

interface MonitorRow {
  nodename: string;
  nodeport: number;
  reportedstate: string;
  goalstate: string;
  health: number;
  reportedpgisrunning: boolean;
  reporttime: Date;
}

class Cluster implements FailoverCluster {
  uri = '';
  readonly nodes: FailoverCluster['nodes'];
  private readonly monitor: Member;
  private readonly members: Member[];
  private readonly env: NodeJS.ProcessEnv;
  private readonly pool: pg.Pool;
  private stopping?: Promise<void>;

  constructor(
    private readonly root: string,
    private readonly autoctl: string,
    private readonly user: { uid: number; gid: number } | undefined,
    ports: number[],
  ) {
    const member = (name: string, port: number): Member => {
      const home = join(root, name);
      return { name, port, home, dataDir: join(home, 'pgdata'), log: join(home, 'pg_autoctl.log') };
    };
    this.monitor = member('monitor', ports[0]!);
    this.members = ports.slice(1).map((port, i) => member(`node${i + 1}`, port));
    this.nodes = this.members.map((m) => ({ name: m.name, host: HOST, port: m.port, dataDir: m.dataDir }));
    const sock = join(root, 'sock');
    this.env = {
      PATH: `${PG_BIN}:/usr/local/bin:/usr/bin:/bin`,
      HOME: root,
      USER: user ? 'postgres' : userInfo().username,
      LOGNAME: user ? 'postgres' : userInfo().username,
      LANG: 'C',
      LC_ALL: 'C',
      TZ: 'UTC',
      XDG_CONFIG_HOME: join(root, 'xdg', 'config'),
      XDG_DATA_HOME: join(root, 'xdg', 'data'),
      XDG_RUNTIME_DIR: join(root, 'xdg', 'run'),
      PG_REGRESS_SOCK_DIR: sock,
      PGHOST: sock,
      // Local admin connections without a user name; the clusters' superuser is always postgres.
      PGUSER: 'postgres',
    };
    for (const dir of [
      sock,
      join(root, 'xdg'),
      join(root, 'xdg', 'config'),
      join(root, 'xdg', 'data'),
      join(root, 'xdg', 'run'),
      this.monitor.home,
      ...this.members.map((m) => m.home),
    ])
      this.mkdir(dir);
    this.pool = new pg.Pool({
      host: HOST,
      port: this.monitor.port,
      user: 'postgres',
      database: 'pg_auto_failover',
      max: 2,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 2000,
      allowExitOnIdle: true,
      statement_timeout: 5000,
      query_timeout: 7000,
    });
    this.pool.on('error', () => {
      /* an idle connection died with the monitor; the pool replaces it */
    });
    track(this);
  }

  private mkdir(dir: string): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (this.user) chownSync(dir, this.user.uid, this.user.gid);
  }

  /** argv to run a Debian binary as the postgres user (as root), or as ourselves. */
  private asPostgres(bin: string, args: string[]): [string, string[]] {
    if (!this.user) return [bin, args];
    // setpriv execs in place: the pid we get is the program's, not a wrapper's.
    if (existsSync('/usr/bin/setpriv'))
      return ['/usr/bin/setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', bin, ...args]];
    return ['runuser', ['-u', 'postgres', '--', bin, ...args]];
  }

  private spawnIn(m: Member, bin: string, args: string[]): ChildProcess {
    const fd = openSync(m.log, 'a');
    appendFileSync(fd, `\n### ${new Date().toISOString()} ${bin} ${args.join(' ')}\n`);
    const [cmd, argv] = this.asPostgres(bin, args);
    try {
      // detached: its own session, so a Ctrl-C in the terminal reaches only us, and stop() decides
      // the order. (We never signal process groups: a group id may outlive our processes and be
      // reused; /proc cwd is exact.)
      const child = spawn(cmd, argv, { cwd: m.home, env: this.env, detached: true, stdio: ['ignore', fd, fd] });
      child.on('error', (err) => appendFileSync(m.log, `spawn failed: ${err.message}\n`));
      // A test that forgets stop() must still be able to exit; the 'exit' handler then kills us.
      child.unref();
      return child;
    } finally {
      closeSync(fd);
    }
  }

  /** Run a command to completion as the postgres user, its output in m's log. */
  private async run(m: Member, bin: string, args: string[], timeoutMs: number): Promise<void> {
    const child = this.spawnIn(m, bin, args);
    const result = await new Promise<string>((res) => {
      const timer = setTimeout(
        () => {
          if (child.pid !== undefined) signal(child.pid, 'SIGKILL');
          res(`timed out after ${timeoutMs} ms`);
        },
        Math.max(timeoutMs, 1000),
      );
      child.once('error', (err) => {
        clearTimeout(timer);
        res(err.message);
      });
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        res(code === 0 ? '' : `exited with ${sig ?? code}`);
      });
    });
    if (result !== '') throw new Error(`${m.name}: \`${[bin, ...args].join(' ')}\` ${result}`);
  }

  /** Run a command as the postgres user and return what it printed on stdout, trimmed. */
  private async output(m: Member, bin: string, args: string[], timeoutMs = 10_000): Promise<string> {
    const [cmd, argv] = this.asPostgres(bin, args);
    const { stdout } = await promisify(execFile)(cmd, argv, { cwd: m.home, env: this.env, timeout: timeoutMs });
    return stdout.trim();
  }

  /** Start a long-running pg_autoctl (create --run, or run) for m. */
  private launch(m: Member, args: string[]): void {
    const child = this.spawnIn(m, this.autoctl, args);
    m.proc = child;
    child.once('exit', () => {
      if (m.proc === child) m.proc = undefined;
    });
  }

  private async initdb(m: Member, extra: string[], timeoutMs: number): Promise<void> {
    await this.run(
      m,
      join(PG_BIN, 'initdb'),
      ['-D', m.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      timeoutMs,
    );
    appendFileSync(join(m.dataDir, 'postgresql.conf'), `\n${[...SERVER_SETTINGS, ...extra].join('\n')}\n`);
  }

  private async rows(): Promise<MonitorRow[]> {
    const { rows } = await this.pool.query<MonitorRow>(
      `select nodename, nodeport, reportedstate::text, goalstate::text, health, reportedpgisrunning, reporttime
         from pgautofailover.node where formationid = $1 order by nodeid`,
      [FORMATION],
    );
    return rows;
  }

  async state(): Promise<NodeState[]> {
    return (await this.rows()).map((r) => ({
      name: r.nodename,
      port: r.nodeport,
      reportedState: r.reportedstate,
      assignedState: r.goalstate,
      health: r.health,
    }));
  }

  private static pickPrimary(rows: MonitorRow[]): MonitorRow | undefined {
    const assigned = rows.filter((r) => PRIMARY_STATES.has(r.goalstate));
    return assigned.find((r) => PRIMARY_STATES.has(r.reportedstate)) ?? assigned[0];
  }

  async primary(): Promise<{ name: string; port: number }> {
    const rows = await this.rows();
    const p = Cluster.pickPrimary(rows);
    if (p === undefined) throw new Error(`the monitor assigns no primary right now:\n${formatRows(rows)}`);
    return { name: p.nodename, port: p.nodeport };
  }

  private member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined)
      throw new Error(`no node named ${JSON.stringify(name)} (nodes: ${this.members.map((x) => x.name).join(', ')})`);
    return m;
  }

  async killPrimary(): Promise<{ name: string; port: number }> {
    const p = await this.primary();
    const m = this.member(p.name);
    if (processesUnder([m.home]).length === 0)
      throw new Error(`the monitor's primary ${p.name} is already down (killed, not restarted yet)`);
    stopAndKill([m.home]);
    if (!(await waitUntilGone([m.home], 10_000)))
      throw new Error(`${p.name}: processes survived SIGKILL: ${processesUnder([m.home]).join(' ')}`);
    return p;
  }

  async restartNode(name: string): Promise<void> {
    const m = this.member(name);
    if (processesUnder([m.home]).length > 0)
      throw new Error(`${name} is still running; restartNode is for a killed node`);
    const since = new Date();
    this.launch(m, ['run', '--pgdata', m.dataDir]);
    // Settled: the keeper reported after the restart, postgres runs, and it reached its goal.
    try {
      await this.until(
        `${name} to rejoin`,
        Date.now() + 120_000,
        async () => {
          const r = (await this.rows()).find((x) => x.nodename === name);
          return r !== undefined &&
            r.reporttime > since &&
            r.reportedpgisrunning &&
            r.reportedstate === r.goalstate &&
            (r.goalstate === 'secondary' || PRIMARY_STATES.has(r.goalstate))
            ? true
            : undefined;
        },
        [m],
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n${formatRows(await this.rows().catch(() => []))}\n${this.logTails(20)}`,
        { cause: err },
      );
    }
  }

  async switchover(): Promise<{ from: string; to: string }> {
    const from = await this.waitForWritablePrimary(60_000);
    // Run from the primary's PGDATA: its keeper config names the monitor, formation and group.
    // --wait 0: the 2.0 CLI's wait loop is broken (it logs `get_nodes($1, $2)` failing on group
    // ''), so it returns once the monitor has started the switchover, and we poll for the end
    // ourselves, with a real write.
    const via = this.member(from.name);
    try {
      await this.run(via, this.autoctl, ['perform', 'switchover', '--pgdata', via.dataDir, '--wait', '0'], 30_000);
    } catch (err) {
      // Only fatal if the monitor did not start it: the CLI may fail after the SQL call.
      const r = (await this.rows()).find((x) => x.nodename === from.name);
      if (r !== undefined && PRIMARY_STATES.has(r.goalstate))
        throw new Error(`${(err as Error).message}\n${tail(via.log, 20)}`, { cause: err });
    }
    const to = await this.writablePrimary(90_000, from.name);
    return { from: from.name, to: to.name };
  }

  waitForWritablePrimary(timeoutMs: number): Promise<{ name: string; port: number }> {
    return this.writablePrimary(timeoutMs);
  }

  private async writablePrimary(timeoutMs: number, notName?: string): Promise<{ name: string; port: number }> {
    const deadline = Date.now() + timeoutMs;
    let last = 'nothing tried yet';
    let lastRows: MonitorRow[] = [];
    while (Date.now() < deadline) {
      try {
        lastRows = await this.rows();
        const p = Cluster.pickPrimary(lastRows);
        if (p === undefined) last = 'the monitor assigns no primary';
        else if (p.nodename === notName) last = `${p.nodename} is still the primary`;
        else if (!PRIMARY_STATES.has(p.reportedstate))
          last = `${p.nodename} is assigned ${p.goalstate} but reports ${p.reportedstate}`;
        else {
          await probeWrite(p.nodeport, Math.min(8000, Math.max(1000, deadline - Date.now())));
          return { name: p.nodename, port: p.nodeport };
        }
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(200);
    }
    throw new Error(
      `no writable primary${notName ? ` other than ${notName}` : ''} within ${timeoutMs} ms; last: ${last}\n${formatRows(lastRows)}\n${this.logTails(15)}`,
    );
  }

  /** Poll check() until it returns a value; fail early when a process we wait on has exited. */
  private async until<T>(
    what: string,
    deadline: number,
    check: () => Promise<T | undefined>,
    watch: Member[],
  ): Promise<T> {
    let last = '';
    for (;;) {
      try {
        const value = await check();
        if (value !== undefined) return value;
      } catch (err) {
        last = (err as Error).message;
      }
      const dead = watch.find((m) => m.proc === undefined);
      if (dead) throw new Error(`waiting for ${what}: pg_autoctl for ${dead.name} exited`);
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
      await sleep(250);
    }
  }

  async start(deadline: number): Promise<void> {
    const left = () => deadline - Date.now();
    const mon = this.monitor;

    // Monitor: our initdb (settings above), pg_autoctl's setup, loopback only, then run it.
    await this.initdb(
      mon,
      Object.entries(MONITOR_SETTINGS).map(([k, v]) => `${k} = ${v}`),
      left(),
    );
    await this.run(
      mon,
      this.autoctl,
      [
        'create',
        'monitor',
        '--pgdata',
        mon.dataDir,
        '--pgport',
        String(mon.port),
        '--hostname',
        HOST,
        '--auth',
        'trust',
        '--no-ssl',
      ],
      left(),
    );
    // `create monitor` has no --listen and would listen on '*'.
    await this.run(
      mon,
      this.autoctl,
      ['config', 'set', '--pgdata', mon.dataDir, 'postgresql.listen_addresses', HOST],
      left(),
    );
    this.launch(mon, ['run', '--pgdata', mon.dataDir]);
    await this.until(
      'the monitor',
      deadline,
      async () => {
        const { rows } = await this.pool.query<{ name: string; setting: string }>(
          `select name, setting from pg_settings where name like 'pgautofailover.%'`,
        );
        const wrong = Object.entries(MONITOR_SETTINGS).filter(
          ([k, v]) => rows.find((r) => r.name === k)?.setting !== v,
        );
        if (wrong.length > 0) throw new Error(`monitor tuning not applied: ${wrong.map(([k]) => k).join(', ')}`);
        return true;
      },
      [mon],
    );

    const monitorUri = `postgres://autoctl_node@${HOST}:${mon.port}/pg_auto_failover?sslmode=disable`;
    const create = (m: Member) =>
      this.launch(m, [
        'create',
        'postgres',
        '--pgdata',
        m.dataDir,
        '--pgport',
        String(m.port),
        '--hostname',
        HOST,
        '--listen',
        HOST,
        '--name',
        m.name,
        '--username',
        'postgres',
        '--dbname',
        'postgres',
        '--formation',
        FORMATION,
        '--monitor',
        monitorUri,
        '--auth',
        'trust',
        '--no-ssl',
        '--run',
      ]);
    const reached = (m: Member, state: string) =>
      this.until(
        `${m.name} to reach ${state}`,
        deadline,
        async () => {
          const r = (await this.rows()).find((x) => x.nodename === m.name);
          return r?.reportedstate === state && r.goalstate === state ? true : undefined;
        },
        [mon, m],
      );

    const [first, ...standbys] = this.members;
    if (first === undefined) throw new Error('no data node');
    await this.initdb(first, [], left());
    create(first);
    await reached(first, 'single');
    // Without a fresh checkpoint, each pg_basebackup waits for the next timed one (~100 s).
    await withClient(first.port, 10_000, (c) => c.query('checkpoint'));
    // One at a time: each standby's basebackup then has both cores.
    for (const m of standbys) {
      create(m);
      await reached(m, 'secondary');
    }
    await this.until(
      'every node to settle',
      deadline,
      async () => {
        const rows = await this.rows();
        const want = standbys.length > 0 ? 'primary' : 'single';
        return rows.length === this.members.length &&
          rows.every((r) => r.reportedstate === r.goalstate) &&
          rows.filter((r) => r.reportedstate === want).length === 1
          ? true
          : undefined;
      },
      [mon, ...this.members],
    );
    for (const m of this.members) {
      for (const [k, v] of Object.entries(KEEPER_SETTINGS))
        await this.run(m, this.autoctl, ['config', 'set', '--pgdata', m.dataDir, k, v], left());
    }
    await this.writablePrimary(Math.max(left(), 1000));
    this.uri = await this.output(mon, this.autoctl, ['show', 'uri', '--pgdata', mon.dataDir, '--formation', FORMATION]);
  }

  logTails(lines = 30): string {
    const parts: string[] = [];
    for (const m of [this.monitor, ...this.members]) {
      parts.push(`--- ${m.name}: ${m.log} ---\n${tail(m.log, lines)}`);
      try {
        const logDir = join(m.dataDir, 'log');
        const newest = readdirSync(logDir).sort().at(-1);
        if (newest)
          parts.push(
            `--- ${m.name}: postgres ${join(logDir, newest)} ---\n${tail(join(logDir, newest), Math.ceil(lines / 2))}`,
          );
      } catch {
        /* no server log yet */
      }
    }
    return parts.join('\n');
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.pool.end().catch(() => {});
      const everything = [this.root];
      // Politely first: SIGQUIT makes pg_autoctl stop its postgres, and makes a postmaster shut
      // down at once, releasing its shared memory. Keepers first, so none restarts a postgres.
      for (const m of [this.monitor, ...this.members]) {
        if (m.proc?.pid !== undefined && m.proc.exitCode === null && m.proc.signalCode === null)
          signal(m.proc.pid, 'SIGQUIT');
      }
      for (const m of [this.monitor, ...this.members]) {
        const pid = postmasterPid(m.dataDir);
        if (pid !== undefined && processesUnder([m.dataDir]).includes(pid)) signal(pid, 'SIGQUIT');
      }
      if (!(await waitUntilGone(everything, 15_000))) {
        stopAndKill(everything);
        if (!(await waitUntilGone(everything, 10_000))) {
          throw new Error(`processes survived SIGKILL: ${processesUnder(everything).join(' ')}`);
        }
      }
      this.cleanupFiles();
    })();
    return this.stopping;
  }

  private cleanupFiles(): void {
    for (const m of [this.monitor, ...this.members]) removeStaleSysvSegment(m.dataDir);
    rmSync(this.root, { recursive: true, force: true });
    untrack(this);
  }

  /** The safety net for a caller that never called stop(): synchronous, as 'exit' requires. */
  killEverythingSync(): void {
    this.stopping ??= Promise.resolve();
    for (let i = 0; i < 100; i++) {
      if (stopAndKill([this.root]).length === 0) break;
      sleepSync(20);
    }
    try {
      this.cleanupFiles();
    } catch {
      /* best effort while exiting */
    }
  }
}

// The safety net: clusters not stopped yet are SIGKILLed when the process exits, or when it is
// about to die of a signal that nobody else handles (a signal death skips 'exit').
const live = new Set<Cluster>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const killAllSync = () => {
  for (const c of [...live]) c.killEverythingSync();
};
const onSignal = (sig: NodeJS.Signals) => {
  // Someone else handles it (a CLI that calls stop(), a test runner): let them; 'exit' still covers us.
  if (process.listenerCount(sig) > 1) return;
  killAllSync();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, sig); // the default action, now that we no longer listen
};

function track(c: Cluster): void {
  if (live.size === 0) {
    process.on('exit', killAllSync);
    for (const s of SIGNALS) process.on(s, onSignal);
  }
  live.add(c);
}

function untrack(c: Cluster): void {
  if (!live.delete(c) || live.size > 0) return;
  process.removeListener('exit', killAllSync);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function formatRows(rows: MonitorRow[]): string {
  return rows
    .map((r) => `  ${r.nodename} :${r.nodeport} reported=${r.reportedstate} assigned=${r.goalstate} health=${r.health}`)
    .join('\n');
}

async function withClient<T>(port: number, timeoutMs: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: HOST,
    port,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: Math.min(timeoutMs, 3000),
    statement_timeout: timeoutMs,
    query_timeout: timeoutMs + 2000,
  });
  client.on('error', () => {
    /* the server may die under us; the pending query rejects */
  });
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A real write on that node. A commit that waits for a synchronous standby which never comes is
 * cancelled by statement_timeout with only a WARNING (the row stays, locally), so that warning
 * counts as "not writable" too.
 */
async function probeWrite(port: number, timeoutMs: number): Promise<void> {
  await withClient(port, timeoutMs, async (c) => {
    let syncWarning = '';
    c.on('notice', (n) => {
      if (/synchronous replication/i.test(n.message ?? ''))
        syncWarning = n.message ?? 'synchronous replication wait cancelled';
    });
    const { rows } = await c.query<{ r: boolean }>('select pg_is_in_recovery() as r');
    if (rows[0]?.r !== false) throw new Error(`127.0.0.1:${port} is in recovery`);
    await c.query('create table if not exists pg_auto_failover_probe (id int primary key, at timestamptz not null)');
    await c.query(
      'insert into pg_auto_failover_probe values (1, now()) on conflict (id) do update set at = excluded.at',
    );
    if (syncWarning) throw new Error(`127.0.0.1:${port}: ${syncWarning}`);
  });
}

/** A temp dir that the postgres user can use, with room for socket paths (107 bytes at most). */
function makeRoot(user: { uid: number; gid: number } | undefined): string {
  for (const base of [tmpdir(), '/tmp']) {
    if (base.length > 60) continue;
    let root: string | undefined;
    try {
      root = mkdtempSync(join(base, 'pgaf-'));
      if (user) {
        // Only the postgres user (and root) may enter; it must reach the dir through `base`.
        chownSync(root, user.uid, user.gid);
        const probe = spawnSync('/usr/bin/setpriv', [
          '--reuid=postgres',
          '--regid=postgres',
          '--init-groups',
          '--',
          'test',
          '-w',
          root,
        ]);
        if (probe.status !== 0 && spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-w', root]).status !== 0) {
          throw new Error(`the postgres user cannot write ${root}`);
        }
      }
      return root;
    } catch {
      if (root) rmSync(root, { recursive: true, force: true });
    }
  }
  throw new Error(`no temp dir the postgres user can write (tried ${tmpdir()} and /tmp)`);
}

export async function startFailoverCluster(options: StartOptions = {}): Promise<FailoverCluster> {
  const standbys = options.standbys ?? 2;
  if (!Number.isInteger(standbys) || standbys < 0) throw new Error(`standbys must be an integer >= 0, got ${standbys}`);
  const autoctl = findPgAutoctl();
  if (autoctl === undefined || !pgAutoFailoverAvailable()) {
    throw new Error(
      'pg_auto_failover is not installed: apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli',
    );
  }
  const deadline = Date.now() + (options.startupTimeoutMs ?? 120_000);
  const user = postgresUser();
  const root = makeRoot(user);
  let cluster: Cluster;
  try {
    cluster = new Cluster(root, autoctl, user, await freePorts(2 + standbys));
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  try {
    await cluster.start(deadline);
    return cluster;
  } catch (err) {
    const logs = cluster.logTails();
    await cluster.stop().catch(() => {});
    throw new Error(`pg_auto_failover cluster did not start: ${(err as Error).message}\n${logs}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// CLI: start a cluster, print it, keep it up until Ctrl-C.

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--standbys');
  const standbys = i >= 0 ? Number(process.argv[i + 1]) : undefined;
  if (!pgAutoFailoverAvailable()) {
    console.error(
      'pg_auto_failover is not installed: apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli',
    );
    process.exit(2);
  }
  const started = Date.now();
  const cluster = await startFailoverCluster({ standbys });
  console.log(JSON.stringify({ uri: cluster.uri, nodes: cluster.nodes, startupMs: Date.now() - started }, null, 2));
  console.log('running; Ctrl-C stops it');
  const shutdown = () => {
    cluster.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  setInterval(() => {}, 1 << 30);
}
