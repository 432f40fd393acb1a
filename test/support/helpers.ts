// Test helpers: every suite runs once per backend against a real database of its own.
//   pglite    in-process, in memory
//   postgres  a fresh database on TEST_DATABASE_URL (npm test starts a throwaway server)
//   mysql     a fresh database on TEST_MYSQL_URL, when set
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { type App, buildApp } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { customerMismatches, recount } from '../../src/storage/audit.sql.ts';
import { openMysqlStore, openPgliteStore, openPostgresStore } from '../../src/storage/open.ts';
import type { Store } from '../../src/storage/store.ts';

export interface TestBackend {
  name: 'pglite' | 'postgres' | 'mysql';
  /** Opens a migrated store on a database no other suite uses. */
  open(): Promise<{ store: Store; url: string | undefined; drop: () => Promise<void> }>;
  /** Opens another connection pool to the same database (a second server process). */
  reopen(url: string | undefined): Promise<Store>;
}

const uniqueName = () => `bo_test_${randomBytes(6).toString('hex')}`;

const pgliteBackend: TestBackend = {
  name: 'pglite',
  async open() {
    const store = await openPgliteStore(undefined);
    await store.migrate();
    return { store, url: undefined, drop: async () => {} };
  },
  reopen: async () => {
    throw new Error('PGlite is one process; it has no second connection');
  },
};

function postgresBackend(serverUrl: string): TestBackend {
  return {
    name: 'postgres',
    async open() {
      const name = uniqueName();
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      const store = await openPostgresStore(url.toString(), { poolSize: 20 });
      await store.migrate();
      return {
        store,
        url: url.toString(),
        drop: async () => {
          const client = new pg.Client({ connectionString: serverUrl });
          await client.connect();
          await client.query(`drop database if exists ${name} with (force)`);
          await client.end();
        },
      };
    },
    reopen: (url) => openPostgresStore(url!, { poolSize: 20 }),
  };
}

/** The backends this run covers: PGlite always, PostgreSQL and MySQL when their URLs are set. */
export function backends(): TestBackend[] {
  const list: TestBackend[] = [pgliteBackend];
  if (process.env.TEST_DATABASE_URL) list.push(postgresBackend(process.env.TEST_DATABASE_URL));
  if (process.env.TEST_MYSQL_URL) list.push(mysqlBackend(process.env.TEST_MYSQL_URL));
  if (process.env.TEST_BACKENDS) {
    const only = process.env.TEST_BACKENDS.split(',');
    return list.filter((backend) => only.includes(backend.name));
  }
  return list;
}

function mysqlBackend(serverUrl: string): TestBackend {
  const open = (url: string) => openMysqlStore(url, { poolSize: 20 });
  const admin = async (sql: string) => {
    const { default: mysql } = await import('mysql2/promise');
    const connection = await mysql.createConnection({ uri: serverUrl });
    try {
      await connection.query(sql);
    } finally {
      await connection.end();
    }
  };
  return {
    name: 'mysql',
    async open() {
      const name = uniqueName();
      await admin(`create database ${name} character set utf8mb4 collate utf8mb4_bin`);
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      const store = await open(url.toString());
      await store.migrate();
      return { store, url: url.toString(), drop: () => admin(`drop database if exists ${name}`) };
    },
    reopen: (url) => open(url!),
  };
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env });
}

export interface Harness {
  app: App;
  store: Store;
  clock: ManualClock;
  config: Config;
  url: string | undefined;
  backend: TestBackend;
}

/**
 * Builds an app on a fresh database of `backend`, driven by a manual clock. Call the returned
 * close() in an after() hook.
 */
export async function harness(
  backend: TestBackend,
  env: Record<string, string> = {},
  /** Wraps the store the app uses (fault injection); the harness keeps the original. */
  wrapStore?: (store: Store) => Store,
): Promise<Harness & { close: () => Promise<void> }> {
  const { store, url, drop } = await backend.open();
  const clock = new ManualClock();
  const config = testConfig(env);
  const app = await buildApp({ config, store: wrapStore?.(store) ?? store, clock });
  await app.ready();
  return {
    app,
    store,
    clock,
    config,
    url,
    backend,
    close: async () => {
      await app.close();
      await store.close();
      await drop();
    },
  };
}

// ---- HTTP shorthands (app.inject: no socket) ----

export async function createEvent(app: App, totalSeats: number, name = 'Concert'): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/events',
    payload: { event: { name, total_seats: totalSeats } },
  });
  if (res.statusCode !== 201) throw new Error(`create event: ${res.statusCode} ${res.body}`);
  return res.json<{ event_id: number }>().event_id;
}

export async function hold(app: App, eventId: number, qty: number) {
  return app.inject({ method: 'POST', url: '/holds', payload: { hold: { event_id: eventId, qty } } });
}

export async function book(app: App, holdId: number, paymentToken: string) {
  return app.inject({
    method: 'POST',
    url: '/book',
    payload: { booking: { hold_id: holdId, payment_token: paymentToken } },
  });
}

/** The limits of an event made without any, and its empty waiting list, as its snapshot shows them. */
export const NO_LIMITS_BODY = {
  max_seats_per_customer: null,
  max_seats_per_hold: null,
  customer_required: false,
  waitlist_policy: 'fill',
  sale_opens_at: null,
  queue: null,
  waiting: 0,
};

export interface SnapshotBody {
  event_id: number;
  total: number;
  available: number;
  held: number;
  booked: number;
  waiting: number;
}

export async function snapshot(app: App, eventId: number): Promise<SnapshotBody> {
  const res = await app.inject({ method: 'GET', url: `/events/${eventId}` });
  if (res.statusCode !== 200) throw new Error(`snapshot: ${res.statusCode} ${res.body}`);
  return res.json();
}

/**
 * The books of one event: the snapshot from the counters, checked against a recount of the
 * hold and booking rows, and every customer's kept allowance against theirs. `balanced` means
 * the counters agree with the rows and add up, and no customer's count is off.
 */
export async function books(store: Store, eventId: number, now: Date) {
  const snap = (await store.snapshot(eventId, now))!;
  const rows = await recount(store.sql, eventId, now);
  const customers = await customerMismatches(store.sql, eventId);
  const balanced =
    snap.total === snap.available + snap.held + snap.booked &&
    snap.available >= 0 &&
    snap.held === rows.held &&
    snap.booked === rows.booked &&
    customers.length === 0;
  return { ...snap, recount: rows, customerMismatches: customers, balanced };
}

/**
 * Waits until every committed change is published (by this call or by the app's own feed): none
 * left unnumbered (MySQL) or above the watermark (PostgreSQL).
 */
export async function allPublished(store: Store, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await store.publishChanges();
    const published = await store.lastPosition();
    const [left] = await store.sql.rows<{ n: number }>(
      'select count(*) as n from changes where position is null or position > $1',
      [published],
    );
    if (Number(left!.n) === 0) return;
    if (Date.now() > deadline) throw new Error('changes were never published');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
