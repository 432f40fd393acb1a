// The hold lifecycle after the grant (read, release, extend), bookings read and cancelled,
// events listed and edited, on each backend; every step leaves the books balanced.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { contractHarness, contractTest, installContractCheck, isProblem } from './support/contract.ts';
import { type Harness, backends, book, books, createEvent, hold, snapshot, NO_LIMITS_BODY } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };

const getHold = (app: App, id: number, token?: string) =>
  app.inject({ method: 'GET', url: `/holds/${id}`, headers: token === undefined ? {} : { 'x-payment-token': token } });
const release = (app: App, id: number, token: string) =>
  app.inject({ method: 'DELETE', url: `/holds/${id}`, headers: { 'x-payment-token': token } });
const extend = (app: App, id: number, token: string, seconds: unknown) =>
  app.inject({
    method: 'POST',
    url: `/holds/${id}/extend`,
    headers: { 'x-payment-token': token },
    payload: { seconds },
  });
const getBooking = (app: App, id: number, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url: `/bookings/${id}`, headers });
const cancel = (app: App, id: number, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: `/bookings/${id}/cancel`, headers });
const patchEvent = (app: App, id: number, event: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'PATCH', url: `/events/${id}`, payload: { event }, headers });

async function newHold(
  app: App,
  eventId: number,
  qty: number,
): Promise<{ hold_id: number; payment_token: string; expires_at: string }> {
  const res = await hold(app, eventId, qty);
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

async function assertBalanced(h: H, eventId: number, expected?: { available: number; held: number; booked: number }) {
  const b = await books(h.store, eventId, h.clock.now());
  assert.ok(b.balanced, `books balanced: ${JSON.stringify(b)}`);
  if (expected) assert.deepEqual({ available: b.available, held: b.held, booked: b.booked }, expected);
}

for (const backend of backends()) {
  describe(`hold lifecycle on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend);
    });
    after(() => h.close());

    test('GET /holds/:id shows status, seats and deadline to the token holder', async () => {
      const eventId = await createEvent(h.app, 10);
      const granted = await newHold(h.app, eventId, 3);
      const res = await getHold(h.app, granted.hold_id, granted.payment_token);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), {
        hold_id: granted.hold_id,
        event_id: eventId,
        qty: 3,
        customer: null,
        status: 'active',
        created_at: h.clock.now().toISOString(),
        expires_at: granted.expires_at,
        booking_id: null,
      });
      isProblem(await getHold(h.app, granted.hold_id), 400, 'validation_failed');
      isProblem(await getHold(h.app, granted.hold_id, 'wrong'), 403, 'invalid_payment_token');
      isProblem(await getHold(h.app, 99_999_999, granted.payment_token), 404, 'not_found');
    });

    test('a lapsed hold reads as expired before any sweep; a booked one shows its booking', async () => {
      const eventId = await createEvent(h.app, 10);
      const lapsing = await newHold(h.app, eventId, 1);
      const booking = await newHold(h.app, eventId, 2);
      const bookingId = (await book(h.app, booking.hold_id, booking.payment_token)).json().booking_id;
      h.clock.advanceSeconds(120);
      assert.equal((await getHold(h.app, lapsing.hold_id, lapsing.payment_token)).json().status, 'expired');
      const booked = (await getHold(h.app, booking.hold_id, booking.payment_token)).json();
      assert.equal(booked.status, 'booked');
      assert.equal(booked.booking_id, bookingId);
      await assertBalanced(h, eventId, { available: 8, held: 0, booked: 2 });
    });

    test('DELETE /holds/:id gives the seats back at once; a second release is 410 hold_released', async () => {
      const eventId = await createEvent(h.app, 5);
      const granted = await newHold(h.app, eventId, 4);
      await assertBalanced(h, eventId, { available: 1, held: 4, booked: 0 });
      isProblem(await release(h.app, granted.hold_id, 'not-the-token'), 403, 'invalid_payment_token');
      await assertBalanced(h, eventId, { available: 1, held: 4, booked: 0 });

      const res = await release(h.app, granted.hold_id, granted.payment_token);
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().status, 'released');
      assert.equal(res.json().expires_at, h.clock.now().toISOString());
      await assertBalanced(h, eventId, { available: 5, held: 0, booked: 0 });
      isProblem(await release(h.app, granted.hold_id, granted.payment_token), 410, 'hold_released');
      isProblem(await book(h.app, granted.hold_id, granted.payment_token), 410, 'hold_expired');
      assert.equal((await getHold(h.app, granted.hold_id, granted.payment_token)).json().status, 'released');
      await assertBalanced(h, eventId, { available: 5, held: 0, booked: 0 });
    });

    test('releasing a booked hold is 409 hold_booked; releasing a lapsed one is 410 hold_expired', async () => {
      const eventId = await createEvent(h.app, 5);
      const booked = await newHold(h.app, eventId, 2);
      assert.equal((await book(h.app, booked.hold_id, booked.payment_token)).statusCode, 201);
      isProblem(await release(h.app, booked.hold_id, booked.payment_token), 409, 'hold_booked');
      const lapsing = await newHold(h.app, eventId, 1);
      h.clock.advanceSeconds(121);
      isProblem(await release(h.app, lapsing.hold_id, lapsing.payment_token), 410, 'hold_expired');
      await assertBalanced(h, eventId, { available: 3, held: 0, booked: 2 });
    });

    test('extend moves the deadline, and the hold stays held past its first deadline', async () => {
      const eventId = await createEvent(h.app, 5);
      const granted = await newHold(h.app, eventId, 2);
      const res = await extend(h.app, granted.hold_id, granted.payment_token, 60);
      assert.equal(res.statusCode, 200, res.body);
      const deadline = new Date(Date.parse(granted.expires_at) + 60_000).toISOString();
      assert.equal(res.json().expires_at, deadline);
      await assertBalanced(h, eventId, { available: 3, held: 2, booked: 0 });
      h.clock.advanceSeconds(150);
      await assertBalanced(h, eventId, { available: 3, held: 2, booked: 0 });
      assert.equal((await book(h.app, granted.hold_id, granted.payment_token)).statusCode, 201);
      await assertBalanced(h, eventId, { available: 3, held: 0, booked: 2 });
    });

    test('a hold lives at most MAX_HOLD_LIFETIME_SECONDS (900) from creation', async () => {
      const eventId = await createEvent(h.app, 5);
      const granted = await newHold(h.app, eventId, 1);
      const created = h.clock.now().getTime();
      assert.equal((await extend(h.app, granted.hold_id, granted.payment_token, 700)).statusCode, 200);
      const refused = isProblem(
        await extend(h.app, granted.hold_id, granted.payment_token, 81),
        409,
        'hold_lifetime_exceeded',
      );
      assert.equal(refused.max_expires_at, new Date(created + 900_000).toISOString());
      assert.equal(refused.max_hold_lifetime_seconds, 900);
      const last = await extend(h.app, granted.hold_id, granted.payment_token, 80);
      assert.equal(last.json().expires_at, new Date(created + 900_000).toISOString());
      isProblem(await extend(h.app, granted.hold_id, granted.payment_token, 1), 409, 'hold_lifetime_exceeded');
      isProblem(await extend(h.app, granted.hold_id, granted.payment_token, 901), 400, 'validation_failed');
      await assertBalanced(h, eventId, { available: 4, held: 1, booked: 0 });
    });

    test('an expired hold is never revived; released and booked holds cannot be extended', async () => {
      const eventId = await createEvent(h.app, 5);
      const lapsing = await newHold(h.app, eventId, 1);
      const released = await newHold(h.app, eventId, 1);
      const booked = await newHold(h.app, eventId, 1);
      await release(h.app, released.hold_id, released.payment_token);
      await book(h.app, booked.hold_id, booked.payment_token);
      isProblem(await extend(h.app, released.hold_id, released.payment_token, 10), 410, 'hold_released');
      isProblem(await extend(h.app, booked.hold_id, booked.payment_token, 10), 409, 'hold_booked');
      h.clock.advanceSeconds(120);
      isProblem(await extend(h.app, lapsing.hold_id, lapsing.payment_token, 10), 410, 'hold_expired');
      assert.equal((await getHold(h.app, lapsing.hold_id, lapsing.payment_token)).json().status, 'expired');
      await assertBalanced(h, eventId, { available: 4, held: 0, booked: 1 });
      isProblem(await extend(h.app, lapsing.hold_id, 'wrong', 10), 403, 'invalid_payment_token');
      isProblem(await extend(h.app, lapsing.hold_id, lapsing.payment_token, '10'), 400, 'validation_failed');
    });

    test('MAX_SEATS_PER_HOLD (10) is a 400 naming the limit', async () => {
      const eventId = await createEvent(h.app, 50);
      const body = isProblem(await hold(h.app, eventId, 11), 400, 'validation_failed');
      assert.deepEqual(body.errors, [{ path: 'body/hold/qty', message: 'must be at most 10 (MAX_SEATS_PER_HOLD)' }]);
      assert.equal((await hold(h.app, eventId, 10)).statusCode, 201);
      await assertBalanced(h, eventId, { available: 40, held: 10, booked: 0 });
    });
  });

  describe(`bookings read and cancelled on ${backend.name}`, () => {
    let h: H;
    const token = 'a-staff-token-long-enough';
    const staff = { authorization: `Bearer ${token}` };
    before(async () => {
      h = await contractHarness(backend, { env: { ADMIN_TOKEN: token } });
    });
    after(() => h.close());

    const createEventAsStaff = async (seats: number) => {
      const res = await h.app.inject({
        method: 'POST',
        url: '/events',
        headers: staff,
        payload: { event: { name: 'Gala', total_seats: seats } },
      });
      return res.json().event_id as number;
    };

    test("GET /bookings/:id: the hold's token or staff; others 401/403", async () => {
      const eventId = await createEventAsStaff(5);
      const granted = await newHold(h.app, eventId, 2);
      const bookingId = (await book(h.app, granted.hold_id, granted.payment_token)).json().booking_id;
      const expected = {
        booking_id: bookingId,
        hold_id: granted.hold_id,
        event_id: eventId,
        qty: 2,
        customer: null,
        status: 'confirmed',
        created_at: h.clock.now().toISOString(),
        cancelled_at: null,
      };
      assert.deepEqual(
        (await getBooking(h.app, bookingId, { 'x-payment-token': granted.payment_token })).json(),
        expected,
      );
      assert.deepEqual((await getBooking(h.app, bookingId, staff)).json(), expected);
      isProblem(await getBooking(h.app, bookingId), 401, 'unauthorized');
      isProblem(await getBooking(h.app, bookingId, { 'x-payment-token': 'guess' }), 403, 'invalid_payment_token');
      isProblem(await getBooking(h.app, 99_999_999, staff), 404, 'not_found');
    });

    test('cancel gives the seats back, twice is the same 200, and the hold cannot be booked again', async () => {
      const eventId = await createEventAsStaff(5);
      const granted = await newHold(h.app, eventId, 3);
      const bookingId = (await book(h.app, granted.hold_id, granted.payment_token)).json().booking_id;
      await assertBalanced(h, eventId, { available: 2, held: 0, booked: 3 });
      isProblem(await cancel(h.app, bookingId), 401, 'unauthorized');

      const first = await cancel(h.app, bookingId, staff);
      assert.equal(first.statusCode, 200);
      assert.equal(first.json().status, 'cancelled');
      assert.equal(first.json().cancelled_at, h.clock.now().toISOString());
      await assertBalanced(h, eventId, { available: 5, held: 0, booked: 0 });
      h.clock.advanceSeconds(5);
      const second = await cancel(h.app, bookingId, staff);
      assert.equal(second.statusCode, 200);
      assert.deepEqual(second.json(), first.json());
      await assertBalanced(h, eventId, { available: 5, held: 0, booked: 0 });

      const rebook = isProblem(await book(h.app, granted.hold_id, granted.payment_token), 410, 'booking_cancelled');
      assert.equal(rebook.booking_id, bookingId);
      assert.equal((await getHold(h.app, granted.hold_id, granted.payment_token)).json().status, 'booked');
      isProblem(await cancel(h.app, 99_999_999, staff), 404, 'not_found');
      await assertBalanced(h, eventId, { available: 5, held: 0, booked: 0 });
    });
  });

  describe(`events listed and edited on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend);
    });
    after(() => h.close());

    test('GET /events pages through every event once, in id order, each with its snapshot', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push(await createEvent(h.app, 10 + i, `Show ${i}`));
      await newHold(h.app, ids[2]!, 3);
      const seen: Array<Record<string, number>> = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${cursor}`;
        const res = await h.app.inject({ method: 'GET', url: `/events${query}` });
        assert.equal(res.statusCode, 200, res.body);
        const page = res.json();
        assert.ok(page.events.length <= 2);
        seen.push(...page.events);
        cursor = page.next_cursor;
        pages++;
      } while (cursor !== null && pages < 50);
      const listed = seen.map((event) => event.event_id!);
      assert.deepEqual(
        listed,
        [...listed].sort((a, b) => a - b),
        'in id order',
      );
      assert.equal(new Set(listed).size, listed.length, 'each once');
      for (const id of ids) assert.ok(listed.includes(id));
      assert.deepEqual(
        seen.find((event) => event.event_id === ids[2]),
        await snapshot(h.app, ids[2]!),
      );
      assert.equal(seen.find((event) => event.event_id === ids[2])!.held, 3);
    });

    test('GET /events bounds its page size and refuses foreign cursors', async () => {
      await createEvent(h.app, 1);
      const all = (await h.app.inject({ method: 'GET', url: '/events' })).json();
      assert.ok(all.events.length >= 1 && all.events.length <= 20);
      for (const query of ['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'cursor=!!', 'cursor=bm9wZQ', 'page=2']) {
        isProblem(await h.app.inject({ method: 'GET', url: `/events?${query}` }), 400, 'validation_failed');
      }
    });

    test('PATCH /events/:id renames and resizes, never below held + booked', async () => {
      const eventId = await createEvent(h.app, 10);
      const booked = await newHold(h.app, eventId, 2);
      await book(h.app, booked.hold_id, booked.payment_token);
      await newHold(h.app, eventId, 3);

      const renamed = await patchEvent(h.app, eventId, { name: 'Renamed' });
      assert.equal(renamed.statusCode, 200);
      assert.deepEqual(renamed.json(), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Renamed',
        total: 10,
        available: 5,
        held: 3,
        booked: 2,
      });
      const grown = (await patchEvent(h.app, eventId, { total_seats: 15 })).json();
      assert.deepEqual(grown, {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Renamed',
        total: 15,
        available: 10,
        held: 3,
        booked: 2,
      });
      await assertBalanced(h, eventId, { available: 10, held: 3, booked: 2 });

      const refused = isProblem(await patchEvent(h.app, eventId, { total_seats: 4 }), 409, 'seats_in_use');
      assert.deepEqual([refused.held, refused.booked, refused.minimum_total_seats, refused.requested], [3, 2, 5, 4]);
      const tight = (await patchEvent(h.app, eventId, { total_seats: 5, name: 'Tight' })).json();
      assert.deepEqual(tight, {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Tight',
        total: 5,
        available: 0,
        held: 3,
        booked: 2,
      });
      await assertBalanced(h, eventId, { available: 0, held: 3, booked: 2 });
      assert.deepEqual(await snapshot(h.app, eventId), tight);
    });

    test('PATCH: lapsed holds no longer count; bad bodies are 400; unknown events 404', async () => {
      const eventId = await createEvent(h.app, 10);
      await newHold(h.app, eventId, 4);
      h.clock.advanceSeconds(120);
      const shrunk = (await patchEvent(h.app, eventId, { total_seats: 1 })).json();
      assert.deepEqual(shrunk, {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: 1,
        available: 1,
        held: 0,
        booked: 0,
      });
      await assertBalanced(h, eventId, { available: 1, held: 0, booked: 0 });
      for (const event of [
        {},
        { total_seats: '5' },
        { total_seats: 0 },
        { name: '' },
        { name: 'x', vip: true },
        { total_seats: 1_000_001 },
      ]) {
        isProblem(await patchEvent(h.app, eventId, event), 400, 'validation_failed');
      }
      isProblem(await patchEvent(h.app, 99_999_999, { name: 'x' }), 404, 'not_found');
      await assertBalanced(h, eventId, { available: 1, held: 0, booked: 0 });
    });
  });
}

describe('staff-only lifecycle routes need the admin token when it is set', () => {
  let h: H;
  before(async () => {
    h = await contractHarness(backends()[0]!, { env: { ADMIN_TOKEN: 'a-staff-token-long-enough' } });
  });
  after(() => h.close());

  test('PATCH /events/:id and POST /bookings/:id/cancel answer 401 without it', async () => {
    isProblem(await patchEvent(h.app, 1, { name: 'x' }), 401, 'unauthorized');
    isProblem(await cancel(h.app, 1), 401, 'unauthorized');
  });
});

contractTest();
