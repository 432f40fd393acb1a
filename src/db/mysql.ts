// MySQL 8 and MariaDB 10.6+ through a mysql2 connection pool, mirroring postgres.ts: the store
// above this sees only `MysqlRunner`. Every session is set up the same way when the pool opens
// it (UTC, READ COMMITTED, strict SQL), so no query depends on server defaults.
import { createHash } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { loadMigrations, splitStatements } from './migrate.ts';

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
  /** Runs fn on one connection held throughout (session state such as GET_LOCK), autocommit. */
  session<T>(fn: (conn: MysqlRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// Session settings, sent once per new connection, before its first query.
//  - time_zone: DATETIME has no zone; we store UTC. mysql2's `timezone: 'Z'` writes and reads
//    Dates as UTC, and this keeps server-side functions (current_timestamp) in UTC too.
//  - READ COMMITTED: every writer serializes on the event row (select … for update) anyway, so
//    REPEATABLE READ's snapshot buys nothing, and its gap and next-key locks on the holds
//    indexes would make hold batches of different events block, or deadlock, on each other's
//    inserts. READ COMMITTED locks only the rows a statement matches. (It needs
//    binlog_format ROW or MIXED when the binary log is on: the defaults of MySQL 8 and MariaDB.)
//    The statement form works on both servers; the variable is `transaction_isolation` on
//    MySQL 8 but `tx_isolation` on MariaDB before 11.1.
//  - TRADITIONAL: strict mode, so a bad value is an error rather than a silent clamp.
const SESSION_SETUP = [
  "set session time_zone = '+00:00', session sql_mode = 'TRADITIONAL'",
  'set session transaction isolation level read committed',
];

const wrap = (runner: mysql.Pool | PoolConnection): MysqlRunner => ({
  async rows<R>(sql: string, params: unknown[] = []) {
    const [rows] = await runner.query<RowDataPacket[]>(sql, params);
    return rows as R[];
  },
  async write(sql: string, params: unknown[] = []) {
    const [result] = await runner.query<ResultSetHeader>(sql, params);
    return { affectedRows: result.affectedRows, insertId: result.insertId };
  },
});

export async function openMysql(url: string, poolSize: number): Promise<MysqlDatabase> {
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: poolSize,
    timezone: 'Z',
    // Ids are BIGINT and SUM() is DECIMAL on the wire; every value we store fits in 2^53, so
    // both come back as JavaScript numbers.
    supportBigNumbers: false,
    decimalNumbers: true,
  });
  // On the callback-style core pool: its 'connection' event hands over the raw connection, and
  // these queries are queued ahead of the first query anyone sends on it.
  pool.pool.on('connection', (connection) => {
    for (const statement of SESSION_SETUP) {
      // A session we could not set up must not serve queries: drop it, the next query fails.
      connection.query(statement, (error: unknown) => {
        if (error) connection.destroy();
      });
    }
  });

  const release = (connection: PoolConnection, broken: boolean) => {
    if (broken) connection.destroy();
    else connection.release();
  };

  const db: MysqlDatabase = {
    ...wrap(pool),
    async transaction(fn) {
      const connection = await pool.getConnection();
      let broken = false;
      try {
        await connection.beginTransaction();
        const result = await fn(wrap(connection));
        await connection.commit();
        return result;
      } catch (error) {
        // A connection that cannot roll back is in an unknown state; never reuse it.
        await connection.rollback().catch(() => {
          broken = true;
        });
        throw error;
      } finally {
        release(connection, broken);
      }
    },
    async session(fn) {
      const connection = await pool.getConnection();
      try {
        return await fn(wrap(connection));
      } finally {
        connection.release();
      }
    },
    close: () => pool.end(),
  };
  await db.rows('select 1');
  return db;
}

const MIGRATION_LOCK_SECONDS = 60;

/**
 * Applies pending migrations; returns the names applied. Safe to run from several processes:
 * they take turns under GET_LOCK. MySQL commits DDL implicitly, so a migration is not one
 * transaction here as it is on PostgreSQL; our MySQL migrations are written to be re-runnable
 * (create table if not exists) so that one interrupted halfway completes on the next run.
 */
export async function migrateMysql(db: MysqlDatabase): Promise<string[]> {
  return db.session(async (conn) => {
    // GET_LOCK names are server-wide, not per database, and at most 64 characters on MySQL:
    // hash the database name into the lock name so separate databases migrate independently.
    const [{ name }] = (await conn.rows<{ name: string | null }>('select database() as name')) as [
      { name: string | null },
    ];
    if (name === null) throw new Error('the MySQL URL must name a database');
    const lock = `box_office_migrate:${createHash('sha1').update(name).digest('hex')}`;
    const [{ got }] = (await conn.rows<{ got: number | null }>('select get_lock(?, ?) as got', [
      lock,
      MIGRATION_LOCK_SECONDS,
    ])) as [{ got: number | null }];
    if (got !== 1) throw new Error(`timed out waiting for the migration lock on ${name}`);
    try {
      await conn.write(
        `create table if not exists schema_migrations (
           version integer primary key,
           name varchar(255) not null,
           applied_at datetime(3) not null default current_timestamp(3)
         ) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin`,
      );
      const seen = await conn.rows<{ version: number }>('select version from schema_migrations');
      const done = new Set(seen.map((row) => row.version));
      const applied: string[] = [];
      for (const migration of loadMigrations('mysql')) {
        if (done.has(migration.version)) continue;
        for (const statement of splitStatements(migration.sql)) await conn.write(statement);
        await conn.write('insert into schema_migrations (version, name) values (?, ?)', [
          migration.version,
          migration.name,
        ]);
        applied.push(migration.name);
      }
      return applied;
    } finally {
      await conn.rows('select release_lock(?)', [lock]);
    }
  });
}
