// Per-customer limits, tested the way someone trying to get round them would: many concurrent
// requests of one customer over real sockets (one process and two), mixed quantities in one
// batch, the allowance coming back on expiry (no sweep), release and cancel, an email written
// another way, replays, bad input, a fault mid-batch, and a model of random sequences checked
// after every step.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { type App, buildApp } from '../src/app.ts';
import { DatabaseUnavailable } from '../src/errors.ts';
import type { Store } from '../src/storage/store.ts';
import { contractHarness, contractTest, installContractCheck, isProblem } from './support/contract.ts';
import { type Harness, allPublished, backends, books, testConfig } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };

const RACERS = 50;
const LIMIT = 4;
const HOLD_TTL_SECONDS = 120;
const ADMIN = { authorization: 'Bearer limits-admin-token-0123' };
const ENV = { ADMIN_TOKEN: 'limits-admin-token-0123' };

const agent = new Agent({ connections: RACERS, pipelining: 1 });
after(() => agent.close());

interface Granted {
  hold_id: number;
  payment_token: string;
  customer: string | null;
}

async function createEvent(app: App, totalSeats: number, limits: Record<string, unknown> = {}): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/events',
    headers: ADMIN,
    payload: { event: { name: 'Limited', total_seats: totalSeats, ...limits } },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ event_id: number }>().event_id;
}

const holdFor = (app: App, eventId: number, qty: number, customer?: string, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/holds',
    headers,
    payload: { hold: { event_id: eventId, qty, ...(customer === undefined ? {} : { customer }) } },
  });

