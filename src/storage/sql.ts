// One way to run a statement on either SQL backend, so that a statement both understand is
// written once. Statements use PostgreSQL's numbered placeholders ($1, $2, a number may repeat);
// for MySQL they are rewritten to `?` with the parameters in order of appearance. An array
// parameter is expanded by mysql2 (`in ($1)`, `values $1`), and bound as an array by pg.
import { migrateMysql, migratePostgres } from '../db/migrate.ts';
import type { MysqlDatabase, MysqlRunner, PgDatabase, SqlRunner } from '../db/types.ts';

export type Dialect = 'postgres' | 'mysql';

/** Runs one statement: on the database, or inside a transaction. */
export interface Sql {
  readonly dialect: Dialect;
  rows<R>(statement: string, params?: unknown[]): Promise<R[]>;
  /** Rows matched (not only those changed, on both backends), and MySQL's first insert id. */
  run(statement: string, params?: unknown[]): Promise<{ affected: number; insertId: number }>;
}

/** The database itself, beyond what a transaction can do. */
export interface Autocommit {
  /**
   * One autocommitted statement that changes data, returning rows. A connection lost while it
   * runs leaves its outcome unknown, and the error says so (503 outcome_unknown).
   */
  writeRows<R>(statement: string, params?: unknown[]): Promise<R[]>;
}

declare const txBrand: unique symbol;
/**
 * An open transaction. A statement function that takes one expects its caller to hold the
 * locks it needs: one lock order everywhere, the event row first (lockEvent), then its holds and
 * bookings, then Idempotency-Keys.
 */
export type Tx = Sql & { readonly [txBrand]: true };

export interface SqlDatabase extends Sql, Autocommit {
  /** PostgreSQL (and PGlite): LISTEN; undefined on MySQL, which has nothing like it. */
  listen?(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  /** PostgreSQL (and PGlite): NOTIFY, delivered to every listener once this commits. */
  notify?(channel: string, payload: string): Promise<void>;
  readonly backend: 'pglite' | 'postgres' | 'mysql';
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
  /** True when the error is this backend's unique-constraint violation. */
  isUniqueViolation(error: unknown): boolean;
}

const PG_UNIQUE_VIOLATION = '23505';
const MYSQL_ER_DUP_ENTRY = 1062;

export function postgresSql(db: PgDatabase): SqlDatabase {
  const over = (runner: SqlRunner): Sql => ({
    dialect: 'postgres',
    rows: async <R>(statement: string, params: unknown[] = []) => (await runner.query<R>(statement, params)).rows,
    run: async (statement, params = []) => ({
      affected: (await runner.query(statement, params)).rowCount,
      insertId: 0,
    }),
  });
  return {
    ...over(db),
    writeRows: async <R>(statement: string, params: unknown[] = []) => (await db.write<R>(statement, params)).rows,
    listen: (channel, onMessage) => db.listen(channel, onMessage),
    notify: async (channel, payload) => {
      await db.query('select pg_notify($1, $2)', [channel, payload]);
    },
    backend: db.engine,
    transaction: (fn) => db.transaction((tx) => fn(over(tx) as Tx)),
    migrate: () => migratePostgres(db),
    close: () => db.close(),
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === PG_UNIQUE_VIOLATION,
  };
}

export function mysqlSql(db: MysqlDatabase): SqlDatabase {
  const over = (runner: MysqlRunner): Sql => ({
    dialect: 'mysql',
    rows: <R>(statement: string, params: unknown[] = []) => {
      const { sql, order } = toMysql(statement);
      return runner.rows<R>(
        sql,
        order.map((n) => params[n - 1]),
      );
    },
    run: async (statement, params = []) => {
      const { sql, order } = toMysql(statement);
      const { affectedRows, insertId } = await runner.write(
        sql,
        order.map((n) => params[n - 1]),
      );
      return { affected: affectedRows, insertId };
    },
  });
  return {
    ...over(db),
    // No MySQL statement both changes rows and returns them (no RETURNING), and nothing calls
    // this on MySQL: the one caller, the fast grant, is PostgreSQL's.
    writeRows: () => Promise.reject(new Error('writeRows is not available on MySQL')),
    backend: 'mysql',
    transaction: (fn) => db.transaction((tx) => fn(over(tx) as Tx)),
    migrate: () => migrateMysql(db),
    close: () => db.close(),
    isUniqueViolation: (error) => (error as { errno?: unknown } | null)?.errno === MYSQL_ER_DUP_ENTRY,
  };
}

const converted = new Map<string, { sql: string; order: number[] }>();

/** `$n` placeholders to `?`, and which parameter each `?` takes; cached per statement. */
function toMysql(statement: string): { sql: string; order: number[] } {
  let result = converted.get(statement);
  if (result === undefined) {
    const order: number[] = [];
    const sql = statement.replace(/\$(\d+)/g, (_, n: string) => {
      order.push(Number(n));
      return '?';
    });
    result = { sql, order };
    converted.set(statement, result);
  }
  return result;
}

/** bytea comes back as a Uint8Array from PGlite and a Buffer from pg and mysql2. */
/** The one row a statement always returns (an aggregate, an insert's RETURNING); throws if none. */
export function theRow<R>(rows: R[]): R {
  const [row] = rows;
  if (row === undefined) throw new Error('the statement returned no row');
  return row;
}

export const bytes = (value: Uint8Array): Buffer => (Buffer.isBuffer(value) ? value : Buffer.from(value));
