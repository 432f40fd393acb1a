// The box office as the benchmark runs it, in its own process: the same wiring as
// `box-office serve` (config from env, migrate, buildApp, sweeper, listen), plus
//   - for BENCH_STRATEGY=single|design, POST /holds taken over by a baseline (bench/baselines.ts)
//     from outside the app (see takeOverHolds);
//   - bench-only routes:
//       POST /__bench/preload      bulk-store holds before a measurement (bench/preload.ts)
//       GET  /__bench/recount/:id  audit an event's counters against SUMs over its rows
//       POST /__bench/stats/reset, GET /__bench/stats  what the server did during a measurement
// It reports its port to the parent over IPC once it listens.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { type App, buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { MIGRATION_TIMEOUT_MS } from '../src/db/breaker.ts';
import { createMetrics } from '../src/metrics.ts';
import { recount } from '../src/storage/audit.sql.ts';
import { openPostgresStore, openStore } from '../src/storage/open.ts';
import type { SqlDatabase } from '../src/storage/sql.ts';
import { Sweeper } from '../src/worker/sweeper.ts';
import { type HoldStrategy, STRATEGIES, type Strategy, baselineHolds } from './baselines.ts';
import { PRELOAD_MIXES, type PreloadMix, countActiveHolds, preloadHolds } from './preload.ts';
import { traceTransactions } from './trace.ts';

const config = loadConfig();
const strategy = (process.env.BENCH_STRATEGY ?? 'batched') as Strategy;
if (!STRATEGIES.includes(strategy)) throw new Error(`BENCH_STRATEGY must be one of ${STRATEGIES.join(', ')}`);
const log = pino({ level: config.logLevel, base: { service: 'box-office', strategy } });

const store = await openStore(config);
await store.migrate();
const metrics = createMetrics();
// Traced below the store, so the service's batches and the baselines are timed alike.
const traced = traceTransactions(store.sql);
const app = await buildApp({ config, store, clock: systemClock, logger: log, metrics });
if (strategy !== 'batched') takeOverHolds(app, baselineHolds(strategy, store.sql, systemClock, config));

/**
 * Answers POST /holds with a baseline instead of the service's HoldsService. A preHandler runs
 * after the route's onRequest hooks (the rate limiter) and its body validation, and before the
 * route's own preHandlers and handler, so the baseline gets the same checked request and answers
 * with the same 201 body (serialised by the route's response schema) or the same problem (a
 * thrown DomainError reaches the app's error handler). The Idempotency-Key claim is a route
 * preHandler, so it does not run: the baselines ignore Idempotency-Key (the bench sends none).
 */
function takeOverHolds(app: App, holds: HoldStrategy): void {
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST' || request.routeOptions.url !== '/holds') return;
    const { event_id, qty } = (request.body as { hold: { event_id: number; qty: number } }).hold;
    const hold = await holds.createHold(event_id, qty);
    return reply.code(201).send({
      hold_id: hold.holdId,
      event_id: hold.eventId,
      qty: hold.qty,
      expires_at: hold.expiresAt.toISOString(),
      payment_token: hold.paymentToken,
    });
  });
}

/**
 * Where preload writes: a million rows take far longer than the service's statement timeout, so
 * on a PostgreSQL server a connection of its own with the migrations' timeout. PGlite has no
 * timeout (and one connection).
 */
async function preloadDatabase<T>(fn: (db: SqlDatabase) => Promise<T>): Promise<T> {
  if (config.backend !== 'postgres') return fn(store.sql);
  const own = await openPostgresStore(config.databaseUrl!, {
    poolSize: 1,
    statementTimeoutMs: MIGRATION_TIMEOUT_MS,
    idleInTransactionTimeoutMs: MIGRATION_TIMEOUT_MS,
  });
  try {
    return await fn(own.sql);
  } finally {
    await own.close();
  }
}

app.post<{ Body: { event_id: number; count: number; mix: PreloadMix } }>('/__bench/preload', async (request) => {
  const { event_id, count, mix } = request.body;
  if (!PRELOAD_MIXES.includes(mix)) throw new Error(`mix must be one of ${PRELOAD_MIXES.join(', ')}`);
  return preloadDatabase((db) => preloadHolds(db, event_id, count, mix, systemClock.now()));
});

app.get<{ Params: { id: string } }>('/__bench/recount/:id', async (request) => {
  const eventId = Number(request.params.id);
  const now = systemClock.now();
  // The books summed from the rows, and the count of active hold rows.
  return { ...(await recount(store.sql, eventId, now)), active_holds: await countActiveHolds(store.sql, eventId, now) };
});

// What the server did during a measurement: the bench resets these before it and reads them
// after. Hold batches come from the service's own metrics; transaction times from the tracer.
const LOOP_RESOLUTION_MS = 5;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();
app.post('/__bench/stats/reset', async () => {
  // The batch histogram counts from the server's start; the measurement wants its own window.
  metrics.holdBatchSize.reset();
  traced.reset();
  loopDelay.reset();
  return { ok: true };
});
app.get('/__bench/stats', async () => {
  const batches = (await metrics.holdBatchSize.get()).values;
  const pick = (name: string) => batches.find((v) => v.metricName === name)?.value ?? 0;
  return {
    holdBatches: pick('hold_batch_size_count'),
    holdBatchRequests: pick('hold_batch_size_sum'),
    ...traced.stats(),
    // The histogram holds whole timer intervals; the delay is what exceeds the resolution.
    eventLoopDelayMs: {
      p50: Math.max(0, loopDelay.percentile(50) / 1e6 - LOOP_RESOLUTION_MS),
      p99: Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
      max: Math.max(0, loopDelay.max / 1e6 - LOOP_RESOLUTION_MS),
    },
  };
});

const sweeper = new Sweeper({
  store,
  outbox: app.changeFeed.outbox,
  changeRetentionSeconds: config.changeRetentionSeconds,
  clock: systemClock,
  sweepIntervalSeconds: config.sweepIntervalSeconds,
  metrics,
  onError: (error) => log.error({ err: error }, 'sweep failed'),
});
await app.listen({ port: config.port, host: config.host });
sweeper.start();
const address = app.server.address();
process.send?.({ ready: true, port: typeof address === 'object' && address !== null ? address.port : config.port });

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  // process.exit (not a natural exit) so that --cpu-prof writes its profile.
  app
    .close()
    .then(() => sweeper.stop())
    .then(() => store.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
