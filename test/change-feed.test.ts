// The change feed on every backend: a change for every effect and none without one, in a
// replayable log with gapless positions, and live availability over SSE, across processes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { type App, buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { contractHarness, contractTest, installContractCheck } from './support/contract.ts';
import {
  type Harness,
  allPublished,
  backends,
  book,
  createEvent,
  hold,
  snapshot,
  testConfig,
} from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };
const agent = new Agent({ connections: 16 });
after(() => agent.close());

async function log(app: App, eventId: number, after = '0', limit = 100) {
  const res = await app.inject({ method: 'GET', url: `/events/${eventId}/changes?after=${after}&limit=${limit}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{
    changes: Array<Record<string, unknown> & { position: string; snapshot: object }>;
    next_cursor: string;
  }>();
}

for (const backend of backends()) {
  describe(`change log on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend, { env: { HOLD_TTL_SECONDS: '60' } });
    });
    after(() => h.close());

    test('every effect writes one change, in order, with the snapshot just after it', async () => {
      const eventId = await createEvent(h.app, 10);
      const a = (await hold(h.app, eventId, 2)).json();
      const b = (await hold(h.app, eventId, 3)).json();
      const token = (body: { payment_token: string }) => ({ 'x-payment-token': body.payment_token });
      assert.equal(
        (
          await h.app.inject({
            method: 'POST',
            url: `/holds/${a.hold_id}/extend`,
            headers: token(a),
            payload: { seconds: 30 },
          })
        ).statusCode,
        200,
      );
      assert.equal(
        (await h.app.inject({ method: 'DELETE', url: `/holds/${b.hold_id}`, headers: token(b) })).statusCode,
        200,
      );
      const booking = (await book(h.app, a.hold_id, a.payment_token)).json();
      assert.equal(
        (await h.app.inject({ method: 'POST', url: `/bookings/${booking.booking_id}/cancel` })).statusCode,
        200,
      );
      const c = (await hold(h.app, eventId, 4)).json();
      assert.equal((await h.app.inject({ method: 'POST', url: `/admin/holds/${c.hold_id}/expire` })).statusCode, 200);
      const d = (await hold(h.app, eventId, 1)).json();
      h.clock.advanceSeconds(61);
      assert.equal((await h.app.inject({ method: 'POST', url: '/admin/sweep' })).json().expired, 1);
      assert.equal(
        (await h.app.inject({ method: 'PATCH', url: `/events/${eventId}`, payload: { event: { total_seats: 12 } } }))
          .statusCode,
        200,
      );
      await allPublished(h.store);

      const { changes } = await log(h.app, eventId);
      const seen = changes.map((c) => [c.type, c.hold_id ?? c.booking_id ?? null, c.snapshot]);
      const s = (available: number, held: number, booked: number, total = 10) => ({
        total,
        available,
        held,
        booked,
        waiting: 0,
      });
      assert.deepEqual(seen, [
        ['event.created', null, s(10, 0, 0)],
        ['hold.granted', a.hold_id, s(8, 2, 0)],
        ['hold.granted', b.hold_id, s(5, 5, 0)],
        ['hold.extended', a.hold_id, s(5, 5, 0)],
        ['hold.released', b.hold_id, s(8, 2, 0)],
        ['booking.created', a.hold_id, s(8, 0, 2)],
        ['booking.cancelled', a.hold_id, s(10, 0, 0)],
        ['hold.granted', c.hold_id, s(6, 4, 0)],
        ['hold.expired', c.hold_id, s(10, 0, 0)],
        ['hold.granted', d.hold_id, s(9, 1, 0)],
        ['hold.expired', d.hold_id, s(10, 0, 0)],
        ['event.updated', null, s(12, 0, 0, 12)],
      ]);
      assert.equal(changes[5]!.booking_id, booking.booking_id);
      const positions = changes.map((c) => Number(c.position));
      assert.deepEqual(
        positions,
        [...positions].sort((x, y) => x - y),
        'in position order',
      );
      const last = changes[changes.length - 1]!.snapshot;
      const now = await snapshot(h.app, eventId);
      assert.deepEqual(last, {
        total: now.total,
        available: now.available,
        held: now.held,
        booked: now.booked,
        waiting: now.waiting,
      });
    });

    test('a flash sale: one change per granted hold, none for a refusal, and pages with no gap and no duplicate', async () => {
      const eventId = await createEvent(h.app, 50);
      const results = await Promise.all(Array.from({ length: 80 }, () => hold(h.app, eventId, 1)));
      const granted = results.filter((r) => r.statusCode === 201).map((r) => r.json().hold_id as number);
      assert.equal(granted.length, 50);
      await allPublished(h.store);
      const read: Array<Record<string, unknown>> = [];
      let cursor = '0';
      for (let page = 0; page < 20; page++) {
        const { changes, next_cursor } = await log(h.app, eventId, cursor, 7);
        read.push(...changes);
        if (changes.length === 0) {
          assert.equal(next_cursor, cursor, 'an empty page returns the same cursor');
          break;
        }
        cursor = next_cursor;
      }
      const holds = read.filter((c) => c.type === 'hold.granted').map((c) => c.hold_id);
      assert.deepEqual([...holds].sort(), [...granted].sort(), 'a change for every granted hold and no other');
      assert.equal(new Set(read.map((c) => c.position)).size, read.length, 'no duplicates');
      const last = read[read.length - 1]!.snapshot as { available: number; held: number };
      assert.deepEqual([last.available, last.held], [0, 50]);
    });

    test('a batch that fails writes no change, and its effect is gone with it', async () => {
      const eventId = await createEvent(h.app, 5);
      await allPublished(h.store);
      const before = (await log(h.app, eventId)).changes.length;
      const original = h.store.recordChanges.bind(h.store);
      h.store.recordChanges = async (...args) => {
        await original(...args);
        throw new Error('injected: crash after writing changes');
      };
      try {
        // Keyed, so the batch takes the transaction path on every backend.
        const res = await h.app.inject({
          method: 'POST',
          url: '/holds',
          headers: { 'idempotency-key': `crash-${eventId}` },
          payload: { hold: { event_id: eventId, qty: 2 } },
        });
        assert.equal(res.statusCode, 500);
      } finally {
        h.store.recordChanges = original;
      }
      await allPublished(h.store);
      assert.equal((await log(h.app, eventId)).changes.length, before, 'no change without its effect');
      assert.deepEqual((await snapshot(h.app, eventId)).held, 0, 'no effect without its change');
    });

    test('GET /changes needs admin when ADMIN_TOKEN is set, and reads every event', async () => {
      const guarded = await contractHarness(backend, { env: { ADMIN_TOKEN: 'a-token-for-the-change-log' } });
      try {
        assert.equal((await guarded.app.inject({ method: 'GET', url: '/changes' })).statusCode, 401);
        const one = await createEventAs(guarded.app, 'a-token-for-the-change-log');
        await allPublished(guarded.store);
        const res = await guarded.app.inject({
          method: 'GET',
          url: '/changes?after=0',
          headers: { authorization: 'Bearer a-token-for-the-change-log' },
        });
        assert.equal(res.statusCode, 200);
        assert.ok(
          res
            .json()
            .changes.some((c: { event_id: number; type: string }) => c.event_id === one && c.type === 'event.created'),
        );
      } finally {
        await guarded.close();
      }
    });
  });

  describe(`availability stream on ${backend.name}`, () => {
    let h: H;
    let base: string;
    before(async () => {
      h = await contractHarness(backend);
      base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    });
    after(() => h.close());

    test('the first message is the snapshot; holds move it within a second, coalesced', async () => {
      const eventId = await createEvent(h.app, 100);
      const sse = await openStream(`${base}/events/${eventId}/stream`);
      try {
        const first = await sse.next('availability');
        assert.deepEqual(
          [first.data.event_id, first.data.available, first.data.held, first.data.waiting],
          [eventId, 100, 0, 0],
        );
        const started = Date.now();
        await Promise.all(Array.from({ length: 30 }, () => hold(h.app, eventId, 1)));
        const moved = await sse.until('availability', (data) => data.held === 30, 1000);
        assert.equal(moved.data.available, 70);
        assert.ok(Date.now() - started < 1000);
        assert.ok(sse.count('availability') <= 1 + 4, `coalesced: ${sse.count('availability')} messages for 30 holds`);
      } finally {
        sse.close();
      }
    });

    test('HEAD on the streams answers their headers and ends, with no stream', async () => {
      const eventId = await createEvent(h.app, 5);
      for (const url of ['/stream', `/events/${eventId}/stream`, `/stream?include=changes`]) {
        const res = await fetch(`${base}${url}`, { method: 'HEAD', signal: AbortSignal.timeout(2000) });
        assert.equal(res.status, 200, url);
        assert.match(String(res.headers.get('content-type')), /^text\/event-stream/);
        assert.equal(await res.text(), '');
      }
      const missing = await fetch(`${base}/events/999999/stream`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(2000),
      });
      assert.equal(missing.status, 404);
      assert.match(String(missing.headers.get('content-type')), /^application\/problem\+json/);
    });

    test('Last-Event-ID resumes the changes with no gap', async () => {
      const eventId = await createEvent(h.app, 100);
      const first = await openStream(`${base}/events/${eventId}/stream?include=changes`);
      const start = Number((await first.next('availability')).id);
      for (let i = 0; i < 5; i++) await hold(h.app, eventId, 1);
      await first.until('change', () => first.count('change') >= 5, 2000);
      first.close();
      const lastId = first.events('change').at(-1)!.id;
      for (let i = 0; i < 5; i++) await hold(h.app, eventId, 1); // while disconnected
      const resumed = await openStream(`${base}/events/${eventId}/stream?include=changes`, { 'last-event-id': lastId });
      try {
        const all = await (async () => {
          await allPublished(h.store);
          return (await log(h.app, eventId, String(start), 1000)).changes.map((c) => Number(c.position));
        })();
        await resumed.until('change', () => first.count('change') + resumed.count('change') >= all.length, 2000);
        const positions = [...first.events('change'), ...resumed.events('change')].map((e) => Number(e.id));
        assert.deepEqual(positions, all, 'every change once, in order, across the reconnect');
      } finally {
        resumed.close();
      }
    });
  });
  describe(`many streams at once on ${backend.name}`, () => {
    const STREAMS = 40;
    const reads = { snapshot: 0, lastPosition: 0 };
    const many = new Agent({ connections: STREAMS + 8 });
    let h: H;
    let base: string;
    before(async () => {
      h = await contractHarness(backend, {
        wrapStore: (store) => ({
          ...store,
          // A slow read, as under load: streams arriving meanwhile wait for, and share, the next one.
          snapshot: async (...args) => {
            reads.snapshot++;
            await new Promise((resolve) => setTimeout(resolve, 100));
            return store.snapshot(...args);
          },
          lastPosition: () => (reads.lastPosition++, store.lastPosition()),
        }),
      });
      base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    });
    after(async () => {
      await h.close();
      await many.close();
    });

    test('streams opened together share one snapshot read, and every one gets the snapshot', async () => {
      const eventId = await createEvent(h.app, 50);
      await hold(h.app, eventId, 3);
      await allPublished(h.store);
      reads.snapshot = 0;
      reads.lastPosition = 0;
      const streams = await Promise.all(
        Array.from({ length: STREAMS }, () => openStream(`${base}/events/${eventId}/stream`, {}, many)),
      );
      try {
        const firsts = await Promise.all(streams.map((sse) => sse.next('availability')));
        for (const first of firsts) assert.deepEqual([first.data.available, first.data.held], [47, 3]);
        // One read per stream before; now one per batch of streams that joined before it started.
        assert.ok(reads.snapshot <= STREAMS / 4, `${reads.snapshot} snapshot reads for ${STREAMS} streams`);
        assert.ok(reads.lastPosition <= STREAMS / 4, `${reads.lastPosition} watermark reads for ${STREAMS} streams`);
      } finally {
        for (const sse of streams) sse.close();
      }
    });

    test('streams that open while holds are committing all end on the final availability', async () => {
      const eventId = await createEvent(h.app, 200);
      const holds: Array<Promise<unknown>> = [];
      const opening: Array<ReturnType<typeof openStream>> = [];
      for (let i = 0; i < 60; i++) {
        holds.push(hold(h.app, eventId, 1));
        if (i % 6 === 0) opening.push(openStream(`${base}/events/${eventId}/stream`, {}, many));
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      const streams = await Promise.all(opening);
      try {
        await Promise.all(holds);
        const final = (await snapshot(h.app, eventId)).available;
        assert.equal(final, 140);
        const started = Date.now();
        await Promise.all(streams.map((sse) => sse.until('availability', (data) => data.available === final, 1000)));
        assert.ok(Date.now() - started < 1000);
      } finally {
        for (const sse of streams) sse.close();
      }
    });
  });
}

