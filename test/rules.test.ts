// Pure rules, no database: seat allocation and customer limits, per-event batching, configuration.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, loadConfig } from '../src/config.ts';
import { normalizeCustomer } from '../src/customer.ts';
import type { DomainError } from '../src/errors.ts';
import { decideHolds } from '../src/holds/holds.service.ts';
import { NO_LIMITS } from '../src/model.ts';
import { KeyedBatcher } from '../src/holds/keyed-batcher.ts';
import { hashToken, newPaymentToken, tokenMatches } from '../src/holds/payment-token.ts';

const anyone = (qtys: number[]) => qtys.map((qty) => ({ qty, customer: null }));
const noLimits = NO_LIMITS;
const at = { eventId: 1, now: new Date(Date.UTC(2030, 0, 1)) };
const granted = (refusals: Array<DomainError | null>) => refusals.map((refusal) => refusal === null);
const codes = (refusals: Array<DomainError | null>) => refusals.map((refusal) => refusal?.code ?? 'granted');

describe('decideHolds', () => {
  test('first come, first served; a request that does not fit does not block smaller ones', () => {
    const decide = (available: number, qtys: number[]) =>
      granted(decideHolds(anyone(qtys), { ...at, limits: noLimits, available, customerSeats: new Map() }));
    assert.deepEqual(decide(5, [3, 3, 2, 1]), [true, false, true, false]);
    assert.deepEqual(decide(0, [1]), [false]);
    assert.deepEqual(decide(4, [4]), [true]);
  });

  test('never grants more than available, and refuses only what would not fit', () => {
    fc.assert(
      fc.property(fc.nat(200), fc.array(fc.integer({ min: 1, max: 10 }), { maxLength: 300 }), (available, qtys) => {
        const refusals = decideHolds(anyone(qtys), { ...at, limits: noLimits, available, customerSeats: new Map() });
        let used = 0;
        qtys.forEach((qty, i) => {
          if (refusals[i] === null) used += qty;
          else assert.ok(qty > available - used, 'a refused request did not fit at its turn');
        });
        assert.ok(used <= available);
      }),
    );
  });

  test("a customer's requests in one batch are decided in order against their allowance", () => {
    const requests = [
      { qty: 2, customer: 'ann' },
      { qty: 2, customer: 'ann' },
      { qty: 1, customer: 'ann' },
      { qty: 3, customer: 'bob' },
      { qty: 1, customer: null },
    ];
    const refusals = decideHolds(requests, {
      ...at,
      limits: { ...noLimits, maxSeatsPerCustomer: 4 },
      available: 100,
      customerSeats: new Map([['ann', 1]]),
    });
    assert.deepEqual(codes(refusals), ['granted', 'customer_limit_reached', 'granted', 'granted', 'granted']);
    assert.deepEqual(refusals[1]!.details, { limit: 4, in_use: 3, requested: 2 });
  });

  test('max_seats_per_hold and customer_required refuse before the seats are counted', () => {
    const refusals = decideHolds(
      [
        { qty: 5, customer: 'ann' },
        { qty: 1, customer: null },
        { qty: 4, customer: 'ann' },
      ],
      {
        ...at,
        limits: { ...NO_LIMITS, maxSeatsPerHold: 4, customerRequired: true },
        available: 4,
        customerSeats: new Map(),
      },
    );
    assert.deepEqual(codes(refusals), ['hold_too_large', 'customer_required', 'granted']);
  });

  test('no customer ever goes over the limit, and every refusal names a reason that holds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.nat(30),
        fc.array(fc.record({ qty: fc.integer({ min: 1, max: 5 }), customer: fc.constantFrom('a', 'b', 'c', null) }), {
          maxLength: 50,
        }),
        (limit, available, requests) => {
          const refusals = decideHolds(requests, {
            ...at,
            limits: { ...noLimits, maxSeatsPerCustomer: limit },
            available,
            customerSeats: new Map(),
          });
          const seats = new Map<string, number>();
          let used = 0;
          requests.forEach(({ qty, customer }, i) => {
            const inUse = customer === null ? 0 : (seats.get(customer) ?? 0);
            if (refusals[i] === null) {
              used += qty;
              if (customer !== null) seats.set(customer, inUse + qty);
            } else if (refusals[i]!.code === 'customer_limit_reached') {
              assert.ok(inUse + qty > limit);
            } else {
              assert.equal(refusals[i]!.code, 'insufficient_seats');
              assert.ok(qty > available - used);
            }
          });
          for (const n of seats.values()) assert.ok(n <= limit);
          assert.ok(used <= available);
        },
      ),
    );
  });
});

describe('normalizeCustomer', () => {
  test('an email address: trimmed, lower-cased, +tag dropped; anything else exactly as given', () => {
    assert.equal(normalizeCustomer('  Ann+Sale@Example.COM ', true), 'ann@example.com');
    assert.equal(normalizeCustomer('ann@example.com', true), 'ann@example.com');
    assert.equal(normalizeCustomer('+tag@example.com', true), '+tag@example.com');
    assert.equal(normalizeCustomer('Account-42', true), 'Account-42');
    assert.equal(normalizeCustomer(' Account-42', true), ' Account-42', 'not an email: compared exactly');
    assert.equal(normalizeCustomer('Ann+Sale@Example.COM', false), 'Ann+Sale@Example.COM', 'switched off');
  });
});

