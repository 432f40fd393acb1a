// PostgreSQL servers through a pg connection pool, behind the same `PgDatabase` as embedded
// PGlite (pglite.ts): the store above this sees only `SqlRunner`. One URL may list several hosts
// (postgres-url.ts); the pool is on whichever is the primary, found again after a failover.
//
// Against a server, every call can fail, and none may crash the process or hang:
//  - every connection has an 'error' listener for its whole life, checked out or idle;
//  - every wait is bounded: connect, acquire, statement (server-side, and client-side for a
//    server that cannot even cancel), idle in transaction;
//  - errors are sorted (classifyPgError) into a 503 the client can act on, a transaction retried
//    after a deadlock, or a bug (anything else, left as it is);
//  - a connection that broke is destroyed, never returned to the pool;
//  - when the server is down the breaker answers 503 at once, and its probe finds the primary
//    again (among several hosts after a failover) and swaps in a fresh pool.
// What is done about a fault is shared with mysql.ts (faults.ts); what a fault is, is here.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { DatabaseUnavailable } from '../errors.ts';
import { Breaker, type FaultKind, describe, faultHandling, listenForErrors, retryConflicts } from './faults.ts';
import { type PgConfig, type PgHost, type PgTarget, describeHost, parsePostgresUrl } from './postgres-url.ts';
import {
  CLIENT_DEADLINE_GRACE_MS,
  DATABASE_DEFAULTS,
  PG_NUMBER_PARSERS,
  type PgDatabase,
  type ServerDatabaseOptions,
  type SqlResult,
  type SqlRunner,
  type TransactionOptions,
} from './types.ts';

type Settings = typeof DATABASE_DEFAULTS;

/** SQLSTATEs by what to do about them. */
const DOWN_STATES = new Set([
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, shutting down, in recovery
  '25006', // read_only_sql_transaction: we are on a standby, or a node not yet promoted
  '3D000', // invalid_catalog_name: the database is not (yet) there, e.g. mid-restore
]);
const LOST_STATES = new Set(['57P01', '57P05']); // admin_shutdown (pg_terminate_backend), idle_session_timeout
const CONFLICT_STATES = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
const BUSY_STATES = new Set([
  '57014', // query_canceled: our statement timeout
  '55P03', // lock_not_available
  '25P03', // idle_in_transaction_session_timeout
]);
const NODE_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** What a pg error means for us; undefined for errors that are bugs or refusals of bad SQL. */
export function classifyPgError(error: unknown): FaultKind | undefined {
  if (error instanceof DatabaseUnavailable) return 'busy';
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (CONFLICT_STATES.has(code)) return 'conflict';
    if (DOWN_STATES.has(code)) return 'down';
    if (LOST_STATES.has(code) || code.startsWith('08')) return 'lost';
    if (BUSY_STATES.has(code) || code.startsWith('53')) return 'busy'; // 53: insufficient resources
    if (NODE_NETWORK_CODES.has(code)) return 'lost';
  }
  if (typeof message === 'string') {
    // node-postgres reports these without a code.
    if (message === 'Query read timeout') return 'down'; // the server did not answer at all
    if (/timeout exceeded when trying to connect|connection timeout/i.test(message)) return 'down';
    if (/Connection terminated|not queryable|Client was closed|Connection closed/i.test(message)) return 'lost';
  }
  return undefined;
}

/**
 * A statement with parameters is sent as a named (prepared) statement: each connection parses
 * and plans it once instead of on every call. Its name is derived from its text, so one text
 * always has one name. Statements without parameters (begin, commit, set local …) go as they are.
 */
