// Bad input gets a 4xx problem+json with a stable code, never a 5xx, and changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type Harness, backends, books, createEvent, harness, hold } from './support/helpers.ts';
import { contractTest, installContractCheck } from './support/contract.ts';

// Every response below is checked against the OpenAPI document.
installContractCheck();

type Case = {
  name: string;
  method: 'POST' | 'GET';
  url: string;
  body?: string;
  contentType?: string;
  status: number;
  code: string;
};

const cases = (eventId: number, holdId: number): Case[] => [
  { name: 'malformed JSON', method: 'POST', url: '/holds', body: '{"hold":', status: 400, code: 'malformed_json' },
  { name: 'empty JSON body', method: 'POST', url: '/holds', body: '', status: 400, code: 'malformed_json' },
  {
    name: 'text/plain body',
    method: 'POST',
    url: '/holds',
    body: 'hold 1',
    contentType: 'text/plain',
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'form body',
    method: 'POST',
    url: '/events',
    body: 'a=1',
    contentType: 'application/x-www-form-urlencoded',
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'oversized body',
    method: 'POST',
    url: '/events',
    body: JSON.stringify({ event: { name: 'x'.repeat(20_000), total_seats: 1 } }),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'unwrapped hold body',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ event_id: eventId, qty: 1 }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'qty as a string',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: eventId, qty: '1' } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'qty zero',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: eventId, qty: 0 } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'qty negative',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: eventId, qty: -3 } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'qty fractional',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: eventId, qty: 1.5 } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'qty over MAX_SEATS_PER_HOLD',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: eventId, qty: 11 } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'unknown field',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: eventId, qty: 1, vip: true } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'event id too large',
    method: 'POST',
    url: '/holds',
    body: JSON.stringify({ hold: { event_id: 2 ** 60, qty: 1 } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'null body member',
    method: 'POST',
    url: '/book',
    body: JSON.stringify({ booking: null }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'empty token',
    method: 'POST',
    url: '/book',
    body: JSON.stringify({ booking: { hold_id: holdId, payment_token: '' } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'token of the wrong length',
    method: 'POST',
    url: '/book',
    body: JSON.stringify({ booking: { hold_id: holdId, payment_token: 'x'.repeat(200) } }),
    status: 403,
    code: 'invalid_payment_token',
  },
  {
    name: 'hold id as a string',
    method: 'POST',
    url: '/book',
    body: JSON.stringify({ booking: { hold_id: String(holdId), payment_token: 'x' } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'event without seats',
    method: 'POST',
    url: '/events',
    body: JSON.stringify({ event: { name: 'x' } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'event with empty name',
    method: 'POST',
    url: '/events',
    body: JSON.stringify({ event: { name: '', total_seats: 5 } }),
    status: 400,
    code: 'validation_failed',
  },
  {
    name: 'event with negative seats',
    method: 'POST',
    url: '/events',
    body: JSON.stringify({ event: { name: 'x', total_seats: -1 } }),
    status: 400,
    code: 'validation_failed',
  },
  { name: 'JSON array body', method: 'POST', url: '/events', body: '[1,2]', status: 400, code: 'validation_failed' },
  {
    name: 'prototype pollution',
    method: 'POST',
    url: '/events',
    body: '{"__proto__":{"x":1},"event":{"name":"a","total_seats":1}}',
    status: 400,
    code: 'malformed_json',
  },
  { name: 'unknown route', method: 'GET', url: '/nowhere', status: 404, code: 'not_found' },
  { name: 'wrong method', method: 'GET', url: '/holds', status: 404, code: 'not_found' },
];

for (const backend of backends()) {
  describe(`bad input on ${backend.name}`, () => {
    let h: Harness & { close: () => Promise<void> };
    let eventId: number;
    let holdId: number;
    let eventCount: number;
    before(async () => {
      h = await harness(backend);
      eventId = await createEvent(h.app, 10);
      holdId = (await hold(h.app, eventId, 2)).json().hold_id;
      eventCount = eventId;
    });
    after(() => h.close());

    test('each bad request gets its 4xx problem and the books are unchanged', async () => {
      const before = await books(h.store, eventId, h.clock.now());
      for (const c of cases(eventId, holdId)) {
        const res = await h.app.inject({
          method: c.method,
          url: c.url,
          ...(c.body === undefined ? {} : { payload: c.body }),
          headers: c.body === undefined ? {} : { 'content-type': c.contentType ?? 'application/json' },
        });
        assert.equal(res.statusCode, c.status, `${c.name}: ${res.body}`);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/, c.name);
        const body = res.json();
        assert.equal(body.code, c.code, c.name);
        assert.ok(!('hold_id' in body), c.name);
      }
      assert.deepEqual(await books(h.store, eventId, h.clock.now()), before);
      // No stray event was created by any rejected POST /events.
      const next = await createEvent(h.app, 1);
      assert.equal(next, eventCount + 1);
      eventCount = next;
    });

    test('arbitrary JSON bodies never produce a 5xx and never change the books', async () => {
      const before = await books(h.store, eventId, h.clock.now());
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('/holds', '/book'),
          fc.oneof(
            fc.jsonValue(),
            fc.record({ hold: fc.record({ event_id: fc.jsonValue(), qty: fc.jsonValue() }, { requiredKeys: [] }) }),
            fc.record({
              booking: fc.record({ hold_id: fc.jsonValue(), payment_token: fc.jsonValue() }, { requiredKeys: [] }),
            }),
          ),
          async (url, body) => {
            const res = await h.app.inject({
              method: 'POST',
              url,
              payload: JSON.stringify(body),
              headers: { 'content-type': 'application/json' },
            });
            if (res.statusCode === 201) {
              // A valid hold for a real event may succeed; undo it so the books compare.
              const granted = res.json();
              await h.app.inject({ method: 'POST', url: `/admin/holds/${granted.hold_id}/expire` });
              return;
            }
            assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} for ${JSON.stringify(body)}`);
            assert.ok(typeof res.json().code === 'string');
          },
        ),
        { numRuns: 150 },
      );
      const after = await books(h.store, eventId, h.clock.now());
      assert.equal(after.booked, before.booked);
      assert.equal(after.held, before.held);
      assert.ok(after.balanced);
    });
  });
}

contractTest();