describe('KeyedBatcher', () => {
  test('a lone request runs at once, alone; requests arriving meanwhile share the next batch', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const batcher = new KeyedBatcher<string, number, number>(
      async (_key, items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((resolve) => (release = resolve));
        return items.map((n) => n * 10);
      },
      100,
      1000,
    );
    const first = batcher.submit('a', 1);
    assert.deepEqual(batches, [[1]], 'no timer: the first request left immediately');
    const rest = [2, 3, 4].map((n) => batcher.submit('a', n));
    release();
    assert.deepEqual(await Promise.all([first, ...rest]), [10, 20, 30, 40]);
    assert.deepEqual(batches, [[1], [2, 3, 4]]);
  });

  test('batches are bounded, in arrival order, and keys do not wait for each other', async () => {
    const batches: Array<[string, number[]]> = [];
    const batcher = new KeyedBatcher<string, number, number>(
      async (key, items) => {
        batches.push([key, items]);
        await new Promise((resolve) => setImmediate(resolve));
        return items;
      },
      2,
      1000,
    );
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((n) => batcher.submit('a', n)).concat(batcher.submit('b', 9)),
    );
    assert.deepEqual(results, [1, 2, 3, 4, 5, 9]);
    assert.deepEqual(
      batches.filter(([k]) => k === 'a').map(([, items]) => items),
      [[1], [2, 3], [4, 5]],
    );
    assert.deepEqual(batches[1], ['b', [9]], 'key b ran while key a had a batch in flight');
  });

  test('per-item errors reject only that item; a failed batch rejects its own items only', async () => {
    let calls = 0;
    const batcher = new KeyedBatcher<string, number, number>(
      async (_key, items) => {
        calls++;
        if (calls === 2) throw new Error('database went away');
        return items.map((n) => (n < 0 ? new Error('negative') : n));
      },
      10,
      1000,
    );
    await assert.rejects(batcher.submit('k', -1), /negative/);
    await assert.rejects(batcher.submit('k', 1), /went away/);
    assert.equal(await batcher.submit('k', 2), 2);
  });

  test('a full queue answers overloaded instead of growing without bound', async () => {
    let release: () => void = () => {};
    const batcher = new KeyedBatcher<string, number, number>(
      async (_key, items) => {
        await new Promise<void>((resolve) => (release = resolve));
        return items;
      },
      10,
      2,
    );
    const inFlight = batcher.submit('k', 1);
    const queued = [batcher.submit('k', 2), batcher.submit('k', 3)];
    await assert.rejects(batcher.submit('k', 4), (error: { code?: string }) => error.code === 'overloaded');
    release();
    await inFlight;
    await new Promise((resolve) => setImmediate(resolve));
    release();
    assert.deepEqual(await Promise.all(queued), [2, 3]);
  });
});

describe('payment tokens', () => {
  test('carry at least 128 random bits and match only themselves, whatever their length', () => {
    const { token, hash } = newPaymentToken();
    assert.ok(Buffer.from(token, 'base64url').length * 8 >= 128);
    assert.ok(tokenMatches(token, hash));
    assert.ok(!tokenMatches(`${token}x`, hash));
    assert.ok(!tokenMatches('', hash));
    assert.ok(!tokenMatches(newPaymentToken().token, hash));
    assert.equal(hashToken(token).length, 32);
  });
});

describe('loadConfig', () => {
  test('defaults match the design', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.holdTtlSeconds, 120);
    assert.equal(config.sweepIntervalSeconds, 30);
    assert.equal(config.backend, 'pglite');
    assert.equal(config.dataDir, './data');
    assert.ok(Object.isFrozen(config));
  });

  test('picks the backend from DATABASE_URL', () => {
    assert.equal(loadConfig({ DATABASE_URL: 'postgres://u@h/db' }).backend, 'postgres');
    assert.equal(loadConfig({ DATABASE_URL: 'mysql://u@h/db' }).backend, 'mysql');
  });

  test('names every bad variable at once', () => {
    try {
      loadConfig({ PORT: 'eighty', HOLD_TTL_SECONDS: '0', LOG_LEVEL: 'loud', DATABASE_URL: 'sqlite://x' });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const text = error.message;
      for (const name of ['PORT', 'HOLD_TTL_SECONDS', 'LOG_LEVEL', 'DATABASE_URL'])
        assert.match(text, new RegExp(name));
      assert.equal(error.problems.length, 4);
    }
  });

  test('refuses production without ADMIN_TOKEN', () => {
    assert.throws(() => loadConfig({ NODE_ENV: 'production' }), /ADMIN_TOKEN is required/);
    assert.equal(
      loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'a-long-enough-secret' }).adminToken,
      'a-long-enough-secret',
    );
  });
});
