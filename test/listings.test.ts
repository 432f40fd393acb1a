// Staff listings behind the console, on each backend: an event's holds and bookings by status,
// a page at a time in either direction, the CSV export, and the admin checks in front of them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { ListingsService } from '../src/listings/listings.service.ts';
import { contractHarness, contractTest, installContractCheck, isProblem } from './support/contract.ts';
import { type Harness, backends, book, createEvent, hold } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };
type Granted = { hold_id: number; payment_token: string };

const get = (app: App, url: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url, headers });

async function newHold(app: App, eventId: number, qty: number): Promise<Granted> {
  const res = await hold(app, eventId, qty);
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

/** Every page of a listing, following next_cursor; the ids of each page. */
async function allPages(app: App, url: string, key: 'holds' | 'bookings'): Promise<number[][]> {
  const pages: number[][] = [];
  let cursor: string | null = null;
  do {
    const res = await get(app, `${url}${cursor === null ? '' : `&cursor=${cursor}`}`);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    pages.push(body[key].map((row: Record<string, number>) => row[key === 'holds' ? 'hold_id' : 'booking_id']));
    cursor = body.next_cursor;
  } while (cursor !== null && pages.length < 20);
  return pages;
}

for (const backend of backends()) {
  describe(`listings on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend);
    });
    after(() => h.close());

    test("an event's holds by status; a lapsed hold is listed as expired before any sweep", async () => {
      const eventId = await createEvent(h.app, 20);
      const lapsing = await newHold(h.app, eventId, 1);
      h.clock.advanceSeconds(100);
      const booked = await newHold(h.app, eventId, 2);
      const released = await newHold(h.app, eventId, 3);
      const active = await newHold(h.app, eventId, 4);
      const bookingId = (await book(h.app, booked.hold_id, booked.payment_token)).json().booking_id;
      await h.app.inject({
        method: 'DELETE',
        url: `/holds/${released.hold_id}`,
        headers: { 'x-payment-token': released.payment_token },
      });
      h.clock.advanceSeconds(30); // the first hold is 130 s old: past its 120 s

      const byStatus = async (status: string) =>
        (await get(h.app, `/events/${eventId}/holds?status=${status}`)).json().holds;
      assert.deepEqual(
        (await byStatus('active')).map((row: { hold_id: number }) => row.hold_id),
        [active.hold_id],
      );
      const [expired] = await byStatus('expired');
      assert.deepEqual(expired, {
        hold_id: lapsing.hold_id,
        event_id: eventId,
        qty: 1,
        customer: null,
        status: 'expired',
        created_at: new Date(h.clock.now().getTime() - 130_000).toISOString(),
        expires_at: new Date(h.clock.now().getTime() - 10_000).toISOString(),
        booking_id: null,
      });
      assert.deepEqual(
        (await byStatus('booked')).map((row: { hold_id: number; booking_id: number }) => [row.hold_id, row.booking_id]),
        [[booked.hold_id, bookingId]],
      );
      assert.equal((await byStatus('released'))[0].hold_id, released.hold_id);

      const all = (await get(h.app, `/events/${eventId}/holds`)).json();
      assert.deepEqual(
        all.holds.map((row: { status: string }) => row.status),
        ['expired', 'booked', 'released', 'active'],
      );
      assert.equal(all.next_cursor, null);
    });

    test('pages follow next_cursor to the end, oldest or newest first, each hold once', async () => {
      const eventId = await createEvent(h.app, 50);
      const ids: number[] = [];
      for (let i = 0; i < 7; i++) ids.push((await newHold(h.app, eventId, 1)).hold_id);
      assert.deepEqual(await allPages(h.app, `/events/${eventId}/holds?limit=3`, 'holds'), [
        ids.slice(0, 3),
        ids.slice(3, 6),
        ids.slice(6),
      ]);
      const newestFirst = [...ids].reverse();
      assert.deepEqual(await allPages(h.app, `/events/${eventId}/holds?limit=3&order=desc`, 'holds'), [
        newestFirst.slice(0, 3),
        newestFirst.slice(3, 6),
        newestFirst.slice(6),
      ]);
      // A page that ends exactly at the last row says so: no empty page after it.
      assert.deepEqual(await allPages(h.app, `/events/${eventId}/holds?limit=7`, 'holds'), [ids]);
      // Another event's holds never show.
      const other = await createEvent(h.app, 5);
      await newHold(h.app, other, 1);
      assert.equal((await get(h.app, `/events/${eventId}/holds?limit=100`)).json().holds.length, 7);
    });

    test("an event's bookings by status, a page at a time", async () => {
      const eventId = await createEvent(h.app, 20);
      const bookingIds: number[] = [];
      for (let i = 0; i < 5; i++) {
        const granted = await newHold(h.app, eventId, 2);
        bookingIds.push((await book(h.app, granted.hold_id, granted.payment_token)).json().booking_id);
      }
      h.clock.advanceSeconds(5);
      const cancelled = await h.app.inject({ method: 'POST', url: `/bookings/${bookingIds[1]}/cancel` });
      assert.equal(cancelled.statusCode, 200);

      const res = await get(h.app, `/events/${eventId}/bookings?status=cancelled`);
      assert.deepEqual(res.json(), {
        bookings: [{ ...cancelled.json(), cancelled_at: h.clock.now().toISOString() }],
        next_cursor: null,
      });
      assert.deepEqual(await allPages(h.app, `/events/${eventId}/bookings?status=confirmed&limit=2`, 'bookings'), [
        [bookingIds[0], bookingIds[2]],
        [bookingIds[3], bookingIds[4]],
      ]);
      assert.deepEqual(await allPages(h.app, `/events/${eventId}/bookings?order=desc&limit=10`, 'bookings'), [
        [...bookingIds].reverse(),
      ]);
    });

    test('an event with no holds lists none; an unknown event is 404', async () => {
      const eventId = await createEvent(h.app, 5);
      assert.deepEqual((await get(h.app, `/events/${eventId}/holds`)).json(), { holds: [], next_cursor: null });
      assert.deepEqual((await get(h.app, `/events/${eventId}/bookings?status=cancelled`)).json(), {
        bookings: [],
        next_cursor: null,
      });
      isProblem(await get(h.app, '/events/99999999/holds'), 404, 'not_found');
      isProblem(await get(h.app, '/events/99999999/bookings'), 404, 'not_found');
      isProblem(await get(h.app, '/events/99999999/bookings.csv'), 404, 'not_found');
    });

    test('bad queries are 400 with what is allowed, and a cursor only fits its own listing', async () => {
      const eventId = await createEvent(h.app, 5);
      for (let i = 0; i < 2; i++) await newHold(h.app, eventId, 1);
      const holdCursor = (await get(h.app, `/events/${eventId}/holds?limit=1`)).json().next_cursor;
      assert.equal(typeof holdCursor, 'string');
      const wrongListing = isProblem(
        await get(h.app, `/events/${eventId}/bookings?cursor=${holdCursor}`),
        400,
        'validation_failed',
      );
      assert.deepEqual(wrongListing.errors, [
        { path: 'querystring/cursor', message: 'is not a cursor this listing issued' },
      ]);
      isProblem(await get(h.app, `/events/${eventId}/holds?cursor=bm9wZQ`), 400, 'validation_failed');
      isProblem(await get(h.app, `/events/${eventId}/holds?limit=0`), 400, 'validation_failed');
      isProblem(await get(h.app, `/events/${eventId}/holds?limit=101`), 400, 'validation_failed');
      isProblem(await get(h.app, `/events/${eventId}/holds?sort=id`), 400, 'validation_failed');
      const status = isProblem(await get(h.app, `/events/${eventId}/holds?status=cancelled`), 400, 'validation_failed');
      assert.match(String(status.detail), /status: must be one of active, expired, booked, released/);
      isProblem(await get(h.app, `/events/${eventId}/bookings?order=sideways`), 400, 'validation_failed');
      isProblem(await get(h.app, '/events/abc/holds'), 400, 'validation_failed');
    });

    test('the CSV export has a header row and every booking, oldest first', async () => {
      const eventId = await createEvent(h.app, 20);
      const first = await newHold(h.app, eventId, 2);
      const second = await newHold(h.app, eventId, 3);
      const firstId = (await book(h.app, first.hold_id, first.payment_token)).json().booking_id;
      const secondId = (await book(h.app, second.hold_id, second.payment_token)).json().booking_id;
      await h.app.inject({ method: 'POST', url: `/bookings/${firstId}/cancel` });
      const now = h.clock.now().toISOString();

      const res = await get(h.app, `/events/${eventId}/bookings.csv`);
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
      assert.equal(res.headers['content-disposition'], `attachment; filename="event-${eventId}-bookings.csv"`);
      assert.equal(
        res.body,
        'booking_id,hold_id,event_id,qty,status,created_at,cancelled_at,customer\r\n' +
          `${firstId},${first.hold_id},${eventId},2,cancelled,${now},${now},\r\n` +
          `${secondId},${second.hold_id},${eventId},3,confirmed,${now},,\r\n`,
      );
      const empty = await get(h.app, `/events/${await createEvent(h.app, 1)}/bookings.csv`);
      assert.equal(empty.body, 'booking_id,hold_id,event_id,qty,status,created_at,cancelled_at,customer\r\n');
    });

    test('the export reads a page per statement and misses no booking between pages', async () => {
      const eventId = await createEvent(h.app, 30);
      const expected: number[] = [];
      for (let i = 0; i < 7; i++) {
        const granted = await newHold(h.app, eventId, 1);
        expected.push((await book(h.app, granted.hold_id, granted.payment_token)).json().booking_id);
      }
      const pageSizes: number[] = [];
      const listings = new ListingsService(h.store, h.clock, 3);
      for await (const page of await listings.exportBookings(eventId)) pageSizes.push(page.length);
      assert.deepEqual(pageSizes, [3, 3, 1]);
      const seen: number[] = [];
      for await (const page of await listings.exportBookings(eventId)) seen.push(...page.map((row) => row.id));
      assert.deepEqual(seen, expected);
    });
  });
}

describe('listings and the admin token', () => {
  let h: H;
  const token = 'listings-admin-token-0123456789';
  before(async () => {
    h = await contractHarness(backends()[0]!, { env: { ADMIN_TOKEN: token } });
  });
  after(() => h.close());

  test('every listing, the export and /admin/session need the bearer token', async () => {
    const created = await h.app.inject({
      method: 'POST',
      url: '/events',
      headers: { authorization: `Bearer ${token}` },
      payload: { event: { name: 'Staff only', total_seats: 3 } },
    });
    const eventId = created.json().event_id;
    for (const url of [
      `/events/${eventId}/holds`,
      `/events/${eventId}/bookings`,
      `/events/${eventId}/bookings.csv`,
      '/admin/session',
    ]) {
      isProblem(await get(h.app, url), 401, 'unauthorized');
      isProblem(await get(h.app, url, { authorization: 'Bearer not-the-token' }), 401, 'unauthorized');
      assert.equal((await get(h.app, url, { authorization: `Bearer ${token}` })).statusCode, 200, url);
    }
    assert.deepEqual((await get(h.app, '/admin/session', { authorization: `Bearer ${token}` })).json(), {
      admin: true,
      token_required: true,
    });
  });
});

describe('/admin/session without ADMIN_TOKEN', () => {
  let h: H;
  before(async () => {
    h = await contractHarness(backends()[0]!);
  });
  after(() => h.close());

  test('says admin routes are open', async () => {
    assert.deepEqual((await get(h.app, '/admin/session')).json(), { admin: true, token_required: false });
  });
});

contractTest();
