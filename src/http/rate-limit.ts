// Per-client limits for the routes that cost seats (POST /holds, POST /book), through
// @fastify/rate-limit registered with global: false. Without REDIS_URL the counters live in
// this process's memory, so N processes behind a balancer allow N times the limit; with it they
// are counted once, in Redis, for every process.
//
// Redis is a helper here, not a dependency of selling seats: if it is unreachable the limits
// are skipped (fail open) rather than the sale stopped, and the process says so, once per
// change, in its log and in the rate_limit_store_up metric. Every Redis wait is short, so a
// frozen Redis costs a request at most REDIS_COMMAND_TIMEOUT_MS.
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import type { App } from './types.ts';
import { DomainError } from '../errors.ts';
import type { Metrics } from '../metrics.ts';

const REDIS_CONNECT_TIMEOUT_MS = 500;
const REDIS_COMMAND_TIMEOUT_MS = 200;
/** Counter keys in Redis start with this, so the service can share a Redis with others. */
const REDIS_KEY_PREFIX = 'box-office:rate-limit:';

/** Route options that limit each client to `perMinute` requests; none when it is 0 (off). */
export function rateLimited(perMinute: number): { config?: { rateLimit: { max: number; timeWindow: number } } } {
  if (perMinute === 0) return {};
  return { config: { rateLimit: { max: perMinute, timeWindow: 60_000 } } };
}

export async function registerRateLimits(app: App, redisUrl: string | undefined, metrics: Metrics): Promise<void> {
  const redis = redisUrl === undefined ? undefined : await connectRedis(app, redisUrl, metrics);
  await app.register(rateLimit, {
    global: false,
    ...(redis === undefined ? {} : { redis, nameSpace: REDIS_KEY_PREFIX, skipOnError: true }),
    errorResponseBuilder: (_request, context) =>
      new DomainError('rate_limited', `too many requests from this client; retry in ${context.after}`),
  });
}

async function connectRedis(app: App, url: string, metrics: Metrics): Promise<Redis> {
  // Loaded only with REDIS_URL: ioredis is ~0.1 s of a start that does not use it.
  const ioredis = await import('ioredis');
  const redis = new ioredis.Redis(url, {
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    // Fail a command at once while disconnected instead of queueing it until Redis returns:
    // a request must not wait for Redis.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Keep reconnecting, at most every 2 s, for as long as the process lives.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    lazyConnect: true,
  });
  let up: boolean | undefined;
  const report = (nowUp: boolean, error?: unknown) => {
    metrics.rateLimitStoreUp.set(nowUp ? 1 : 0);
    if (up === nowUp) return;
    up = nowUp;
    if (nowUp) app.log.info('rate limits counted in Redis');
    else
      app.log.warn({ err: error }, 'Redis is unreachable: rate limits are not enforced until it is back (fail open)');
  };
  redis.on('ready', () => report(true));
  redis.on('error', (error) => report(false, error));
  redis.on('end', () => report(false));
  app.addHook('onClose', async () => {
    redis.disconnect();
  });
  // Connected before the first request, so that limits hold from the start; a Redis that is
  // down at start is reported and retried like one that goes down later.
  await redis.connect().catch((error: unknown) => report(false, error));
  return redis;
}
