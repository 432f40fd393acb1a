// What the engines share that is not about faults (faults.ts): the shapes the store and the
// migrations program against, one per dialect, and the settings of the server backends. Kept
// apart from the engines so that nothing that only needs a shape or a setting (config.ts,
// migrate.ts, storage/sql.ts) imports, or loads, a driver.
import type { DatabaseEvents } from './faults.ts';

// ---- The PostgreSQL dialect: PGlite (pglite.ts) and PostgreSQL servers (postgres.ts)

export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs one statement: the database itself, or an open transaction. */
export interface SqlRunner {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<SqlResult<R>>;
}

export interface TransactionOptions {
  /** Replaces the statement timeout inside this transaction (migrations). */
  timeoutMs?: number;
}

export interface PgDatabase extends SqlRunner {
  readonly engine: 'pglite' | 'postgres';
  /**
   * One autocommitted statement that changes data. If the connection is lost while it runs,
   * it may have committed: the error says the outcome is unknown (503 outcome_unknown).
   */
  write<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<SqlResult<R>>;
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Calls `onMessage` with the payload of each NOTIFY on `channel`, and with '' after each
   * (re)connection, when notifications may have been missed; resolves to the function that stops.
   */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const toNumber = (value: string): number => Number(value);
/**
 * Read as numbers by both engines, by type oid: ids and SUM() results are int8 (20) and numeric
 * (1700) on the wire, and every value we store fits in 2^53.
 */
export const PG_NUMBER_PARSERS: Readonly<Record<number, (value: string) => number>> = {
  20: toNumber,
  1700: toNumber,
};

// ---- MySQL and MariaDB (mysql.ts)

export interface WriteResult {
  affectedRows: number;
  insertId: number;
}

/** Runs one statement: on the pool, or on the connection of an open transaction. */
export interface MysqlRunner {
  rows<R>(sql: string, params?: unknown[]): Promise<R[]>;
  write(sql: string, params?: unknown[]): Promise<WriteResult>;
}

export interface MysqlDatabase extends MysqlRunner {
  transaction<T>(fn: (tx: MysqlRunner) => Promise<T>): Promise<T>;
  /** Runs fn on one connection held throughout (session state such as GET_LOCK), autocommit, with the migration timeout. */
  session<T>(fn: (conn: MysqlRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// ---- Settings of the server backends (PostgreSQL, MySQL)

/** Connection settings of the server backends; config.ts reads them from the environment. */
export interface ServerDatabaseOptions {
  poolSize: number;
  /** Opening a TCP connection and logging in. */
  connectTimeoutMs: number;
  /** Waiting for a pooled connection to become free. */
  acquireTimeoutMs: number;
  /** One statement, enforced by the server; the client gives up CLIENT_DEADLINE_GRACE_MS later. */
  statementTimeoutMs: number;
  /** A transaction left open with no statement running; the server ends it and its locks. */
  idleInTransactionTimeoutMs: number;
  events?: DatabaseEvents;
}

export const DATABASE_DEFAULTS: Omit<ServerDatabaseOptions, 'events'> = {
  poolSize: 10,
  connectTimeoutMs: 1000,
  acquireTimeoutMs: 1000,
  statementTimeoutMs: 1000,
  idleInTransactionTimeoutMs: 5000,
};

/**
 * Added to the statement timeout to get the client-side deadline of every round trip. The
 * server cancels a slow statement itself at the statement timeout and the connection stays
 * usable; the client deadline fires only when the server cannot even do that (frozen,
 * partitioned), and then the connection is thrown away.
 */
export const CLIENT_DEADLINE_GRACE_MS = 250;

/** Migrations may rewrite big tables: they get this instead of the statement timeout. */
export const MIGRATION_TIMEOUT_MS = 10 * 60 * 1000;
