// The design's API, endpoint by endpoint, with every error it can return, on each backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type Harness,
  backends,
  book,
  createEvent,
  harness,
  hold,
  snapshot,
  NO_LIMITS_BODY,
} from './support/helpers.ts';
import { contractTest, installContractCheck, isProblem } from './support/contract.ts';

// Every response below is checked against the OpenAPI document.
installContractCheck();

for (const backend of backends()) {
  describe(`API contract on ${backend.name}`, () => {
    let h: Harness & { close: () => Promise<void> };
    before(async () => {
      h = await harness(backend);
    });
    after(() => h.close());

    test('POST /events creates an event and answers 201 with the design JSON', async () => {
      const res = await h.app.inject({
        method: 'POST',
        url: '/events',
        payload: { event: { name: 'Concert', total_seats: 100 } },
      });
      assert.equal(res.statusCode, 201);
      const body = res.json();
      assert.ok(Number.isInteger(body.event_id) && body.event_id > 0);
      assert.equal(body.total_seats, 100);
      assert.equal(body.created_at, h.clock.now().toISOString());
    });

    test('GET /events/:id returns the snapshot; unknown ids are 404, malformed ids 400', async () => {
      const eventId = await createEvent(h.app, 100);
      const res = await h.app.inject({ method: 'GET', url: `/events/${eventId}` });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: 100,
        available: 100,
        held: 0,
        booked: 0,
      });
      isProblem(await h.app.inject({ method: 'GET', url: '/events/999999' }), 404, 'not_found');
      isProblem(await h.app.inject({ method: 'GET', url: '/events/abc' }), 400, 'validation_failed');
      isProblem(await h.app.inject({ method: 'GET', url: '/events/0' }), 400, 'validation_failed');
    });

    test('POST /holds grants seats with an integer id, an expiry TTL ahead and a token', async () => {
      const eventId = await createEvent(h.app, 10);
      const res = await hold(h.app, eventId, 2);
      assert.equal(res.statusCode, 201);
      const body = res.json();
      assert.ok(Number.isInteger(body.hold_id));
      assert.equal(body.expires_at, new Date(h.clock.now().getTime() + 120_000).toISOString());
      assert.ok(typeof body.payment_token === 'string' && body.payment_token.length >= 22);
      assert.deepEqual(await snapshot(h.app, eventId), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: 10,
        available: 8,
        held: 2,
        booked: 0,
      });
    });

    test('POST /holds refuses with 409 insufficient_seats when fewer seats are free, changing nothing', async () => {
      const eventId = await createEvent(h.app, 5);
      assert.equal((await hold(h.app, eventId, 3)).statusCode, 201);
      const body = isProblem(await hold(h.app, eventId, 3), 409, 'insufficient_seats');
      assert.equal(body.available, 2);
      assert.equal((await snapshot(h.app, eventId)).held, 3);
      // A smaller request still fits.
      assert.equal((await hold(h.app, eventId, 2)).statusCode, 201);
      assert.equal((await snapshot(h.app, eventId)).available, 0);
    });

    test('POST /holds for an unknown event is 404', async () => {
      isProblem(await hold(h.app, 987654, 1), 404, 'not_found');
    });

    test('POST /book books a hold: 201 first, then 200 with the same booking_id', async () => {
      const eventId = await createEvent(h.app, 5);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 3)).json();
      const first = await book(h.app, hold_id, payment_token);
      assert.equal(first.statusCode, 201);
      const bookingId = first.json().booking_id;
      assert.ok(Number.isInteger(bookingId));
      for (let i = 0; i < 3; i++) {
        const retry = await book(h.app, hold_id, payment_token);
        assert.equal(retry.statusCode, 200);
        assert.deepEqual(retry.json(), { booking_id: bookingId });
      }
      assert.deepEqual(await snapshot(h.app, eventId), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: 5,
        available: 2,
        held: 0,
        booked: 3,
      });
    });

    test('POST /book: wrong token 403, unknown hold 404, expired hold 410', async () => {
      const eventId = await createEvent(h.app, 5);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 1)).json();
      isProblem(await book(h.app, hold_id, 'not-the-token'), 403, 'invalid_payment_token');
      isProblem(await book(h.app, hold_id, `${payment_token}x`), 403, 'invalid_payment_token');
      isProblem(await book(h.app, 88888888, payment_token), 404, 'not_found');
      h.clock.advanceSeconds(121);
      isProblem(await book(h.app, hold_id, payment_token), 410, 'hold_expired');
      assert.equal((await snapshot(h.app, eventId)).booked, 0);
    });

    test('booking never extends a hold: a hold booked after its deadline is refused even if not yet swept', async () => {
      const eventId = await createEvent(h.app, 5);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 1)).json();
      h.clock.advanceSeconds(120); // exactly at expires_at: no longer held
      isProblem(await book(h.app, hold_id, payment_token), 410, 'hold_expired');
    });

    test('admin: force-expire frees the seats at once; sweep reports how many it expired', async () => {
      const eventId = await createEvent(h.app, 5);
      const { hold_id } = (await hold(h.app, eventId, 2)).json();
      const res = await h.app.inject({ method: 'POST', url: `/admin/holds/${hold_id}/expire` });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().status, 'expired');
      assert.equal((await snapshot(h.app, eventId)).available, 5);
      // Expiring again changes nothing.
      assert.equal((await h.app.inject({ method: 'POST', url: `/admin/holds/${hold_id}/expire` })).statusCode, 200);
      assert.equal((await snapshot(h.app, eventId)).available, 5);
      isProblem(await h.app.inject({ method: 'POST', url: '/admin/holds/7777777/expire' }), 404, 'not_found');

      await hold(h.app, eventId, 1);
      await hold(h.app, eventId, 1);
      h.clock.advanceSeconds(121);
      const sweep = await h.app.inject({ method: 'POST', url: '/admin/sweep' });
      assert.equal(sweep.statusCode, 200);
      assert.ok(sweep.json().expired >= 2);
    });

    test('admin: a booked hold cannot be force-expired (409) and stays booked', async () => {
      const eventId = await createEvent(h.app, 5);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 2)).json();
      assert.equal((await book(h.app, hold_id, payment_token)).statusCode, 201);
      isProblem(await h.app.inject({ method: 'POST', url: `/admin/holds/${hold_id}/expire` }), 409, 'hold_not_active');
      assert.equal((await snapshot(h.app, eventId)).booked, 2);
    });

    test('probes, OpenAPI and docs are served', async () => {
      assert.deepEqual((await h.app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
      assert.deepEqual((await h.app.inject({ method: 'GET', url: '/readyz' })).json(), { status: 'ok' });
      const openapi = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      assert.equal(openapi.openapi, '3.1.0');
      for (const path of ['/events', '/events/{id}', '/holds', '/book', '/admin/holds/{id}/expire', '/admin/sweep']) {
        assert.ok(openapi.paths[path], `OpenAPI documents ${path}`);
      }
      assert.ok(openapi.paths['/holds'].post.responses['409'], 'error responses are documented');
      const docs = await h.app.inject({ method: 'GET', url: '/docs/' });
      assert.equal(docs.statusCode, 200);
      assert.match(docs.body, /swagger/i);
      const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
      assert.match(metrics.body, /holds_granted_total \d+/);
    });

    test('every response carries a request id, echoing a well-formed X-Request-Id', async () => {
      const res = await h.app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
      assert.equal(res.headers['x-request-id'], 'abc-123');
      const generated = await h.app.inject({ method: 'GET', url: '/healthz' });
      assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    });
  });
}

describe('admin token', () => {
  const backend = backends()[0]!;
  let h: Harness & { close: () => Promise<void> };
  const token = 'an-admin-token-of-some-length';
  before(async () => {
    h = await harness(backend, { ADMIN_TOKEN: token });
  });
  after(() => h.close());

  test('with ADMIN_TOKEN set, POST /events and /admin/* need the bearer token', async () => {
    const payload = { event: { name: 'Gala', total_seats: 3 } };
    isProblem(await h.app.inject({ method: 'POST', url: '/events', payload }), 401, 'unauthorized');
    isProblem(
      await h.app.inject({ method: 'POST', url: '/events', payload, headers: { authorization: 'Bearer wrong' } }),
      401,
      'unauthorized',
    );
    isProblem(await h.app.inject({ method: 'POST', url: '/admin/sweep' }), 401, 'unauthorized');
    const ok = await h.app.inject({
      method: 'POST',
      url: '/events',
      payload,
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(ok.statusCode, 201);
    const sweep = await h.app.inject({
      method: 'POST',
      url: '/admin/sweep',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(sweep.statusCode, 200);
    // Public routes stay public.
    assert.equal((await hold(h.app, ok.json().event_id, 1)).statusCode, 201);
  });
});

contractTest();
