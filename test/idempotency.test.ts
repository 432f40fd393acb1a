// Idempotency-Key on every unsafe route, on each backend: replay, reuse, in-flight, scope,
// expiry and purge, concurrency, and atomicity with the effect under injected faults.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import type { IdempotencyCompletion } from '../src/model.ts';
import type { Store } from '../src/storage/store.ts';
import { contractHarness, contractTest, installContractCheck, isProblem } from './support/contract.ts';
import { type Harness, backends, books, createEvent } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };
type Res = Awaited<ReturnType<App['inject']>>;

let keyCounter = 0;
const newKey = () => `key-${process.pid}-${++keyCounter}-${Math.random().toString(36).slice(2)}`;

const holdWithKey = (app: App, key: string, eventId: number, qty: number, extra: { remoteAddress?: string } = {}) =>
  app.inject({
    method: 'POST',
    url: '/holds',
    headers: { 'idempotency-key': key },
    payload: { hold: { event_id: eventId, qty } },
    ...extra,
  });

const bookWithKey = (app: App, key: string, holdId: number, token: string) =>
  app.inject({
    method: 'POST',
    url: '/book',
    headers: { 'idempotency-key': key },
    payload: { booking: { hold_id: holdId, payment_token: token } },
  });

const isReplay = (res: Res) => res.headers['idempotent-replayed'] === 'true';

async function held(h: H, eventId: number): Promise<number> {
  const b = await books(h.store, eventId, h.clock.now());
  assert.ok(b.balanced, JSON.stringify(b));
  return b.held;
}

/** A store whose chosen operations are replaced; everything else is the real one. */
function overriding(store: Store, overrides: Partial<Store>): Store {
  return Object.assign(Object.create(store) as Store, overrides);
}

