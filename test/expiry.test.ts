// Exact availability across expiry: a hold stops counting the instant it lapses, whether or not
// any sweeper has run, and the books balance through holds, bookings, lapses and sweeps.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
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
  NO_LIMITS_BODY,
} from './support/helpers.ts';
import { contractTest, installContractCheck } from './support/contract.ts';

// Every response below is checked against the OpenAPI document.
installContractCheck();

for (const backend of backends()) {
  describe(`expiry on ${backend.name}`, () => {
    let h: Harness & { close: () => Promise<void> };
    before(async () => {
      h = await harness(backend, { HOLD_TTL_SECONDS: '60' });
    });
    after(() => h.close());

    test('a hold counts until expires_at and not one instant after, before any sweep', async () => {
      const eventId = await createEvent(h.app, 10);
      assert.equal((await hold(h.app, eventId, 4)).statusCode, 201);
      h.clock.advanceSeconds(59.999);
      assert.deepEqual(await snapshot(h.app, eventId), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: 10,
        available: 6,
        held: 4,
        booked: 0,
      });
      h.clock.advanceSeconds(0.001);
      assert.deepEqual(await snapshot(h.app, eventId), {
        ...NO_LIMITS_BODY,
        event_id: eventId,
        name: 'Concert',
        total: 10,
        available: 10,
        held: 0,
        booked: 0,
      });
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });

    test('lapsed seats can be held again at once, without waiting for the sweeper', async () => {
      const eventId = await createEvent(h.app, 3);
      assert.equal((await hold(h.app, eventId, 3)).statusCode, 201);
      assert.equal((await hold(h.app, eventId, 1)).statusCode, 409);
      h.clock.advanceSeconds(60);
      assert.equal((await hold(h.app, eventId, 3)).statusCode, 201);
      assert.equal((await hold(h.app, eventId, 1)).statusCode, 409);
      const b = await books(h.store, eventId, h.clock.now());
      assert.equal(b.held, 3);
      assert.ok(b.balanced);
    });

    test('the sweeper marks lapsed holds expired, never booked ones, and the books stay balanced', async () => {
      const eventId = await createEvent(h.app, 10);
      const booked = (await hold(h.app, eventId, 2)).json();
      assert.equal((await book(h.app, booked.hold_id, booked.payment_token)).statusCode, 201);
      await hold(h.app, eventId, 3);
      h.clock.advanceSeconds(30);
      await hold(h.app, eventId, 1); // lapses 30 s later than the others
      h.clock.advanceSeconds(31);

      const before = await snapshot(h.app, eventId);
      assert.deepEqual([before.available, before.held, before.booked], [7, 1, 2]);
      assert.ok((await sweepOnce(h.store, h.clock, new Outbox(h.store, true))) >= 1);
      assert.deepEqual(await snapshot(h.app, eventId), before, 'a sweep never changes what a reader sees');
      const held = await h.store.findHold(booked.hold_id);
      assert.equal(held?.status, 'booked');

      h.clock.advanceSeconds(30);
      await sweepOnce(h.store, h.clock, new Outbox(h.store, true));
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.available, b.held, b.booked], [8, 0, 2]);
      assert.ok(b.balanced);
      assert.equal(await sweepOnce(h.store, h.clock, new Outbox(h.store, true)), 0, 'nothing is left to expire');
    });

    test('availability never goes negative and the event is never oversold across many lapses', async () => {
      const eventId = await createEvent(h.app, 5);
      let granted = 0;
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 4; i++) if ((await hold(h.app, eventId, 2)).statusCode === 201) granted++;
        const snap = await snapshot(h.app, eventId);
        assert.ok(snap.available >= 0 && snap.held <= 5);
        assert.equal(snap.available + snap.held + snap.booked, 5);
        h.clock.advanceSeconds(round % 2 === 0 ? 61 : 10);
        if (round === 3) await sweepOnce(h.store, h.clock, new Outbox(h.store, true));
      }
      assert.ok(granted >= 6, 'lapsed seats were granted again');
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });
  });
}

contractTest();