describe(
  'two server processes on one PostgreSQL',
  { skip: backends().some((b) => b.name === 'postgres') ? false : 'no PostgreSQL' },
  () => {
    test('a stream on process A sees holds made on process B within a second', async () => {
      const backend = backends().find((b) => b.name === 'postgres')!;
      const { store, url, drop } = await backend.open();
      const other = await backend.reopen(url);
      const config = testConfig();
      const a = await buildApp({ config, store, clock: systemClock });
      const b = await buildApp({ config, store: other, clock: systemClock });
      try {
        const base = await a.listen({ port: 0, host: '127.0.0.1' });
        await b.ready();
        const eventId = await createEvent(b, 20);
        const sse = await openStream(`${base}/events/${eventId}/stream`);
        try {
          await sse.next('availability');
          const started = Date.now();
          for (let i = 0; i < 3; i++) assert.equal((await hold(b, eventId, 1)).statusCode, 201);
          await sse.until('availability', (data) => data.held === 3, 1000);
          assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
        } finally {
          sse.close();
        }
      } finally {
        await a.close();
        await b.close();
        await store.close();
        await other.close();
        await drop();
      }
    });
  },
);

async function createEventAs(app: App, token: string): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/events',
    headers: { authorization: `Bearer ${token}` },
    payload: { event: { name: 'Feed', total_seats: 3 } },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json().event_id;
}

