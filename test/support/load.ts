// A flash sale over real HTTP, for the fault and failover tests: clients that hold then book
// in a loop, and the checks every fault must pass: only successes, refusals and 503s with
// Retry-After; every acknowledged booking in the database afterwards; books that balance.
import assert from 'node:assert/strict';
import pg from 'pg';
import { Agent, request } from 'undici';
import { type App, buildApp } from '../../src/app.ts';
import { systemClock } from '../../src/clock.ts';
import type { Store } from '../../src/storage/store.ts';
import { books, testConfig } from './helpers.ts';

/** What the issue asks of an outage: a 503 within this, and service back within that. */
export const MAX_TIME_TO_503_MS = 2000;
export const MAX_RECOVERY_MS = 5000;
const CLIENTS = 16;

const agent = new Agent({ connections: 64 });
export const closeAgent = () => agent.close();

export interface Service {
  store: Store;
  base: string;
  /** A single-host URL of the database for direct checks (the current primary). */
  url: string | (() => Promise<string>);
}

/** A service that a fault suite owns: the app on a real port, over its own database. */
export interface OwnService extends Service {
  app: App;
  url: string;
  close(): Promise<void>;
}

/** Migrates `store`, builds the app on the system clock and listens on a free port. */
export async function serve(store: Store, url: string): Promise<OwnService> {
  await store.migrate();
  const app = await buildApp({ config: testConfig(), store, clock: systemClock });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    store,
    base,
    url,
    close: async () => {
      await app.close();
      await store.close();
    },
  };
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
  retryAfter: string | undefined;
  ms: number;
  at: number;
}

export async function call(
  base: string,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: object,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const started = Date.now();
  const res = await request(`${base}${path}`, {
    method,
    dispatcher: agent,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  const retryAfter = res.headers['retry-after'];
  return {
    status: res.statusCode,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
    ms: Date.now() - started,
    at: Date.now(),
  };
}

export const holdOn = (base: string, eventId: number, qty = 1, headers?: Record<string, string>, customer?: string) =>
  call(
    base,
    'POST',
    '/holds',
    { hold: { event_id: eventId, qty, ...(customer === undefined ? {} : { customer }) } },
    headers,
  );

/** The storm's holds are spread over this many customers, so that every fault meets their counts. */
const STORM_CUSTOMERS = 8;
export const bookOn = (base: string, holdId: number, paymentToken: string) =>
  call(base, 'POST', '/book', { booking: { hold_id: holdId, payment_token: paymentToken } });

export async function createEvent(base: string, seats: number): Promise<number> {
  const res = await call(base, 'POST', '/events', { event: { name: 'Flash sale', total_seats: seats } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.event_id as number;
}

/**
 * Clients that hold then book in a loop until stopped, as a flash sale would; a /book that
 * gets a 503 is retried with the same hold and token, as the 503 says to.
 */
export function storm(base: string, eventId: number) {
  const replies: Reply[] = [];
  const bookings = new Map<number, number>(); // booking id -> hold id
  let running = true;
  let sent = 0;
  const client = async () => {
    while (running) {
      const held = await holdOn(base, eventId, 1, undefined, `storm-${sent++ % STORM_CUSTOMERS}`);
      replies.push(held);
      if (held.status !== 201) {
        if (held.status === 503) await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      for (let attempt = 0; attempt < 100 && running; attempt++) {
        const booked = await bookOn(base, held.body.hold_id as number, held.body.payment_token as string);
        replies.push(booked);
        if (booked.status === 200 || booked.status === 201) {
          bookings.set(booked.body.booking_id as number, held.body.hold_id as number);
          break;
        }
        if (booked.status !== 503) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);
  return {
    replies,
    bookings,
    stop: async () => {
      running = false;
      await Promise.all(clients);
    },
  };
}

/** Polls POST /holds until one succeeds; returns how long that took. */
export async function timeToFirstHold(base: string, eventId: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await holdOn(base, eventId)).status === 201) return Date.now() - started;
    if (Date.now() - started > 30_000) throw new Error('the service did not recover within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Everything a client saw during a fault was a success, a refusal, or a 503 with Retry-After. */
export function assertOnly503s(replies: Reply[]): void {
  const unexpected = replies.filter((r) => ![200, 201, 409, 503].includes(r.status));
  assert.deepEqual(
    unexpected.map((r) => `${r.status} ${JSON.stringify(r.body)}`),
    [],
    'no 500s, no other errors',
  );
  const bare = replies.filter((r) => r.status === 503 && r.retryAfter === undefined);
  assert.equal(bare.length, 0, '503s carry Retry-After');
  for (const r of replies.filter((reply) => reply.status === 503)) {
    assert.ok(['database_unavailable', 'outcome_unknown'].includes(r.body.code as string), JSON.stringify(r.body));
  }
}

/** Every acknowledged booking is in the database, confirmed, and the books balance. */
export async function assertBooksHold(s: Service, eventId: number, bookings: Map<number, number>): Promise<void> {
  const client = new pg.Client({ connectionString: typeof s.url === 'string' ? s.url : await s.url() });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: number; hold_id: number; status: string }>(
      'select id::int, hold_id::int, status from bookings where id = any($1::bigint[])',
      [[...bookings.keys()]],
    );
    const found = new Map(rows.map((row) => [row.id, row]));
    const lost = [...bookings].filter(
      ([id, holdId]) => found.get(id)?.hold_id !== holdId || found.get(id)?.status !== 'confirmed',
    );
    assert.deepEqual(lost, [], 'no acknowledged booking is lost');
  } finally {
    await client.end();
  }
  const b = await books(s.store, eventId, new Date());
  assert.ok(b.balanced, `books balance: ${JSON.stringify(b)}`);
}

/** Waits, in real time, until a condition holds (bounded). */
export async function until(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting (${timeoutMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
