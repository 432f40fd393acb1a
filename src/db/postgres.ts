// One PostgreSQL dialect, two engines: embedded PGlite (the default, persisted in DATA_DIR) and
// a PostgreSQL server through a pg connection pool. The store above this sees only `SqlRunner`.
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs one statement: the database itself, or an open transaction. */
export interface SqlRunner {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<SqlResult<R>>;
}

export interface PgDatabase extends SqlRunner {
  readonly engine: 'pglite' | 'postgres';
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
// Ids and SUM() results are int8/numeric on the wire; every value we store fits in 2^53.
const toNumber = (value: string): number => Number(value);

export async function openPglite(dataDir: string | undefined): Promise<PgDatabase> {
  if (dataDir !== undefined) mkdirSync(dataDir, { recursive: true });
  const db = new PGlite({
    ...(dataDir === undefined ? {} : { dataDir }),
    parsers: { [INT8_OID]: toNumber, [NUMERIC_OID]: toNumber },
  });
  await db.waitReady;
  const wrap = (runner: Pick<PGlite, 'query'>): SqlRunner => ({
    async query<R>(sql: string, params: unknown[] = []) {
      const result = await runner.query<R>(sql, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  });
  return {
    engine: 'pglite',
    ...wrap(db),
    // PGlite has one connection; its transaction() holds it exclusively until commit.
    transaction: async (fn) => {
      // PGlite answers in microtasks, so without this a transaction runs to its commit before
      // the event loop reads another request: every hold batch held one request (~200 holds/s).
      // One turn of the event loop lets the requests that arrived meanwhile join the next batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      return db.transaction((tx) => fn(wrap(tx)));
    },
    exec: async (sql) => {
      await db.exec(sql);
    },
    close: () => db.close(),
  };
}

export async function openPostgres(url: string, poolSize: number): Promise<PgDatabase> {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID || oid === NUMERIC_OID
          ? toNumber
          : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const wrap = (runner: pg.Pool | pg.PoolClient): SqlRunner => ({
    async query<R>(sql: string, params: unknown[] = []) {
      const result = await runner.query(sql, params);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
  });
  const db: PgDatabase = {
    engine: 'postgres',
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn(wrap(client));
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    exec: async (sql) => {
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
  await db.query('select 1');
  return db;
}
