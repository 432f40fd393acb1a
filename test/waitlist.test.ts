// The waiting list (issue 21), as a buyer, a script polling for seats and staff would meet it:
// seats that come back become offers in the transaction that frees them, in order and by the
// event's policy; the books balance after every step; a public hold racing the freeing never
// takes a seat the list could use; a fault mid-release leaves nothing half made; a model of
// random sequences agrees after every step.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { App } from '../src/app.ts';
import { Outbox } from '../src/changes/outbox.ts';
import { DatabaseUnavailable } from '../src/errors.ts';
import type { Store } from '../src/storage/store.ts';
import { sweepOnce } from '../src/worker/sweeper.ts';
import { contractHarness, contractTest, installContractCheck, isProblem, twoProcesses } from './support/contract.ts';
import { type Harness, allPublished, backends, books } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };

const ADMIN = { authorization: 'Bearer waitlist-admin-token-0123' };
const HOLD_TTL_SECONDS = 120;
const OFFER_TTL_SECONDS = 600;
const ENV = {
  ADMIN_TOKEN: 'waitlist-admin-token-0123',
  HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
  WAITLIST_OFFER_TTL_SECONDS: String(OFFER_TTL_SECONDS),
  RATE_LIMIT_HOLDS_PER_MINUTE: '0',
  RATE_LIMIT_BOOK_PER_MINUTE: '0',
};

interface Granted {
  hold_id: number;
  payment_token: string;
}
interface Joined {
  entry_id: number;
  secret: string;
  position: number;
}
interface EntryBody {
  status: string;
  position: number | null;
  offer: { hold_id: number; payment_token: string; expires_at: string } | null;
}

async function createEvent(app: App, totalSeats: number, limits: Record<string, unknown> = {}): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/events',
    headers: ADMIN,
    payload: { event: { name: 'Waitlisted', total_seats: totalSeats, ...limits } },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ event_id: number }>().event_id;
}

const holdFor = (app: App, eventId: number, qty: number, customer?: string) =>
  app.inject({
    method: 'POST',
    url: '/holds',
    payload: { hold: { event_id: eventId, qty, ...(customer === undefined ? {} : { customer }) } },
  });

async function granted(app: App, eventId: number, qty: number, customer?: string): Promise<Granted> {
  const res = await holdFor(app, eventId, qty, customer);
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Granted>();
}

const joinRaw = (app: App, eventId: number, customer: string, qty: number) =>
  app.inject({ method: 'POST', url: `/events/${eventId}/waitlist`, payload: { customer, qty } });

async function join(app: App, eventId: number, customer: string, qty: number): Promise<Joined> {
  const res = await joinRaw(app, eventId, customer, qty);
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Joined>();
}

