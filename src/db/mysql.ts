// MySQL 8 and MariaDB 10.6+ through a mysql2 connection pool, mirroring postgres.ts: the store
// above this sees only `MysqlRunner`. Every session is set up the same way when the pool opens
// it (UTC, READ COMMITTED, strict SQL, timeouts), so no query depends on server defaults.
//
// Fault handling is postgres.ts's, written once in faults.ts: every connection listens for
// 'error' for its whole life, every wait is bounded, a broken connection is destroyed, errors
// are sorted (classifyMysqlError, here) into 503s, retried deadlocks and bugs, and a breaker
// answers 503 at once while the server is down and swaps in a fresh pool when it is back. The
// migrations are in migrate.ts.
import mysql from 'mysql2/promise';
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { DatabaseUnavailable } from '../errors.ts';
import { Breaker, type FaultKind, faultHandling, listenForErrors, retryConflicts } from './faults.ts';
import {
  CLIENT_DEADLINE_GRACE_MS,
  DATABASE_DEFAULTS,
  MIGRATION_TIMEOUT_MS,
  type MysqlDatabase,
  type MysqlRunner,
  type ServerDatabaseOptions,
} from './types.ts';

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
//  - Timeouts: a lock wait, a statement (MariaDB's max_statement_time covers every statement,
//    MySQL's max_execution_time only SELECTs; the client deadline covers the rest) and, on
//    MariaDB, a transaction left idle. Whole seconds where the server counts in seconds.
function sessionSetup(settings: typeof DATABASE_DEFAULTS, mariadb: boolean): string[] {
  const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));
  return [
    "set session time_zone = '+00:00', session sql_mode = 'TRADITIONAL'",
    'set session transaction isolation level read committed',
    `set session innodb_lock_wait_timeout = ${seconds(settings.statementTimeoutMs)}`,
    mariadb
      ? `set session max_statement_time = ${settings.statementTimeoutMs / 1000}, session idle_transaction_timeout = ${seconds(settings.idleInTransactionTimeoutMs)}`
      : `set session max_execution_time = ${settings.statementTimeoutMs}`,
  ];
}

const CONFLICT_ERRNOS = new Set([1213]); // ER_LOCK_DEADLOCK
const BUSY_ERRNOS = new Set([
  1205, // ER_LOCK_WAIT_TIMEOUT
  1040, // ER_CON_COUNT_ERROR: too many connections
  1317, // ER_QUERY_INTERRUPTED
  1969, // MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
  3024, // MySQL ER_QUERY_TIMEOUT (max_execution_time)
]);
const DOWN_ERRNOS = new Set([
  1053, // ER_SERVER_SHUTDOWN
  1290, // ER_OPTION_PREVENTS_STATEMENT: --read-only, e.g. a demoted primary
  1792, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
]);
const LOST_ERRNOS = new Set([
  1927, // MariaDB ER_CONNECTION_KILLED (KILL CONNECTION)
  2006, // CR_SERVER_GONE_ERROR: "MySQL server has gone away"
  2013, // CR_SERVER_LOST
  4031, // ER_CLIENT_INTERACTION_TIMEOUT: disconnected by wait_timeout
]);
const LOST_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'EPIPE', 'ER_CONNECTION_KILLED']);
const DOWN_CODES = new Set([
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
]);

/** What a mysql2 error means for us; undefined for errors that are bugs or refusals of bad SQL. */
export function classifyMysqlError(error: unknown): FaultKind | undefined {
  if (error instanceof DatabaseUnavailable) return 'busy';
  const { errno, code, fatal, message } = (error ?? {}) as {
    errno?: unknown;
    code?: unknown;
    fatal?: unknown;
    message?: unknown;
  };
  if (typeof errno === 'number') {
    if (CONFLICT_ERRNOS.has(errno)) return 'conflict';
    if (BUSY_ERRNOS.has(errno)) return 'busy';
    if (DOWN_ERRNOS.has(errno)) return 'down';
    if (LOST_ERRNOS.has(errno)) return 'lost';
  }
  if (typeof code === 'string') {
    if (DOWN_CODES.has(code)) return 'down';
    if (LOST_CODES.has(code)) return 'lost';
  }
  if (fatal === true) return 'lost';
  if (typeof message === 'string' && /closed state|Pool is closed/i.test(message)) return 'lost';
  return undefined;
}

const wrap = (runner: mysql.Pool | PoolConnection, timeoutMs: number): MysqlRunner => ({
  async rows<R>(sql: string, params: unknown[] = []) {
    const [rows] = await runner.query<RowDataPacket[]>({ sql, timeout: timeoutMs }, params);
    return rows as R[];
  },
  async write(sql: string, params: unknown[] = []) {
    const [result] = await runner.query<ResultSetHeader>({ sql, timeout: timeoutMs }, params);
    return { affectedRows: result.affectedRows, insertId: result.insertId };
  },
});