const statementNames = new Map<string, string>();
function statement(text: string, values: unknown[]): pg.QueryConfig {
  if (values.length === 0) return { text };
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `bo_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/** How soon a LISTEN connection that broke is opened again. */
const LISTEN_RECONNECT_MS = 500;

/** The message a commit gets when it was cancelled while waiting for a synchronous standby. */
const SYNC_REP_CANCELLED = /canceling wait for synchronous replication/i;

/** A pg client with the flags we keep on it. */
type TrackedClient = pg.PoolClient & { syncRepCancelled?: boolean };

function newPool(config: PgConfig, settings: Settings): pg.Pool {
  const created = new pg.Pool({
    ...config,
    max: settings.poolSize,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.statementTimeoutMs,
    query_timeout: settings.statementTimeoutMs + CLIENT_DEADLINE_GRACE_MS,
    idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs,
    // A dead peer that never closed the socket (a host gone mid-failover) is noticed by the
    // kernel rather than never.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'box-office',
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        PG_NUMBER_PARSERS[oid] ?? pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // pg-pool listens for errors only on idle clients; a checked-out client whose server dies
  // emits 'error' too.
  listenForErrors(created);
  created.on('connect', (client: TrackedClient) => {
    listenForErrors(client);
    client.on('notice', (notice) => {
      if (SYNC_REP_CANCELLED.test(notice.message ?? '')) client.syncRepCancelled = true;
    });
  });
  return created;
}

/** A client connected to host, with the URL's sslmode (TLS or plain, whichever works for allow and prefer). */
function connectTo(target: PgTarget, host: PgHost, settings: Settings): Promise<pg.Client> {
  return target.open(host, async (config) => {
    const client = new pg.Client({
      ...config,
      connectionTimeoutMillis: settings.connectTimeoutMs,
      query_timeout: settings.statementTimeoutMs + CLIENT_DEADLINE_GRACE_MS,
    });
    listenForErrors(client);
    try {
      await client.connect();
      return client;
    } catch (error) {
      client.end().catch(() => {});
      throw error;
    }
  });
}

/** The first host that answers, and accepts writes when the URL asks for a primary. */
async function findPrimary(target: PgTarget, settings: Settings): Promise<PgHost> {
  if (target.hosts.length === 1 && !target.requirePrimary) {
    // sslmode allow or prefer: learn whether this server takes TLS, for the pool to use.
    if (target.learnsSsl)
      await connectTo(target, target.hosts[0]!, settings).then(
        (client) => client.end().catch(() => {}),
        () => {},
      );
    return target.hosts[0]!;
  }
  const refusals: string[] = [];
  for (const host of target.hosts) {
    let client: pg.Client | undefined;
    try {
      client = await connectTo(target, host, settings);
      // What libpq checks for target_session_attrs=read-write (transaction_read_only, which
      // a hot standby reports as on), plus the recovery flag that 'primary' checks.
      const { rows } = await client.query<{ standby: boolean; read_only: string }>(
        "select pg_is_in_recovery() as standby, current_setting('transaction_read_only') as read_only",
      );
      const [state] = rows;
      if (state !== undefined && !state.standby && state.read_only === 'off') return host;
      refusals.push(`${describeHost(host)} is read-only`);
    } catch (error) {
      refusals.push(`${describeHost(host)}: ${describe(error)}`);
    } finally {
      client?.end().catch(() => {});
    }
  }
  throw new DatabaseUnavailable(`no writable PostgreSQL server: ${refusals.join('; ')}`);
}

/**
 * LISTEN needs a connection of its own for as long as it listens, so not a pooled one. It
 * follows the primary the pool is on (`config` is asked at each connection), and reconnects
 * after any error.
 */
async function listenOn(
  config: () => PgConfig,
  settings: Settings,
  channel: string,
  onMessage: (payload: string) => void,
): Promise<() => Promise<void>> {
  if (!/^[a-z_]+$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  let stopped = false;
  let current: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const again = () => {
    if (stopped || retry !== undefined) return;
    retry = setTimeout(() => {
      retry = undefined;
      void connect();
    }, LISTEN_RECONNECT_MS);
    retry.unref();
  };
  const connect = async () => {
    const client = new pg.Client({
      ...config(),
      connectionTimeoutMillis: settings.connectTimeoutMs,
      keepAlive: true,
      application_name: 'box-office-listen',
    });
    listenForErrors(client);
    client.on('end', again);
    client.on('notification', (message) => onMessage(message.payload ?? ''));
    try {
      await client.connect();
      await client.query(`listen ${channel}`);
      current = client;
      onMessage('');
    } catch {
      client.end().catch(() => {});
      again();
    }
  };
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await current?.end().catch(() => {});
  };
}

export async function openPostgres(url: string, options: Partial<ServerDatabaseOptions> = {}): Promise<PgDatabase> {
  const settings = { ...DATABASE_DEFAULTS, ...options };
  const { events = {} } = settings;
  const target = parsePostgresUrl(url);

  let primary = await findPrimary(target, settings);
  let pool = newPool(target.configFor(primary), settings);

  const breaker = new Breaker(async () => {
    const found = await findPrimary(target, settings);
    const fresh = newPool(target.configFor(found), settings);
    try {
      await fresh.query('select 1');
    } catch (error) {
      fresh.end().catch(() => {});
      throw error;
    }
    // Every connection of the old pool may be broken: none is reused. Transactions still
    // running on it finish (or fail) on their own connections first.
    const old = pool;
    pool = fresh;
    primary = found;
    old.end().catch(() => {});
  }, events);

  const { acquire, release, fault } = faultHandling<TrackedClient>({
    breaker,
    events,
    acquireTimeoutMs: settings.acquireTimeoutMs,
    classify: classifyPgError,
    checkout: () => pool.connect(),
    giveBack: (client) => client.release(),
    // pg-pool destroys a client released with an error.
    // Any truthy argument makes pg destroy the client; `true` when what was thrown is no Error.
    destroy: (client, error) => client.release(error instanceof Error ? error : true),
    where: () => describeHost(primary),
  });

  const clientRunner = (client: pg.PoolClient, timeoutMs?: number): SqlRunner => ({
    async query<R>(sql: string, params: unknown[] = []) {
      const result = await client.query({
        ...statement(sql, params),
        ...(timeoutMs === undefined ? {} : { query_timeout: timeoutMs + CLIENT_DEADLINE_GRACE_MS }),
      } as pg.QueryConfig);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
  });

  const runTransaction = async <T>(fn: (tx: SqlRunner) => Promise<T>, options: TransactionOptions): Promise<T> => {
    const client = await acquire();
    let committing = false;
    try {
      await client.query('begin');
      if (options.timeoutMs !== undefined)
        await client.query(`set local statement_timeout = ${Number(options.timeoutMs)}`);
      const result = await fn(clientRunner(client, options.timeoutMs));
      committing = true;
      client.syncRepCancelled = false;
      await client.query('commit');
      if (client.syncRepCancelled) {
        // Committed here, but the synchronous standby never confirmed it: after a failover it
        // may be gone. Never acknowledge that as a success.
        client.release(new Error('synchronous replication wait cancelled'));
        throw new DatabaseUnavailable('the commit was not confirmed by a synchronous standby', true);
      }
      client.release();
      return result;
    } catch (error) {
      if (error instanceof DatabaseUnavailable && error.inDoubt) throw error;
      const kind = classifyPgError(error);
      if (kind === 'lost' || kind === 'down') {
        release(client, error);
      } else {
        try {
          await client.query('rollback');
          client.release();
        } catch (rollbackError) {
          client.release(rollbackError instanceof Error ? rollbackError : true);
        }
      }
      throw fault(error, committing);
    }
  };

  const autocommit = async <R>(sql: string, params: unknown[] = [], writes: boolean): Promise<SqlResult<R>> => {
    const client = await acquire();
    try {
      const result = await client.query(statement(sql, params));
      client.release();
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } catch (error) {
      release(client, error);
      throw fault(error, writes);
    }
  };

  const db: PgDatabase = {
    engine: 'postgres',
    query: (sql, params) => autocommit(sql, params, false),
    write: (sql, params) => autocommit(sql, params, true),
    transaction: (fn, options = {}) =>
      retryConflicts(
        () => runTransaction(fn, options),
        (error) => classifyPgError(error) === 'conflict',
      ),
    exec: async (sql) => {
      await db.query(sql);
    },
    listen: (channel, onMessage) => listenOn(() => target.configFor(primary), settings, channel, onMessage),
    close: async () => {
      breaker.stop();
      await pool.end();
    },
  };
  await db.query('select 1');
  return db;
}