async function entry(app: App, joined: Joined): Promise<EntryBody> {
  const res = await app.inject({
    method: 'GET',
    url: `/waitlist/${joined.entry_id}`,
    headers: { 'waitlist-secret': joined.secret },
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<EntryBody>();
}

const leave = (app: App, joined: Joined) =>
  app.inject({ method: 'DELETE', url: `/waitlist/${joined.entry_id}`, headers: { 'waitlist-secret': joined.secret } });

const release = (app: App, hold: Granted) =>
  app.inject({ method: 'DELETE', url: `/holds/${hold.hold_id}`, headers: { 'x-payment-token': hold.payment_token } });

const book = (app: App, hold: Granted, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/book',
    headers,
    payload: { booking: { hold_id: hold.hold_id, payment_token: hold.payment_token } },
  });

/** The offer of an entry, as its holder reads it. */
async function offerOf(app: App, joined: Joined): Promise<Granted> {
  const body = await entry(app, joined);
  assert.equal(body.status, 'offered');
  assert.ok(body.offer !== null);
  return { hold_id: body.offer.hold_id, payment_token: body.offer.payment_token };
}

async function waitingOf(app: App, eventId: number) {
  const res = await app.inject({ method: 'GET', url: `/events/${eventId}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ available: number; held: number; booked: number; waiting: number; total: number }>();
}

/**
 * The books balance (counters against rows, customers' counts), events.waiting is the seats of
 * waiting entries, no entry has more than one hold, and every offered entry's hold is active.
 */
async function audit(store: Store, eventId: number, now: Date): Promise<void> {
  const b = await books(store, eventId, now);
  assert.ok(b.balanced, JSON.stringify(b));
  const [w] = await store.sql.rows<{ kept: number; counted: number | string | null }>(
    `select e.waiting as kept,
            (select sum(qty) from waitlist_entries where event_id = e.id and status = 'waiting') as counted
       from events e where e.id = $1`,
    [eventId],
  );
  assert.equal(Number(w!.kept), Number(w!.counted ?? 0), 'events.waiting is the seats of waiting entries');
  const twice = await store.sql.rows(
    `select waitlist_entry_id from holds where event_id = $1 and waitlist_entry_id is not null
      group by waitlist_entry_id having count(*) > 1`,
    [eventId],
  );
  assert.deepEqual(twice, [], 'an entry is offered seats once');
  const stale = await store.sql.rows(
    `select w.id from waitlist_entries w join holds h on h.id = w.hold_id
      where w.event_id = $1 and w.status = 'offered' and h.status <> 'active'`,
    [eventId],
  );
  assert.deepEqual(stale, [], "an offered entry's hold is active");
}

const sweep = (h: H) => sweepOnce(h.store, h.clock, new Outbox(h.store, true), OFFER_TTL_SECONDS);

/** An event of `total` seats, sold out to anonymous holds. */
async function soldOut(h: H, total: number, limits: Record<string, unknown> = {}) {
  const eventId = await createEvent(h.app, total, limits);
  const holds: Granted[] = [];
  for (let i = 0; i < total; i++) holds.push(await granted(h.app, eventId, 1));
  return { eventId, holds };
}

for (const backend of backends()) {
  describe(`waiting list on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend, { env: ENV });
    });
    after(() => h.close());

    test('a released seat becomes an offer to the oldest entry, never available to the public', async () => {
      isProblem(await joinRaw(h.app, await createEvent(h.app, 3), 'early@example.com', 3), 409, 'waitlist_not_needed');
      const { eventId, holds } = await soldOut(h, 3);
      const ann = await join(h.app, eventId, 'ann@example.com', 1);
      const bob = await join(h.app, eventId, 'bob@example.com', 1);
      assert.deepEqual([ann.position, bob.position], [1, 2]);
      assert.equal((await waitingOf(h.app, eventId)).waiting, 2);
      assert.equal((await release(h.app, holds[0]!)).statusCode, 200);
      const snap = await waitingOf(h.app, eventId);
      assert.deepEqual([snap.available, snap.held, snap.waiting], [0, 3, 1], 'the seat went straight to an offer');
      const offer = await offerOf(h.app, ann);
      assert.equal((await entry(h.app, bob)).position, 1);
      isProblem(await holdFor(h.app, eventId, 1), 409, 'insufficient_seats');
      // The offer is a hold: booked with POST /book, twice and replayed makes one booking.
      const first = await book(h.app, offer, { 'idempotency-key': `offer-${eventId}` });
      assert.equal(first.statusCode, 201, first.body);
      const again = await book(h.app, offer);
      assert.equal(again.json<{ booking_id: number }>().booking_id, first.json<{ booking_id: number }>().booking_id);
      const replay = await book(h.app, offer, { 'idempotency-key': `offer-${eventId}` });
      assert.equal(replay.body, first.body);
      const [n] = await h.store.sql.rows<{ n: number | string }>(
        'select count(*) as n from bookings where hold_id = $1',
        [offer.hold_id],
      );
      assert.equal(Number(n!.n), 1);
      assert.equal((await entry(h.app, ann)).status, 'converted');
      await audit(h.store, eventId, h.clock.now());
    });

    test('strict keeps freed seats for the head; fill gives them to the next entry that fits', async () => {
      for (const policy of ['strict', 'fill'] as const) {
        const { eventId, holds } = await soldOut(h, 4, { waitlist_policy: policy });
        const group = await join(h.app, eventId, `group-${policy}`, 3);
        const single = await join(h.app, eventId, `single-${policy}`, 1);
        await release(h.app, holds[0]!);
        if (policy === 'strict') {
          assert.equal((await entry(h.app, single)).status, 'waiting', 'strict: the single waits behind the group');
          assert.deepEqual((await waitingOf(h.app, eventId)).available, 1, 'kept for the list');
          isProblem(await holdFor(h.app, eventId, 1), 409, 'insufficient_seats');
          await release(h.app, holds[1]!);
          await release(h.app, holds[2]!);
          assert.equal((await entry(h.app, group)).status, 'offered', 'three seats together');
          assert.equal((await entry(h.app, single)).status, 'waiting');
          await release(h.app, holds[3]!);
          assert.equal((await entry(h.app, single)).status, 'offered');
        } else {
          assert.equal((await entry(h.app, single)).status, 'offered', 'fill: the seat goes to the single');
          assert.equal((await entry(h.app, group)).status, 'waiting');
          await release(h.app, holds[1]!);
          await release(h.app, holds[2]!);
          assert.equal((await entry(h.app, group)).status, 'waiting');
          await release(h.app, holds[3]!);
          assert.equal((await entry(h.app, group)).status, 'offered');
        }
        const snap = await waitingOf(h.app, eventId);
        assert.deepEqual([snap.available, snap.held, snap.waiting], [0, 4, 0]);
        await audit(h.store, eventId, h.clock.now());
      }
    });

    test('an offer that runs out moves on to the next entry, by the sweeper or the hold path', async () => {
      const { eventId, holds } = await soldOut(h, 2);
      const [a, b, c] = [
        await join(h.app, eventId, 'a@x.io', 1),
        await join(h.app, eventId, 'b@x.io', 1),
        await join(h.app, eventId, 'c@x.io', 1),
      ];
      await release(h.app, holds[0]!);
      await offerOf(h.app, a);
      h.clock.advanceSeconds(HOLD_TTL_SECONDS + 1);
      // The public hold lapsed: a public request reclaims it, and the seat goes to b instead.
      isProblem(await holdFor(h.app, eventId, 1), 409, 'insufficient_seats');
      assert.equal((await entry(h.app, b)).status, 'offered');
      h.clock.advanceSeconds(OFFER_TTL_SECONDS);
      assert.equal((await entry(h.app, a)).status, 'expired', 'expired as soon as its deadline passes');
      await sweep(h);
      assert.equal((await entry(h.app, c)).status, 'offered', "a's seat moved to c in the sweep");
      assert.equal((await entry(h.app, b)).status, 'expired');
      await audit(h.store, eventId, h.clock.now());
      const snap = await waitingOf(h.app, eventId);
      assert.deepEqual([snap.available, snap.held, snap.waiting], [1, 1, 0]);
      assert.equal((await holdFor(h.app, eventId, 1)).statusCode, 201, 'with nobody waiting, the public gets it');
    });

    test('declining frees the seats to the next entry at once; staff remove; a cancel and a resize offer too', async () => {
      const { eventId, holds } = await soldOut(h, 2);
      const a = await join(h.app, eventId, 'a@y.io', 1);
      const b = await join(h.app, eventId, 'b@y.io', 2);
      const c = await join(h.app, eventId, 'c@y.io', 1);
      await release(h.app, holds[0]!);
      await offerOf(h.app, a);
      const declined = await leave(h.app, a);
      assert.equal(declined.statusCode, 200, declined.body);
      assert.equal(declined.json<EntryBody>().status, 'left');
      assert.equal((await entry(h.app, c)).status, 'offered', 'fill: c fits the one seat, b does not');
      isProblem(await leave(h.app, a), 409, 'waitlist_ended');
      // A cancelled booking's seats go to the list.
      const booked = await book(h.app, holds[1]!);
      assert.equal(booked.statusCode, 201);
      const cancel = await h.app.inject({
        method: 'POST',
        url: `/bookings/${booked.json<{ booking_id: number }>().booking_id}/cancel`,
        headers: ADMIN,
      });
      assert.equal(cancel.statusCode, 200, cancel.body);
      assert.equal((await entry(h.app, b)).status, 'waiting', 'one seat is not two');
      // Made bigger: the new seat and the cancelled one serve b.
      const resized = await h.app.inject({
        method: 'PATCH',
        url: `/events/${eventId}`,
        headers: ADMIN,
        payload: { event: { total_seats: 3 } },
      });
      assert.equal(resized.statusCode, 200, resized.body);
      assert.equal((await entry(h.app, b)).status, 'offered');
      const d = await join(h.app, eventId, 'd@y.io', 1);
      const removed = await h.app.inject({
        method: 'DELETE',
        url: `/events/${eventId}/waitlist/${d.entry_id}`,
        headers: ADMIN,
      });
      assert.equal(removed.statusCode, 200, removed.body);
      assert.equal(removed.json<{ status: string }>().status, 'removed');
      const list = await h.app.inject({ method: 'GET', url: `/events/${eventId}/waitlist`, headers: ADMIN });
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(
        list.json<{ entries: Array<{ status: string }> }>().entries.map((e) => e.status),
        ['left', 'offered', 'offered', 'removed'],
      );
      await audit(h.store, eventId, h.clock.now());
    });

    test('an entry whose offer would pass a lowered per-customer limit expires, and the seats go on', async () => {
      const { eventId, holds } = await soldOut(h, 2, { max_seats_per_customer: 2, waitlist_policy: 'strict' });
      const pair = await join(h.app, eventId, 'pair@q.io', 2);
      const next = await join(h.app, eventId, 'next@q.io', 1);
      const lowered = await h.app.inject({
        method: 'PATCH',
        url: `/events/${eventId}`,
        headers: ADMIN,
        payload: { event: { max_seats_per_customer: 1 } },
      });
      assert.equal(lowered.statusCode, 200, lowered.body);
      await release(h.app, holds[0]!);
      assert.equal((await entry(h.app, next)).status, 'waiting', 'strict: behind the pair');
      await release(h.app, holds[1]!);
      assert.equal((await entry(h.app, pair)).status, 'expired');
      assert.equal((await entry(h.app, next)).status, 'offered');
      await audit(h.store, eventId, h.clock.now());
    });

    test('bad input is a 4xx each, and a wrong secret says nothing about the entry', async () => {
      const { eventId } = await soldOut(h, 2, { max_seats_per_customer: 2 });
      const a = await join(h.app, eventId, 'Ann+x@Example.com', 1);
      isProblem(await joinRaw(h.app, eventId, 'ann@example.com', 1), 409, 'waitlist_duplicate');
      isProblem(await joinRaw(h.app, eventId, 'zed@example.com', 0), 400, 'validation_failed');
      isProblem(await joinRaw(h.app, eventId, 'zed@example.com', 3), 409, 'customer_limit_reached');
      isProblem(await joinRaw(h.app, eventId, 'zed@example.com', 11), 422, 'waitlist_too_large');
      isProblem(await joinRaw(h.app, 999_999, 'zed@example.com', 1), 404, 'not_found');
      const wrong = { ...a, secret: 'not-the-secret' };
      const missing = { ...a, entry_id: 999_999 };
      for (const res of [
        await h.app.inject({ method: 'GET', url: `/waitlist/${a.entry_id}`, headers: { 'waitlist-secret': 'nope' } }),
        await h.app.inject({ method: 'GET', url: `/waitlist/${a.entry_id}` }),
        await leave(h.app, wrong),
        await leave(h.app, missing),
      ]) {
        isProblem(res, 404, 'not_found');
      }
      const byQuery = await h.app.inject({ method: 'GET', url: `/waitlist/${a.entry_id}?secret=${a.secret}` });
      assert.equal(byQuery.statusCode, 200);
      isProblem(await h.app.inject({ method: 'GET', url: `/events/${eventId}/waitlist` }), 401, 'unauthorized');
      // A queued event's list is no way round its queue: joining needs the admission token.
      const past = new Date(h.clock.now().getTime() - 60_000).toISOString();
      const queued = await createEvent(h.app, 1, {
        sale_opens_at: past,
        max_seats_per_customer: 1,
        queue: { admit_per_minute: 10 },
      });
      isProblem(await joinRaw(h.app, queued, 'zed@example.com', 1), 403, 'admission_required');
      const forged = await h.app.inject({
        method: 'POST',
        url: `/events/${queued}/waitlist`,
        headers: { 'admission-token': 'at1.k1.forged.token' },
        payload: { qty: 1 },
      });
      isProblem(forged, 403, 'admission_invalid');
      // Left, the customer may join again, at the back.
      assert.equal((await leave(h.app, a)).statusCode, 200);
      assert.equal((await joinRaw(h.app, eventId, 'ann@example.com', 1)).statusCode, 201);
    });

    test("as an attacker: racing joins make one entry, and one entry's secret opens no other", async () => {
      const { eventId, holds } = await soldOut(h, 2, { max_seats_per_customer: 2 });
      // One customer, ten joins at once, written four ways: one entry.
      const spellings = ['racer@example.com', 'Racer@Example.com', 'racer+1@example.com', 'RACER+x@example.com'];
      const raced = await Promise.all(
        Array.from({ length: 10 }, (_, i) => joinRaw(h.app, eventId, spellings[i % spellings.length]!, 1)),
      );
      assert.deepEqual(raced.map((res) => res.statusCode).sort(), [201, ...Array(9).fill(409)]);
      for (const res of raced.filter((r) => r.statusCode === 409)) isProblem(res, 409, 'waitlist_duplicate');
      const racer = raced.find((res) => res.statusCode === 201)!.json<Joined>();
      const victim = await join(h.app, eventId, 'victim@example.com', 1);
      // The racer's secret, on the victim's entry: as if it did not exist, and nothing changes.
      for (const res of [
        await h.app.inject({
          method: 'GET',
          url: `/waitlist/${victim.entry_id}`,
          headers: { 'waitlist-secret': racer.secret },
        }),
        await h.app.inject({ method: 'GET', url: `/waitlist/${victim.entry_id}?secret=${racer.secret}` }),
        await leave(h.app, { ...victim, secret: racer.secret }),
      ]) {
        isProblem(res, 404, 'not_found');
      }
      assert.equal((await entry(h.app, victim)).status, 'waiting');
      assert.equal((await waitingOf(h.app, eventId)).waiting, 2);
      // A seat comes back: the racer (first) gets it; the racer's own offer is all its secret shows.
      await release(h.app, holds[0]!);
      const offer = await offerOf(h.app, racer);
      assert.equal((await entry(h.app, victim)).offer, null);
      // The victim cannot book the racer's offer with a token of its own making.
      isProblem(
        await book(h.app, { hold_id: offer.hold_id, payment_token: 'x'.repeat(offer.payment_token.length) }),
        403,
        'invalid_payment_token',
      );
      assert.equal((await entry(h.app, racer)).status, 'offered');
      await audit(h.store, eventId, h.clock.now());
    });

    test('the change feed carries waitlist changes, with no secret or payment token', async () => {
      const { eventId, holds } = await soldOut(h, 1);
      const a = await join(h.app, eventId, 'feed@z.io', 1);
      await join(h.app, eventId, 'pair@z.io', 2);
      await release(h.app, holds[0]!);
      const offer = await offerOf(h.app, a);
      assert.equal((await book(h.app, offer)).statusCode, 201);
      await allPublished(h.store);
      const res = await h.app.inject({ method: 'GET', url: `/events/${eventId}/changes?after=0` });
      assert.equal(res.statusCode, 200, res.body);
      type Snap = { total: number; available: number; held: number; booked: number; waiting: number };
      const changes = res.json<{ changes: Array<{ type: string; snapshot: Snap }> }>().changes;
      const types = changes.map((c) => c.type);
      for (const type of ['waitlist.joined', 'waitlist.offered', 'waitlist.converted'])
        assert.ok(types.includes(type), `${type} in ${types.join(',')}`);
      assert.ok(!res.body.includes(a.secret) && !res.body.includes(offer.payment_token));
      // Every change carries the whole snapshot, the seats the list waits for included, as
      // GET /events/:id gives it: streams and webhooks tell the same truth.
      const waitingAt = (type: string) => changes.filter((c) => c.type === type).map((c) => c.snapshot.waiting);
      assert.deepEqual(waitingAt('waitlist.joined'), [1, 3]);
      assert.deepEqual(waitingAt('waitlist.offered'), [2]);
      for (const { snapshot: c } of changes) assert.equal(c.available + c.held + c.booked, c.total);
      const now = await waitingOf(h.app, eventId);
      const { total, available, held, booked, waiting } = now;
      assert.deepEqual(changes.at(-1)!.snapshot, { total, available, held, booked, waiting });
      assert.equal(waiting, 2);
    });

    test('a fault in the middle of a release leaves no half-made offer', async () => {
      const { eventId, holds } = await soldOut(h, 1);
      const a = await join(h.app, eventId, 'fault@z.io', 1);
      const original = h.store.offerEntries.bind(h.store);
      h.store.offerEntries = async (...args) => {
        await original(...args);
        throw new DatabaseUnavailable('injected: the connection was lost');
      };
      try {
        isProblem(await release(h.app, holds[0]!), 503, 'database_unavailable');
      } finally {
        h.store.offerEntries = original;
      }
      assert.equal((await entry(h.app, a)).status, 'waiting');
      const snap = await waitingOf(h.app, eventId);
      assert.deepEqual([snap.available, snap.held, snap.waiting], [0, 1, 1], 'the release was undone with it');
      await audit(h.store, eventId, h.clock.now());
      assert.equal((await release(h.app, holds[0]!)).statusCode, 200);
      assert.equal((await entry(h.app, a)).status, 'offered');
      await audit(h.store, eventId, h.clock.now());
    });

    test('public holds racing releases and sweeps never take a seat an entry could use', async () => {
      const total = 20;
      const { eventId, holds } = await soldOut(h, total);
      const entries: Joined[] = [];
      for (let i = 0; i < 8; i++) entries.push(await join(h.app, eventId, `racer-${i}`, 1));
      // Half the holds are released, the rest lapse and are swept, while buyers keep asking.
      h.clock.advanceSeconds(HOLD_TTL_SECONDS - 1);
      const work: Array<Promise<unknown>> = [];
      const asks: Array<Promise<{ statusCode: number }>> = [];
      holds.forEach((hold, i) => {
        if (i % 2 === 0) work.push(release(h.app, hold));
        asks.push(holdFor(h.app, eventId, 1));
      });
      await Promise.all([...work, ...asks]);
      h.clock.advanceSeconds(2);
      const late: Array<Promise<{ statusCode: number }>> = [];
      for (let i = 0; i < 20; i++) {
        late.push(holdFor(h.app, eventId, 1));
        if (i % 5 === 0) work.push(sweep(h));
      }
      const replies = await Promise.all([...asks, ...late]);
      await Promise.all(work);
      await sweep(h);
      for (const e of entries) assert.equal((await entry(h.app, e)).status, 'offered', 'every entry got a seat');
      const publicSeats = replies.filter((r) => r.statusCode === 201).length;
      assert.ok(publicSeats <= total - entries.length, `public took ${publicSeats}`);
      await audit(h.store, eventId, h.clock.now());
    });

    test('a model of random joins, holds, releases, books, cancels, declines and expiries agrees', async () => {
      type Op =
        | { kind: 'join'; who: number; qty: number }
        | { kind: 'hold'; qty: number }
        | { kind: 'release'; pick: number }
        | { kind: 'book'; pick: number }
        | { kind: 'cancel'; pick: number }
        | { kind: 'decline'; pick: number }
        | { kind: 'expire' };
      const op: fc.Arbitrary<Op> = fc.oneof(
        fc.record({ kind: fc.constant('join' as const), who: fc.nat(5), qty: fc.integer({ min: 1, max: 3 }) }),
        fc.record({ kind: fc.constant('hold' as const), qty: fc.integer({ min: 1, max: 3 }) }),
        fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('book' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('decline' as const), pick: fc.nat() }),
        fc.constant({ kind: 'expire' as const }),
      );
      const TOTAL = 6;
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 25 }), async (ops) => {
          run++;
          const eventId = await createEvent(h.app, TOTAL);
          // The model: seats, live holds (public and offers), bookings, and the list in join order.
          interface MHold extends Granted {
            qty: number;
            entry: number | null;
          }
          interface MEntry extends Joined {
            who: number;
            qty: number;
            status: string;
            hold: MHold | null;
          }
          let available = TOTAL;
          let held = 0;
          let bookedSeats = 0;
          let live: MHold[] = [];
          const bookings: Array<{ id: number; qty: number }> = [];
          const list: MEntry[] = [];
          const waiting = () => list.filter((e) => e.status === 'waiting');
          const offerFree = async () => {
            for (const e of waiting()) {
              if (e.qty > available) continue;
              available -= e.qty;
              held += e.qty;
              e.status = 'offered';
              const offer = await offerOf(h.app, e);
              e.hold = { ...offer, qty: e.qty, entry: e.entry_id };
              live.push(e.hold);
            }
          };
          const free = async (hold: MHold, entryStatus: string) => {
            live = live.filter((x) => x !== hold);
            available += hold.qty;
            held -= hold.qty;
            const e = list.find((x) => x.entry_id === hold.entry);
            if (e !== undefined) e.status = entryStatus;
            await offerFree();
          };
          for (const step of ops) {
            const pick = <T>(items: T[], n: number): T | undefined => items[n % Math.max(items.length, 1)];
            if (step.kind === 'join') {
              const who = `m${run}-${step.who}`;
              const res = await joinRaw(h.app, eventId, who, step.qty);
              const liveEntry = list.some((e) => e.who === step.who && ['waiting', 'offered'].includes(e.status));
              if (liveEntry) isProblem(res, 409, 'waitlist_duplicate');
              else if (waiting().length === 0 && available >= step.qty) isProblem(res, 409, 'waitlist_not_needed');
              else {
                assert.equal(res.statusCode, 201, res.body);
                list.push({ ...res.json<Joined>(), who: step.who, qty: step.qty, status: 'waiting', hold: null });
                await offerFree();
              }
            } else if (step.kind === 'hold') {
              const res = await holdFor(h.app, eventId, step.qty);
              if (waiting().length === 0 && available >= step.qty) {
                assert.equal(res.statusCode, 201, res.body);
                live.push({ ...res.json<Granted>(), qty: step.qty, entry: null });
                available -= step.qty;
                held += step.qty;
              } else isProblem(res, 409, 'insufficient_seats');
            } else if (step.kind === 'release') {
              const hold = pick(live, step.pick);
              if (hold === undefined) continue;
              assert.equal((await release(h.app, hold)).statusCode, 200);
              await free(hold, 'left');
            } else if (step.kind === 'decline') {
              const e = pick(
                list.filter((x) => x.status === 'offered'),
                step.pick,
              );
              if (e === undefined) continue;
              assert.equal((await leave(h.app, e)).statusCode, 200);
              await free(e.hold!, 'left');
            } else if (step.kind === 'book') {
              const hold = pick(live, step.pick);
              if (hold === undefined) continue;
              const res = await book(h.app, hold);
              assert.equal(res.statusCode, 201, res.body);
              live = live.filter((x) => x !== hold);
              held -= hold.qty;
              bookedSeats += hold.qty;
              bookings.push({ id: res.json<{ booking_id: number }>().booking_id, qty: hold.qty });
              const e = list.find((x) => x.entry_id === hold.entry);
              if (e !== undefined) e.status = 'converted';
            } else if (step.kind === 'cancel') {
              const b = pick(bookings, step.pick);
              if (b === undefined) continue;
              bookings.splice(bookings.indexOf(b), 1);
              const res = await h.app.inject({ method: 'POST', url: `/bookings/${b.id}/cancel`, headers: ADMIN });
              assert.equal(res.statusCode, 200, res.body);
              bookedSeats -= b.qty;
              available += b.qty;
              await offerFree();
            } else {
              // Everything live lapses; the sweep frees it all at once, then offers in order.
              h.clock.advanceSeconds(OFFER_TTL_SECONDS + 1);
              await sweep(h);
              for (const hold of live) {
                available += hold.qty;
                held -= hold.qty;
                const e = list.find((x) => x.entry_id === hold.entry);
                if (e !== undefined) e.status = 'expired';
              }
              live = [];
              await offerFree();
            }
            const snap = await waitingOf(h.app, eventId);
            const want = waiting().reduce((sum, e) => sum + e.qty, 0);
            assert.deepEqual(
              [snap.available, snap.held, snap.booked, snap.waiting],
              [available, held, bookedSeats, want],
              `after ${JSON.stringify(step)}`,
            );
            for (const e of list) assert.equal((await entry(h.app, e)).status, e.status, `entry ${e.who}`);
            await audit(h.store, eventId, h.clock.now());
          }
        }),
        { numRuns: backend.name === 'pglite' ? 40 : 25 },
      );
    });
  });
}