export async function openMysql(url: string, options: Partial<ServerDatabaseOptions> = {}): Promise<MysqlDatabase> {
  const settings = { ...DATABASE_DEFAULTS, ...options };
  const { events = {} } = settings;
  const deadlineMs = settings.statementTimeoutMs + CLIENT_DEADLINE_GRACE_MS;

  const first = await mysql.createConnection({ uri: url, connectTimeout: settings.connectTimeoutMs });
  listenForErrors(first);
  const [[{ version }]] = (await first.query<RowDataPacket[]>({
    sql: 'select version() as version',
    timeout: deadlineMs,
  })) as unknown as [[{ version: string }]];
  await first.end();
  const mariadb = /mariadb/i.test(version);
  const setup = sessionSetup(settings, mariadb);
  // Migrations wait for each other's lock and may rebuild tables: no statement limit for them.
  const unlimited = mariadb ? 'set session max_statement_time = 0' : 'set session max_execution_time = 0';

  const newPool = (): mysql.Pool => {
    const created = mysql.createPool({
      uri: url,
      connectionLimit: settings.poolSize,
      connectTimeout: settings.connectTimeoutMs,
      enableKeepAlive: true,
      timezone: 'Z',
      // Ids are BIGINT and SUM() is DECIMAL on the wire; every value we store fits in 2^53, so
      // both come back as JavaScript numbers.
      supportBigNumbers: false,
      decimalNumbers: true,
    });
    // On the callback-style core pool: its 'connection' event hands over the raw connection, and
    // these queries are queued ahead of the first query anyone sends on it.
    created.pool.on('connection', (connection) => {
      // A pool connection listens for its first 'error' only (once): a connection that fails
      // twice must not end the process.
      listenForErrors(connection);
      for (const statement of setup) {
        // A session we could not set up must not serve queries: drop it, the next query fails.
        connection.query({ sql: statement, timeout: deadlineMs }, (error: unknown) => {
          if (error) connection.destroy();
        });
      }
    });
    return created;
  };

  let pool = newPool();
  const breaker = new Breaker(async () => {
    const fresh = newPool();
    try {
      await fresh.query({ sql: 'select 1', timeout: deadlineMs });
    } catch (error) {
      fresh.end().catch(() => {});
      throw error;
    }
    const old = pool;
    pool = fresh;
    // mysql2 ends a pool's busy connections too: give transactions still running on the old
    // pool the time of a statement to finish first.
    setTimeout(() => {
      old.end().catch(() => {});
    }, deadlineMs + 1000).unref();
  }, events);

  const { acquire, release, fault } = faultHandling<PoolConnection>({
    breaker,
    events,
    acquireTimeoutMs: settings.acquireTimeoutMs,
    classify: classifyMysqlError,
    checkout: () => pool.getConnection(),
    giveBack: (connection) => connection.release(),
    destroy: (connection) => connection.destroy(),
  });

  const runTransaction = async <T>(fn: (tx: MysqlRunner) => Promise<T>): Promise<T> => {
    const connection = await acquire();
    let committing = false;
    try {
      await connection.query({ sql: 'start transaction', timeout: deadlineMs });
      const result = await fn(wrap(connection, deadlineMs));
      committing = true;
      await connection.query({ sql: 'commit', timeout: deadlineMs });
      connection.release();
      return result;
    } catch (error) {
      const kind = classifyMysqlError(error);
      if (kind === 'lost' || kind === 'down') {
        release(connection, error);
      } else {
        // A connection that cannot roll back is in an unknown state; never reuse it.
        await connection.query({ sql: 'rollback', timeout: deadlineMs }).then(
          () => connection.release(),
          () => connection.destroy(),
        );
      }
      throw fault(error, committing);
    }
  };

  const onConnection = async <T>(fn: (connection: PoolConnection) => Promise<T>): Promise<T> => {
    const connection = await acquire();
    try {
      const result = await fn(connection);
      connection.release();
      return result;
    } catch (error) {
      release(connection, error);
      throw fault(error);
    }
  };

  const db: MysqlDatabase = {
    rows: (sql, params) => onConnection((connection) => wrap(connection, deadlineMs).rows(sql, params)),
    write: (sql, params) => onConnection((connection) => wrap(connection, deadlineMs).write(sql, params)),
    transaction: (fn) =>
      retryConflicts(
        () => runTransaction(fn),
        (error) => classifyMysqlError(error) === 'conflict',
      ),
    session: (fn) =>
      onConnection(async (connection) => {
        const conn = wrap(connection, MIGRATION_TIMEOUT_MS);
        await conn.write(unlimited);
        try {
          return await fn(conn);
        } finally {
          // Back to the limits every pooled session has; if that fails the connection is destroyed.
          await conn.write(setup[setup.length - 1]!);
        }
      }),
    close: async () => {
      breaker.stop();
      await pool.end();
    },
  };
  await db.rows('select 1');
  return db;
}