for (const backend of backends()) {
  describe(`Idempotency-Key on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend, { env: { IDEMPOTENCY_KEY_TTL_SECONDS: '3600' } });
    });
    after(() => h.close());

    test('same key, same body: the stored response is replayed with Idempotent-Replayed: true', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      const first = await holdWithKey(h.app, key, eventId, 2);
      assert.equal(first.statusCode, 201);
      assert.equal(first.headers['idempotent-replayed'], undefined);
      for (let i = 0; i < 3; i++) {
        const again = await holdWithKey(h.app, key, eventId, 2);
        assert.equal(again.statusCode, 201);
        assert.ok(isReplay(again));
        assert.match(String(again.headers['content-type']), /^application\/json/);
        assert.deepEqual(again.json(), first.json());
      }
      assert.equal(await held(h, eventId), 2);
      // Key order inside the body does not make it a different request; an sf-string key is the same key.
      const reordered = await h.app.inject({
        method: 'POST',
        url: '/holds',
        headers: { 'idempotency-key': `"${key}"`, 'content-type': 'application/json' },
        payload: `{"hold":{"qty":2,"event_id":${eventId}}}`,
      });
      assert.ok(isReplay(reordered));
      assert.deepEqual(reordered.json(), first.json());
    });

    test('same key, different body or route: 422 idempotency_key_reused, and nothing happens', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      const first = (await holdWithKey(h.app, key, eventId, 2)).json();
      isProblem(await holdWithKey(h.app, key, eventId, 3), 422, 'idempotency_key_reused');
      isProblem(await bookWithKey(h.app, key, first.hold_id, first.payment_token), 422, 'idempotency_key_reused');
      assert.equal(await held(h, eventId), 2);
    });

    test('20 parallel requests with one key produce one hold; the others replay it or are told it is in flight', async () => {
      const eventId = await createEvent(h.app, 100);
      const key = newKey();
      const responses = await Promise.all(Array.from({ length: 20 }, () => holdWithKey(h.app, key, eventId, 3)));
      const created = responses.filter((res) => res.statusCode === 201);
      const originals = created.filter((res) => !isReplay(res));
      assert.equal(originals.length, 1, responses.map((res) => res.statusCode).join(','));
      for (const res of created) assert.deepEqual(res.json(), originals[0]!.json());
      for (const res of responses.filter((r) => r.statusCode !== 201)) isProblem(res, 409, 'idempotency_key_in_flight');
      assert.equal(await held(h, eventId), 3);
      const after = await holdWithKey(h.app, key, eventId, 3);
      assert.ok(isReplay(after));
      assert.deepEqual(after.json(), originals[0]!.json());
    });

    test('20 parallel bookings with one key produce one booking', async () => {
      const eventId = await createEvent(h.app, 10);
      const granted = (await holdWithKey(h.app, newKey(), eventId, 4)).json();
      const key = newKey();
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => bookWithKey(h.app, key, granted.hold_id, granted.payment_token)),
      );
      const originals = responses.filter((res) => res.statusCode === 201 && !isReplay(res));
      assert.equal(originals.length, 1);
      for (const res of responses) {
        if (res.statusCode === 409) isProblem(res, 409, 'idempotency_key_in_flight');
        else assert.deepEqual([res.statusCode, res.json()], [201, originals[0]!.json()]);
      }
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.booked, b.held, b.balanced], [4, 0, true]);
    });

    test('a refusal is stored too: the replay is the same 409 even once seats are free', async () => {
      const eventId = await createEvent(h.app, 2);
      const blocker = (await holdWithKey(h.app, newKey(), eventId, 2)).json();
      const key = newKey();
      const refused = isProblem(await holdWithKey(h.app, key, eventId, 1), 409, 'insufficient_seats');
      await h.app.inject({
        method: 'DELETE',
        url: `/holds/${blocker.hold_id}`,
        headers: { 'x-payment-token': blocker.payment_token },
      });
      const replay = await holdWithKey(h.app, key, eventId, 1);
      assert.ok(isReplay(replay));
      assert.deepEqual(isProblem(replay, 409, 'insufficient_seats'), refused);
      assert.equal(await held(h, eventId), 0);
    });

    test('every unsafe route replays: events, book, release, extend, patch, cancel, admin expire', async () => {
      const send = (
        method: 'POST' | 'PATCH' | 'DELETE',
        url: string,
        key: string,
        payload?: object,
        headers: Record<string, string> = {},
      ) =>
        h.app.inject({ method, url, headers: { 'idempotency-key': key, ...headers }, ...(payload ? { payload } : {}) });
      const twice = async (...args: Parameters<typeof send>) => {
        const first = await send(...args);
        const second = await send(...args);
        assert.ok(!isReplay(first) && isReplay(second), `${args[0]} ${args[1]}`);
        assert.deepEqual([second.statusCode, second.json()], [first.statusCode, first.json()]);
        return first;
      };
      const created = await twice('POST', '/events', newKey(), { event: { name: 'Once', total_seats: 10 } });
      const eventId = created.json().event_id;
      assert.equal(await createEvent(h.app, 1), eventId + 1, 'the replay created no second event');
      const granted = (await twice('POST', '/holds', newKey(), { hold: { event_id: eventId, qty: 2 } })).json();
      const token = { 'x-payment-token': granted.payment_token };
      await twice('POST', `/holds/${granted.hold_id}/extend`, newKey(), { seconds: 30 }, token);
      assert.equal(
        Date.parse(
          (await send('POST', `/holds/${granted.hold_id}/extend`, newKey(), { seconds: 1 }, token)).json().expires_at,
        ),
        Date.parse(granted.expires_at) + 31_000,
        'the replayed extension did not extend again',
      );
      const booking = await twice('POST', '/book', newKey(), {
        booking: { hold_id: granted.hold_id, payment_token: granted.payment_token },
      });
      assert.equal(booking.statusCode, 201);
      await twice('POST', `/bookings/${booking.json().booking_id}/cancel`, newKey());
      await twice('PATCH', `/events/${eventId}`, newKey(), { event: { total_seats: 12 } });
      const other = (await holdWithKey(h.app, newKey(), eventId, 1)).json();
      const released = await twice('DELETE', `/holds/${other.hold_id}`, newKey(), undefined, {
        'x-payment-token': other.payment_token,
      });
      assert.equal(released.json().status, 'released');
      const third = (await holdWithKey(h.app, newKey(), eventId, 1)).json();
      await twice('POST', `/admin/holds/${third.hold_id}/expire`, newKey());
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.total, b.available, b.held, b.booked, b.balanced], [12, 12, 0, 0, true]);
    });

    test('keys are scoped per credential: the same key from another client is another request', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      const a = await holdWithKey(h.app, key, eventId, 1, { remoteAddress: '10.0.0.1' });
      const b = await holdWithKey(h.app, key, eventId, 1, { remoteAddress: '10.0.0.2' });
      assert.ok(!isReplay(a) && !isReplay(b));
      assert.notEqual(a.json().hold_id, b.json().hold_id);
      const staff = (token: string) =>
        h.app.inject({
          method: 'POST',
          url: '/events',
          headers: { 'idempotency-key': key, authorization: `Bearer ${token}` },
          payload: { event: { name: 'Scoped', total_seats: 1 } },
        });
      const one = await staff('first-credential');
      const two = await staff('second-credential');
      assert.ok(!isReplay(one) && !isReplay(two));
      assert.notEqual(one.json().event_id, two.json().event_id);
      assert.equal(await held(h, eventId), 2);
    });

    test('keys expire after IDEMPOTENCY_KEY_TTL_SECONDS and the sweeper purges them', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      const first = (await holdWithKey(h.app, key, eventId, 1)).json();
      h.clock.advanceSeconds(3599);
      assert.ok(isReplay(await holdWithKey(h.app, key, eventId, 1)));
      h.clock.advanceSeconds(1);
      assert.equal((await h.app.inject({ method: 'POST', url: '/admin/sweep' })).statusCode, 200);
      const fresh = await holdWithKey(h.app, key, eventId, 1);
      assert.ok(!isReplay(fresh));
      assert.notEqual(fresh.json().hold_id, first.hold_id);
      assert.equal(await h.store.purgeIdempotencyKeys(h.clock.now(), 1000), 0, 'the sweep purged every expired key');
    });

    test('malformed keys are 400', async () => {
      const eventId = await createEvent(h.app, 10);
      for (const key of ['', 'has space', 'x'.repeat(256), 'ünïcode']) {
        isProblem(await holdWithKey(h.app, key, eventId, 1), 400, 'validation_failed');
      }
      assert.equal(await held(h, eventId), 0);
    });
  });

  describe(`Idempotency-Key under faults on ${backend.name}`, () => {
    const faults = {
      failComplete: 0,
      failInsert: 0,
      transactions: 0,
      claims: 0,
      completions: [] as IdempotencyCompletion[][],
      /** The next transaction waits for this, after calling atGate. */
      gate: null as Promise<void> | null,
      atGate: () => {},
    };
    /** The next database call that passes here waits for faults.gate, after calling atGate. */
    const passGate = async () => {
      const gate = faults.gate;
      if (gate !== null) {
        faults.gate = null;
        faults.atGate();
        await gate;
      }
    };
    let h: H;
    before(async () => {
      h = await contractHarness(backend, {
        wrapStore: (store) =>
          overriding(store, {
            transaction: async (fn) => {
              faults.transactions++;
              await passGate();
              return store.transaction(fn);
            },
            // The one-statement grant of a keyless batch (PostgreSQL servers) stalls at the gate too.
            ...(store.grantAllFitting === undefined
              ? {}
              : {
                  grantAllFitting: async (...args: Parameters<NonNullable<Store['grantAllFitting']>>) => {
                    await passGate();
                    return store.grantAllFitting!(...args);
                  },
                }),
            claimIdempotencyKey: async (claim) => {
              const claimed = await store.claimIdempotencyKey(claim);
              if (claimed) faults.claims++;
              return claimed;
            },
            insertHolds: async (...args) => {
              if (faults.failInsert > 0 && faults.failInsert--) throw new Error('injected: insert failed');
              return store.insertHolds(...args);
            },
            completeIdempotencyKeys: async (tx, completions) => {
              faults.completions.push(completions);
              if (faults.failComplete > 0 && faults.failComplete--)
                throw new Error('injected: crash while storing the key');
              return store.completeIdempotencyKeys(tx, completions);
            },
          }),
      });
    });
    after(() => h.close());

    test('if storing the key fails, the effect rolls back with it; a retry then runs once', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      faults.failComplete = 1;
      isProblem(await holdWithKey(h.app, key, eventId, 2), 500, 'internal_error');
      assert.equal(await held(h, eventId), 0, 'no hold without its key');
      const retry = await holdWithKey(h.app, key, eventId, 2);
      assert.equal(retry.statusCode, 201);
      assert.ok(!isReplay(retry));
      assert.equal(await held(h, eventId), 2);
    });

    test('a 5xx stores nothing: the key is released and the retry runs afresh', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      faults.failInsert = 1;
      const failed = isProblem(await holdWithKey(h.app, key, eventId, 2), 500, 'internal_error');
      assert.ok(!String(failed.detail).includes('injected'), 'a 5xx reveals nothing');
      const retry = await holdWithKey(h.app, key, eventId, 2);
      assert.deepEqual([retry.statusCode, isReplay(retry)], [201, false]);
      assert.equal(await held(h, eventId), 2);
    });

    test('a stale claim is taken over mid-batch: the original alone gets 409, its batchmates commit, one effect', async () => {
      const eventId = await createEvent(h.app, 10);
      const key = newKey();
      let open: () => void = () => {};
      faults.gate = new Promise<void>((resolve) => (open = resolve));
      const atGate = new Promise<void>((resolve) => (faults.atGate = resolve));
      // The first batch stalls, so the keyed request and two plain ones wait for the next one
      // together: a process that stalls with the key claimed.
      const first = createHoldPlain(h.app, eventId);
      await atGate;
      const claims = faults.claims;
      const stuck = holdWithKey(h.app, key, eventId, 2);
      await until(() => faults.claims === claims + 1);
      const batchmates = [createHoldPlain(h.app, eventId), createHoldPlain(h.app, eventId)];
      isProblem(await holdWithKey(h.app, key, eventId, 2), 409, 'idempotency_key_in_flight');
      isProblem(await holdWithKey(h.app, key, eventId, 3), 422, 'idempotency_key_reused');
      h.clock.advanceSeconds(61);
      const takeover = holdWithKey(h.app, key, eventId, 2);
      await until(() => faults.claims === claims + 2); // the takeover holds the key now
      open();
      assert.equal((await first).statusCode, 201);
      const original = isProblem(await stuck, 409, 'idempotency_key_in_flight');
      assert.match(String(original.detail), /taken over/);
      assert.deepEqual(
        (await Promise.all(batchmates)).map((res) => res.statusCode),
        [201, 201],
        'batchmates are not failed by it',
      );
      const taken = await takeover;
      assert.deepEqual([taken.statusCode, isReplay(taken)], [201, false]);
      assert.equal(await held(h, eventId), 1 + 2 + 2, 'one hold for the key, and the three plain ones');
      const replay = await holdWithKey(h.app, key, eventId, 2);
      assert.ok(isReplay(replay));
      assert.deepEqual(replay.json(), taken.json());
    });

    test('a batch stores all its keys in one statement, a batch without keys in none, and tokens are sealed', async () => {
      const eventId = await createEvent(h.app, 1000);
      faults.completions = [];
      const before = faults.transactions;
      await Promise.all(Array.from({ length: 30 }, () => createHoldPlain(h.app, eventId)));
      assert.equal(faults.completions.length, 0, 'no key, no statement');
      const keyed = await Promise.all(Array.from({ length: 30 }, () => holdWithKey(h.app, newKey(), eventId, 1)));
      const statements = faults.completions.length;
      const stored = faults.completions.flat();
      assert.equal(stored.length, 30);
      assert.ok(statements <= faults.transactions - before, 'at most one key statement per transaction');
      // PGlite has one connection: each claim waits for the batch before it, so keyed requests
      // reach the batcher one at a time there. A pool claims them in parallel and they batch.
      if (backend.name !== 'pglite') assert.ok(statements < 30, `${statements} statements for 30 keyed holds`);
      for (const res of keyed) {
        const token = Buffer.from(res.json().payment_token);
        assert.ok(
          stored.every((completion) => !completion.body.includes(token)),
          'no stored body holds a token in clear',
        );
      }
      assert.equal(await held(h, eventId), 60);
    });
  });
}

/** Waits, in real time but briefly, until another request has got somewhere. */
async function until(condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited > 10_000) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const createHoldPlain = (app: App, eventId: number) =>
  app.inject({ method: 'POST', url: '/holds', payload: { hold: { event_id: eventId, qty: 1 } } });

contractTest();