for (const backend of backends()) {
  if (backend.name === 'pglite') continue;

  describe(`waiting list with two processes on one ${backend.name} database`, () => {
    let h: H;
    let second: { app: App; store: Store };
    let close: () => Promise<void>;
    before(async () => {
      ({ h, second, close } = await twoProcesses(backend, ENV));
    });
    after(() => close());

    test('the same customers joining through both at once get one entry each, and freed seats are offered once', async () => {
      const { eventId, holds } = await soldOut(h, 4, { max_seats_per_customer: 2 });
      const customers = Array.from({ length: 8 }, (_, i) => `two-${i}@example.com`);
      const raced = await Promise.all(
        customers.flatMap((customer) =>
          [h.app, second.app, h.app, second.app].map((app) => joinRaw(app, eventId, customer, 1)),
        ),
      );
      const joined = raced.filter((res) => res.statusCode === 201).map((res) => res.json<Joined>());
      assert.equal(joined.length, customers.length, 'one entry per customer');
      for (const res of raced.filter((r) => r.statusCode !== 201)) isProblem(res, 409, 'waitlist_duplicate');
      assert.deepEqual(
        joined.map((j) => j.position).sort((a, b) => a - b),
        Array.from({ length: customers.length }, (_, i) => i + 1),
      );
      // Seats freed through both processes at once: each goes to one entry, oldest first.
      await Promise.all(holds.map((hold, i) => release(i % 2 === 0 ? h.app : second.app, hold)));
      const states = await Promise.all(joined.map((j) => entry(second.app, j)));
      const offered = joined.filter((_, i) => states[i]!.status === 'offered');
      assert.equal(offered.length, 4, 'four seats, four offers');
      assert.deepEqual(
        offered.map((j) => j.position).sort((a, b) => a - b),
        [1, 2, 3, 4],
        'to the four oldest',
      );
      const snap = await waitingOf(h.app, eventId);
      assert.deepEqual([snap.available, snap.held, snap.waiting], [0, 4, 4]);
      await audit(h.store, eventId, h.clock.now());
    });
  });
}

contractTest();