interface SseEvent {
  event: string;
  id: string;
  data: Record<string, number | string>;
}

/** A minimal Server-Sent Events reader over a real connection. */
async function openStream(url: string, headers: Record<string, string> = {}, dispatcher: Agent = agent) {
  const controller = new AbortController();
  const res = await request(url, {
    dispatcher,
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  const received: SseEvent[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  res.body.setEncoding('utf8');
  res.body.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        block
          .split('\n')
          .filter((l) => !l.startsWith(':'))
          .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      );
      if (fields.event !== undefined)
        received.push({ event: fields.event, id: fields.id ?? '', data: JSON.parse(fields.data ?? '{}') });
      for (const waiter of waiters) waiter();
    }
  });
  res.body.on('error', () => {});
  let read = 0;
  const until = (event: string, match: (data: SseEvent['data']) => boolean, timeoutMs: number): Promise<SseEvent> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = [...received].reverse().find((e) => e.event === event && match(e.data));
        if (found !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${event} message matched within ${timeoutMs} ms: ${JSON.stringify(received.slice(-3))}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    next: async (event: string) => {
      const found = await until(event, () => true, 2000);
      read = received.indexOf(found) + 1;
      return found;
    },
    until,
    count: (event: string) => received.filter((e) => e.event === event).length,
    events: (event: string) => received.filter((e) => e.event === event),
    close: () => {
      void read;
      controller.abort();
    },
  };
}

contractTest();
