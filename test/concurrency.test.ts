// Flash-sale behaviour over real sockets and real connection pools: many concurrent holds for
// one event, concurrent booking retries, concurrent sweepers, and two server processes on one
// database.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { type App, buildApp } from '../src/app.ts';
import type { Store } from '../src/storage/store.ts';
import { Outbox } from '../src/changes/outbox.ts';
import { sweepOnce } from '../src/worker/sweeper.ts';
import {
  type Harness,
  backends,
  book,
  books,
  createEvent,
  harness,
  hold,
  snapshot,
  testConfig,
  NO_LIMITS_BODY,
} from './support/helpers.ts';
import { contractTest, installContractCheck } from './support/contract.ts';

// Every response below is checked against the OpenAPI document.
installContractCheck();

const RACERS = 240;
const SEATS = 50;

const agent = new Agent({ connections: RACERS, pipelining: 1 });
after(() => agent.close());

async function listen(app: App): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' });
}

async function postHold(base: string, eventId: number, qty: number) {
  const res = await request(`${base}/holds`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ hold: { event_id: eventId, qty } }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

const tally = (statuses: number[]) =>
  statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});

for (const backend of backends()) {
  describe(`concurrency on ${backend.name}`, () => {
    let h: Harness & { close: () => Promise<void> };
    let base: string;
    before(async () => {
      h = await harness(backend);
      base = await listen(h.app);
    });
    after(() => h.close());

    test(`${RACERS} concurrent holds for ${SEATS} seats: exactly ${SEATS} win, the rest get 409, no 5xx`, async () => {
      const eventId = await createEvent(h.app, SEATS);
      const results = await Promise.all(Array.from({ length: RACERS }, () => postHold(base, eventId, 1)));
      const counts = tally(results.map((r) => r.status));
      assert.deepEqual(counts, { 201: SEATS, 409: RACERS - SEATS });
      const ids = new Set(results.filter((r) => r.status === 201).map((r) => r.body.hold_id));
      assert.equal(ids.size, SEATS, 'every granted hold has its own id');
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.available, b.held, b.booked], [0, SEATS, 0]);
      assert.ok(b.balanced);
    });

    test('mixed sizes under contention: granted seats never exceed capacity and match the held count', async () => {
      const eventId = await createEvent(h.app, SEATS);
      const sizes = Array.from({ length: RACERS }, (_, i) => (i % 4) + 1);
      const results = await Promise.all(sizes.map((qty) => postHold(base, eventId, qty)));
      assert.ok(
        results.every((r) => r.status === 201 || r.status === 409),
        JSON.stringify(tally(results.map((r) => r.status))),
      );
      const grantedSeats = results.reduce((sum, r, i) => sum + (r.status === 201 ? sizes[i]! : 0), 0);
      const b = await books(h.store, eventId, h.clock.now());
      assert.equal(b.held, grantedSeats);
      assert.equal(grantedSeats, SEATS, 'small requests fill the seats a large one could not take');
      assert.ok(b.balanced);
    });

    test('20 concurrent /book retries of one hold make one booking, one 201 and 19 x 200', async () => {
      const eventId = await createEvent(h.app, 5);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 2)).json();
      const results = await Promise.all(
        Array.from({ length: 20 }, () =>
          request(`${base}/book`, {
            method: 'POST',
            dispatcher: agent,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ booking: { hold_id, payment_token } }),
          }).then(async (res) => ({ status: res.statusCode, body: (await res.body.json()) as { booking_id: number } })),
        ),
      );
      assert.deepEqual(tally(results.map((r) => r.status)), { 200: 19, 201: 1 });
      assert.equal(new Set(results.map((r) => r.body.booking_id)).size, 1);
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.available, b.held, b.booked], [3, 0, 2]);
      assert.ok(b.balanced);
    });

    test('two sweepers at once never double-process a hold', async () => {
      // Let earlier tests' holds lapse and sweep them, so only this test's holds are counted.
      h.clock.advanceSeconds(121);
      await sweepOnce(h.store, h.clock, new Outbox(h.store, true));
      const eventIds = [await createEvent(h.app, 30), await createEvent(h.app, 30), await createEvent(h.app, 30)];
      let lapsing = 0;
      for (const eventId of eventIds) {
        for (let i = 0; i < 10; i++) {
          assert.equal((await hold(h.app, eventId, 2)).statusCode, 201);
          lapsing++;
        }
      }
      h.clock.advanceSeconds(121);
      const [a, b] = await Promise.all([
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
      ]);
      const rest = await sweepOnce(h.store, h.clock, new Outbox(h.store, true));
      assert.equal(a + b + rest, lapsing, 'each lapsed hold expired exactly once');
      for (const eventId of eventIds) {
        const snap = await books(h.store, eventId, h.clock.now());
        assert.deepEqual([snap.available, snap.held], [30, 0]);
        assert.ok(snap.balanced);
      }
    });

    test('holds, bookings, lapses and sweeps interleaved keep the books balanced', async () => {
      const eventId = await createEvent(h.app, 40);
      const work: Promise<unknown>[] = [];
      for (let i = 0; i < 60; i++) {
        work.push(
          postHold(base, eventId, 1 + (i % 3)).then(async (r) => {
            if (r.status === 201 && i % 2 === 0)
              await book(h.app, r.body.hold_id as number, r.body.payment_token as string);
          }),
        );
        if (i % 20 === 0) work.push(sweepOnce(h.store, h.clock, new Outbox(h.store, true)));
      }
      await Promise.all(work);
      h.clock.advanceSeconds(121);
      await Promise.all([
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
        postHold(base, eventId, 1),
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
      ]);
      const b = await books(h.store, eventId, h.clock.now());
      assert.ok(b.balanced, JSON.stringify(b));
      assert.ok(b.booked > 0);
    });
  });
}

for (const backend of backends().filter((b) => b.name !== 'pglite')) {
  describe(`two server processes on one ${backend.name} database`, () => {
    let h: Harness & { close: () => Promise<void> };
    let second: { app: App; store: Store };
    let bases: string[];
    before(async () => {
      h = await harness(backend);
      const store = await backend.reopen(h.url);
      const app = await buildApp({ config: testConfig(), store, clock: h.clock });
      second = { app, store };
      bases = [await listen(h.app), await listen(app)];
    });
    after(async () => {
      await second.app.close();
      await second.store.close();
      await h.close();
    });

    test(`${RACERS} holds split over two servers with separate pools and batchers: exactly ${SEATS} win`, async () => {
      const eventId = await createEvent(h.app, SEATS);
      const results = await Promise.all(Array.from({ length: RACERS }, (_, i) => postHold(bases[i % 2]!, eventId, 1)));
      assert.deepEqual(tally(results.map((r) => r.status)), { 201: SEATS, 409: RACERS - SEATS });
      assert.deepEqual(await snapshot(second.app, eventId), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: SEATS,
        available: 0,
        held: SEATS,
        booked: 0,
      });
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });
  });
}

contractTest();