async function postHold(base: string, eventId: number, qty: number, customer: string) {
  const res = await request(`${base}/holds`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ hold: { event_id: eventId, qty, customer } }),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function seatsOf(app: App, eventId: number, customer: string) {
  const res = await app.inject({
    method: 'GET',
    url: `/events/${eventId}/customers/${encodeURIComponent(customer)}`,
    headers: ADMIN,
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ customer: string; held: number; booked: number; limit: number | null }>();
}

const book = (app: App, hold: Granted) =>
  app.inject({
    method: 'POST',
    url: '/book',
    payload: { booking: { hold_id: hold.hold_id, payment_token: hold.payment_token } },
  });

const release = (app: App, hold: Granted) =>
  app.inject({ method: 'DELETE', url: `/holds/${hold.hold_id}`, headers: { 'x-payment-token': hold.payment_token } });

const cancel = (app: App, bookingId: number) =>
  app.inject({ method: 'POST', url: `/bookings/${bookingId}/cancel`, headers: ADMIN });

/** The seats this customer's requests were granted in total. */
const grantedSeats = (replies: Array<{ status: number; body: Record<string, unknown> }>, qtys: number[]) =>
  replies.reduce((sum, reply, i) => sum + (reply.status === 201 ? qtys[i]! : 0), 0);

for (const backend of backends()) {
  describe(`customer limits on ${backend.name}`, () => {
    let h: H;
    let base: string;
    before(async () => {
      h = await contractHarness(backend, { env: ENV });
      base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    });
    after(() => h.close());

    test(`${RACERS} concurrent holds of one seat by one customer with a limit of ${LIMIT}: exactly ${LIMIT}`, async () => {
      const eventId = await createEvent(h.app, 1000, { max_seats_per_customer: LIMIT });
      const replies = await Promise.all(
        Array.from({ length: RACERS }, () => postHold(base, eventId, 1, 'racer@example.com')),
      );
      assert.equal(replies.filter((r) => r.status === 201).length, LIMIT);
      for (const reply of replies.filter((r) => r.status !== 201)) {
        assert.equal(reply.status, 409);
        assert.equal(reply.body.code, 'customer_limit_reached');
        assert.equal(reply.body.limit, LIMIT);
        assert.equal(reply.body.in_use, LIMIT);
        assert.equal(reply.body.requested, 1);
      }
      assert.deepEqual(await seatsOf(h.app, eventId, 'racer@example.com'), {
        customer: 'racer@example.com',
        held: LIMIT,
        booked: 0,
        limit: LIMIT,
      });
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });

    test('mixed quantities in one burst are decided in order: never past the limit, and a smaller one still fits', async () => {
      const eventId = await createEvent(h.app, 1000, { max_seats_per_customer: LIMIT });
      const qtys = [3, 2, 1, 1, 2, 3, 1];
      const replies = await Promise.all(qtys.map((qty) => postHold(base, eventId, qty, 'mixed')));
      // Whatever the order, greedy in-order granting fills the allowance exactly here.
      assert.equal(grantedSeats(replies, qtys), LIMIT);
      for (const [i, reply] of replies.entries()) {
        if (reply.status === 201) continue;
        assert.equal(reply.body.code, 'customer_limit_reached');
        assert.ok((reply.body.in_use as number) + qtys[i]! > LIMIT, 'refused only what would not fit');
      }
      assert.equal((await seatsOf(h.app, eventId, 'mixed')).held, LIMIT);
    });

    test('a lapsed hold stops counting at once, before any sweep; release and cancel give seats back; booking counts once', async () => {
      const eventId = await createEvent(h.app, 100, { max_seats_per_customer: LIMIT });
      const first = (await holdFor(h.app, eventId, 4, 'ann')).json<Granted>();
      isProblem(await holdFor(h.app, eventId, 1, 'ann'), 409, 'customer_limit_reached');
      h.clock.advanceSeconds(HOLD_TTL_SECONDS);
      assert.equal((await seatsOf(h.app, eventId, 'ann')).held, 0, 'lapsed: no longer held');
      const second = (await holdFor(h.app, eventId, 2, 'ann')).json<Granted>();
      assert.ok(second.hold_id > first.hold_id, 'the allowance came back without a sweep');

      const booked = await book(h.app, second);
      assert.equal(booked.statusCode, 201, booked.body);
      assert.deepEqual(await seatsOf(h.app, eventId, 'ann'), { customer: 'ann', held: 0, booked: 2, limit: LIMIT });
      const third = (await holdFor(h.app, eventId, 2, 'ann')).json<Granted>();
      isProblem(await holdFor(h.app, eventId, 1, 'ann'), 409, 'customer_limit_reached');

      assert.equal((await release(h.app, third)).statusCode, 200);
      assert.equal((await holdFor(h.app, eventId, 2, 'ann')).statusCode, 201, 'released seats came back');
      isProblem(await holdFor(h.app, eventId, 1, 'ann'), 409, 'customer_limit_reached');
      assert.equal((await cancel(h.app, booked.json<{ booking_id: number }>().booking_id)).statusCode, 200);
      assert.equal((await holdFor(h.app, eventId, 2, 'ann')).statusCode, 201, 'cancelled seats came back');
      assert.deepEqual(await seatsOf(h.app, eventId, 'ann'), { customer: 'ann', held: 4, booked: 0, limit: LIMIT });
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });

    test('an email in another case or with a +tag is the same customer; an account id is compared exactly', async () => {
      const eventId = await createEvent(h.app, 100, { max_seats_per_customer: 2 });
      assert.equal(
        (await holdFor(h.app, eventId, 1, 'Ann+Presale@Example.COM')).json<Granted>().customer,
        'ann@example.com',
      );
      assert.equal((await holdFor(h.app, eventId, 1, '  ann@example.com ')).statusCode, 201);
      const refused = isProblem(
        await holdFor(h.app, eventId, 1, 'ANN+again@example.com'),
        409,
        'customer_limit_reached',
      );
      assert.equal(refused.in_use, 2);
      assert.equal((await holdFor(h.app, eventId, 2, 'Account-7')).statusCode, 201);
      assert.equal((await holdFor(h.app, eventId, 2, 'account-7')).statusCode, 201, 'ids are compared exactly');
      assert.equal((await seatsOf(h.app, eventId, 'ANN@example.com')).held, 2, 'the staff view normalises too');
    });

    test('an Idempotency-Key replay is not counted again', async () => {
      const eventId = await createEvent(h.app, 100, { max_seats_per_customer: 2 });
      const key = { 'idempotency-key': `limit-replay-${eventId}` };
      const first = await holdFor(h.app, eventId, 2, 'bob', key);
      assert.equal(first.statusCode, 201);
      const again = await holdFor(h.app, eventId, 2, 'bob', key);
      assert.equal(again.statusCode, 201);
      assert.equal(again.headers['idempotent-replayed'], 'true');
      assert.equal(again.json<Granted>().hold_id, first.json<Granted>().hold_id);
      assert.equal((await seatsOf(h.app, eventId, 'bob')).held, 2);
    });

    test('max_seats_per_hold and customer_required refuse with their own codes; staff can change the limits', async () => {
      const eventId = await createEvent(h.app, 100, { max_seats_per_hold: 3, customer_required: true });
      const big = isProblem(await holdFor(h.app, eventId, 4, 'cy'), 422, 'hold_too_large');
      assert.deepEqual([big.limit, big.requested], [3, 4]);
      isProblem(await holdFor(h.app, eventId, 1), 422, 'customer_required');
      assert.equal((await holdFor(h.app, eventId, 3, 'cy')).statusCode, 201);

      const edited = await h.app.inject({
        method: 'PATCH',
        url: `/events/${eventId}`,
        headers: ADMIN,
        payload: { event: { max_seats_per_hold: null, customer_required: false, max_seats_per_customer: 5 } },
      });
      assert.equal(edited.statusCode, 200, edited.body);
      assert.deepEqual(
        [edited.json().max_seats_per_hold, edited.json().customer_required, edited.json().max_seats_per_customer],
        [null, false, 5],
      );
      assert.equal((await holdFor(h.app, eventId, 1)).statusCode, 201, 'anonymous again');
      isProblem(await holdFor(h.app, eventId, 3, 'cy'), 409, 'customer_limit_reached');
      assert.equal((await holdFor(h.app, eventId, 2, 'cy')).statusCode, 201);
    });

    test('public reads never show the customer; staff reads do', async () => {
      const eventId = await createEvent(h.app, 100);
      const granted = (await holdFor(h.app, eventId, 1, 'secret@example.com')).json<Granted>();
      const publicLog = await h.app.inject({ method: 'GET', url: `/events/${eventId}/changes` });
      assert.ok(!publicLog.body.includes('secret@example.com'), 'the public log hides it');
      assert.ok(!(await h.app.inject({ method: 'GET', url: `/events/${eventId}` })).body.includes('secret'));
      await allPublished(h.store);
      const staffChanges: Array<{ hold_id: number | null; customer?: string | null }> = [];
      for (let after = '0'; ;) {
        const page = await h.app.inject({ method: 'GET', url: `/changes?after=${after}&limit=1000`, headers: ADMIN });
        const body = page.json<{ changes: typeof staffChanges; next_cursor: string }>();
        staffChanges.push(...body.changes);
        if (body.changes.length === 0) break;
        after = body.next_cursor;
      }
      assert.ok(
        staffChanges.some((c) => c.hold_id === granted.hold_id && c.customer === 'secret@example.com'),
        'the admin log carries it',
      );
      const listed = await h.app.inject({
        method: 'GET',
        url: `/events/${eventId}/holds?customer=SECRET%40example.com`,
        headers: ADMIN,
      });
      assert.deepEqual(
        listed
          .json<{ holds: Array<{ hold_id: number; customer: string }> }>()
          .holds.map((x) => [x.hold_id, x.customer]),
        [[granted.hold_id, 'secret@example.com']],
      );
    });

    test('bad input is a 4xx and changes nothing', async () => {
      const eventId = await createEvent(h.app, 10, { max_seats_per_customer: 2 });
      for (const customer of ['', 'x'.repeat(10_000), 7, { id: 1 }, 'nul\u0000byte']) {
        const res = await h.app.inject({
          method: 'POST',
          url: '/holds',
          payload: { hold: { event_id: eventId, qty: 1, customer } },
        });
        isProblem(res, 400, 'validation_failed');
      }
      for (const limits of [
        { max_seats_per_customer: -1 },
        { max_seats_per_customer: 0 },
        { max_seats_per_customer: 11 },
        { max_seats_per_hold: 11 },
        { max_seats_per_hold: 'two' },
        { customer_required: 'yes' },
      ]) {
        const created = await h.app.inject({
          method: 'POST',
          url: '/events',
          headers: ADMIN,
          payload: { event: { name: 'Bad', total_seats: 10, ...limits } },
        });
        isProblem(created, 400, 'validation_failed');
        const edited = await h.app.inject({
          method: 'PATCH',
          url: `/events/${eventId}`,
          headers: ADMIN,
          payload: { event: limits },
        });
        isProblem(edited, 400, 'validation_failed');
      }
      const shrink = await h.app.inject({
        method: 'PATCH',
        url: `/events/${eventId}`,
        headers: ADMIN,
        payload: { event: { total_seats: 1 } },
      });
      isProblem(shrink, 400, 'validation_failed');
      const snapshot = (await h.app.inject({ method: 'GET', url: `/events/${eventId}` })).json();
      assert.deepEqual([snapshot.total, snapshot.available, snapshot.max_seats_per_customer], [10, 10, 2]);
    });

    test('a database fault in the middle of a customer batch leaves the allowance exact', async () => {
      const eventId = await createEvent(h.app, 100, { max_seats_per_customer: 3 });
      const original = h.store.recordChanges.bind(h.store);
      // The full path (an Idempotency-Key takes it) fails after the holds are inserted.
      h.store.recordChanges = async () => {
        throw new DatabaseUnavailable('injected: the connection was lost');
      };
      try {
        isProblem(
          await holdFor(h.app, eventId, 2, 'dee', { 'idempotency-key': `fault-${eventId}` }),
          503,
          'database_unavailable',
        );
      } finally {
        h.store.recordChanges = original;
      }
      assert.equal((await seatsOf(h.app, eventId, 'dee')).held, 0, 'nothing counted');
      assert.equal(
        (await holdFor(h.app, eventId, 3, 'dee', { 'idempotency-key': `fault-${eventId}-2` })).statusCode,
        201,
      );
      isProblem(await holdFor(h.app, eventId, 1, 'dee'), 409, 'customer_limit_reached');
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });

    test('a model of random holds, releases, books, cancels, expiries and replays agrees after every step', async () => {
      const CUSTOMERS = ['a', 'b', 'c'];
      const MODEL_LIMIT = 3;
      type Op =
        | { kind: 'hold'; customer: number; qty: number; key: number | null }
        | { kind: 'release' | 'book'; hold: number }
        | { kind: 'cancel'; booking: number }
        | { kind: 'advance'; seconds: number };
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({
          kind: fc.constant('hold' as const),
          customer: fc.nat(CUSTOMERS.length - 1),
          qty: fc.integer({ min: 1, max: 3 }),
          key: fc.option(fc.nat(3)),
        }),
        fc.record({ kind: fc.constantFrom('release' as const, 'book' as const), hold: fc.nat(20) }),
        fc.record({ kind: fc.constant('cancel' as const), booking: fc.nat(10) }),
        fc.record({ kind: fc.constant('advance' as const), seconds: fc.integer({ min: 1, max: 90 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
          const eventId = await createEvent(h.app, 100, { max_seats_per_customer: MODEL_LIMIT });
          const holds: Array<Granted & { qty: number; customer: string; expiresAt: number; state: string }> = [];
          const bookings: Array<{ id: number; hold: (typeof holds)[number]; cancelled: boolean }> = [];
          const replies = new Map<number, Granted>();
          const now = () => h.clock.now().getTime();
          const inUse = (customer: string) =>
            holds
              .filter((x) => x.customer === customer)
              .reduce((sum, x) => {
                if (x.state === 'active' && x.expiresAt > now()) return sum + x.qty;
                if (x.state === 'booked' && bookings.some((b) => b.hold === x && !b.cancelled)) return sum + x.qty;
                return sum;
              }, 0);
          for (const step of ops) {
            if (step.kind === 'hold') {
              const customer = CUSTOMERS[step.customer]!;
              const key = step.key === null ? undefined : `model-${eventId}-${step.key}`;
              const res = await holdFor(
                h.app,
                eventId,
                step.qty,
                customer,
                key === undefined ? {} : { 'idempotency-key': key },
              );
              const replayed = key !== undefined && replies.has(step.key!);
              if (res.statusCode === 201 && replayed) {
                assert.equal(res.json<Granted>().hold_id, replies.get(step.key!)!.hold_id, 'a replay');
              } else if (res.statusCode === 201) {
                assert.ok(inUse(customer) + step.qty <= MODEL_LIMIT, 'granted within the limit');
                const granted = res.json<Granted>();
                holds.push({
                  ...granted,
                  qty: step.qty,
                  customer,
                  expiresAt: now() + HOLD_TTL_SECONDS * 1000,
                  state: 'active',
                });
                if (key !== undefined) replies.set(step.key!, granted);
              } else if (res.statusCode === 409 && res.json().code === 'customer_limit_reached') {
                assert.ok(inUse(customer) + step.qty > MODEL_LIMIT, 'refused only past the limit');
                assert.equal(res.json().in_use, inUse(customer));
              } else {
                // A key reused for another request body.
                assert.equal(res.statusCode, 422, res.body);
              }
            } else if (step.kind === 'release' || step.kind === 'book') {
              const target = holds[step.hold];
              if (target === undefined) continue;
              const live = target.state === 'active' && target.expiresAt > now();
              const res = step.kind === 'release' ? await release(h.app, target) : await book(h.app, target);
              if (live) {
                assert.ok(res.statusCode === 200 || res.statusCode === 201, res.body);
                target.state = step.kind === 'release' ? 'released' : 'booked';
                if (step.kind === 'book')
                  bookings.push({ id: res.json<{ booking_id: number }>().booking_id, hold: target, cancelled: false });
              } else {
                assert.ok(res.statusCode >= 400 || (step.kind === 'book' && res.statusCode === 200), res.body);
              }
            } else if (step.kind === 'cancel') {
              const target = bookings[step.booking];
              if (target === undefined) continue;
              assert.equal((await cancel(h.app, target.id)).statusCode, 200);
              target.cancelled = true;
            } else if (step.kind === 'advance') {
              h.clock.advanceSeconds(step.seconds);
            }
            for (const customer of CUSTOMERS) {
              const seen = await seatsOf(h.app, eventId, customer);
              assert.equal(seen.held + seen.booked, inUse(customer), `${customer} after ${JSON.stringify(step)}`);
              assert.ok(seen.held + seen.booked <= MODEL_LIMIT, 'never over the limit');
            }
          }
          assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
        }),
        { seed: 20261206, numRuns: 15 },
      );
    });
  });

  if (backend.name === 'pglite') continue;

  describe(`customer limits across two server processes on one ${backend.name} database`, () => {
    let h: H;
    let second: { app: App; store: Store };
    let bases: string[];
    before(async () => {
      h = await contractHarness(backend, { env: ENV });
      const store = await backend.reopen(h.url);
      const app = await buildApp({ config: testConfig(ENV), store, clock: h.clock });
      second = { app, store };
      bases = [await h.app.listen({ port: 0, host: '127.0.0.1' }), await app.listen({ port: 0, host: '127.0.0.1' })];
    });
    after(async () => {
      await second.app.close();
      await second.store.close();
      await h.close();
    });

    test(`${RACERS} holds of one customer split over two processes: exactly ${LIMIT}`, async () => {
      const eventId = await createEvent(h.app, 1000, { max_seats_per_customer: LIMIT });
      const replies = await Promise.all(
        Array.from({ length: RACERS }, (_, i) => postHold(bases[i % 2]!, eventId, 1, 'Split@Example.com')),
      );
      assert.equal(replies.filter((r) => r.status === 201).length, LIMIT);
      assert.ok(replies.every((r) => r.status === 201 || r.body.code === 'customer_limit_reached'));
      assert.equal((await seatsOf(second.app, eventId, 'split@example.com')).held, LIMIT);
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });
  });
}

contractTest();
