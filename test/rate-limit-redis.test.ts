// Rate limits shared by several server processes through Redis (REDIS_URL), and failing open
// when Redis is unreachable. Two apps built in this process stand for two processes: each has
// its own in-memory state, so only Redis can make them count together. Uses TEST_REDIS_URL,
// else a Redis on 127.0.0.1:6379 when one answers.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Harness, backends, createEvent, harness } from './support/helpers.ts';
import { freePort } from './support/throwaway-postgres.ts';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function reachable(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const LIMIT = 5;
// Any backend will do: the limits do not touch the database.
const anyBackend = backends()[0]!;
/** A client address of its own per test run, so counters left in Redis by an earlier run do not count. */
const clientAddress = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

const holdFrom = (h: Harness, address: string, eventId: number) =>
  h.app.inject({
    method: 'POST',
    url: '/holds',
    remoteAddress: address,
    payload: { hold: { event_id: eventId, qty: 1 } },
  });

describe('rate limits in Redis', { skip: (await reachable(redisUrl)) ? false : `no Redis at ${redisUrl}` }, () => {
  let a: Harness & { close(): Promise<void> };
  let b: Harness & { close(): Promise<void> };
  before(async () => {
    const env = { REDIS_URL: redisUrl, RATE_LIMIT_HOLDS_PER_MINUTE: String(LIMIT) };
    a = await harness(anyBackend, env);
    b = await harness(anyBackend, env);
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test('two processes share one limit: the client gets LIMIT holds in all, not LIMIT from each', async () => {
    const address = clientAddress();
    const [eventA, eventB] = [await createEvent(a.app, 100), await createEvent(b.app, 100)];
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT + 3; i++) {
      const [h, eventId] = i % 2 === 0 ? [a, eventA] : [b, eventB];
      statuses.push((await holdFrom(h, address, eventId)).statusCode);
    }
    assert.deepEqual(statuses, [...Array(LIMIT).fill(201), 429, 429, 429]);
    const refused = await holdFrom(b, address, eventB);
    assert.equal(refused.json().code, 'rate_limited');
    assert.ok(refused.headers['retry-after'] !== undefined);
    // Another client is not affected.
    assert.equal((await holdFrom(a, clientAddress(), eventA)).statusCode, 201);
  });
});

describe('rate limits with Redis unreachable', () => {
  test('fail open: the sale goes on, and the metrics say the limits are not enforced', async () => {
    const deadPort = await freePort(); // nothing listens here
    const h = await harness(anyBackend, {
      REDIS_URL: `redis://127.0.0.1:${deadPort}`,
      RATE_LIMIT_HOLDS_PER_MINUTE: String(LIMIT),
    });
    try {
      const address = clientAddress();
      const eventId = await createEvent(h.app, 100);
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 3; i++) statuses.push((await holdFrom(h, address, eventId)).statusCode);
      assert.deepEqual(statuses, Array(LIMIT + 3).fill(201), 'no 429 and no 5xx without Redis');
      const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, /^rate_limit_store_up 0$/m);
    } finally {
      await h.close();
    }
  });
});
