// The box office as the benchmark runs it, in its own process: the same wiring as
// `box-office serve` (config from env, migrate, buildApp, sweeper, listen), with the hold path
// chosen by BENCH_STRATEGY, and two bench-only routes:
//   POST /__bench/preload      bulk-store holds before a measurement (bench/preload.ts)
//   GET  /__bench/recount/:id  audit an event's counters against SUMs over its rows
//   POST /__bench/stats/reset, GET /__bench/stats  what the server did during a measurement
// It reports its port to the parent over IPC once it listens.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { type PgDatabase, openPglite, openPostgres } from '../src/db/postgres.ts';
import { createMetrics } from '../src/metrics.ts';
import { openStore, serverOptions } from '../src/storage/open.ts';
import { postgresStore } from '../src/storage/postgres.store.ts';
import type { Store } from '../src/storage/store.ts';
import { Sweeper } from '../src/worker/sweeper.ts';
import { type HoldStrategy, STRATEGIES, type Strategy, designHolds, singleStatementHolds } from './baselines.ts';
import { PRELOAD_MIXES, type PreloadMix, countActiveHolds, preloadHolds } from './preload.ts';
import { oneTripHolds } from './proposals.ts';
import { traceTransactions } from './trace.ts';

const config = loadConfig();
const strategy = (process.env.BENCH_STRATEGY ?? 'batched') as Strategy;
if (!STRATEGIES.includes(strategy)) throw new Error(`BENCH_STRATEGY must be one of ${STRATEGIES.join(', ')}`);
const log = pino({ level: config.logLevel, base: { service: 'box-office', strategy } });

let db: PgDatabase | undefined;
let store: Store;
if (config.backend === 'mysql') {
  store = await openStore(config);
} else {
  db = config.backend === 'pglite'
    ? await openPglite(config.dataDir)
    : await openPostgres(config.databaseUrl!, serverOptions(config));
  store = postgresStore(db);
}
await store.migrate();

function holdStrategy(pg: PgDatabase): HoldStrategy | undefined {
  switch (strategy) {
    case 'batched': return undefined;
    case 'single': return singleStatementHolds(pg, systemClock, config);
    case 'design': return designHolds(pg, systemClock, config);
    case 'onetrip': return oneTripHolds(pg, systemClock, config);
  }
}
if (strategy !== 'batched' && db === undefined) throw new Error(`${strategy} runs on PostgreSQL and PGlite only`);
const holds = db === undefined ? undefined : holdStrategy(db);

const metrics = createMetrics();
// Traced below the store, so the service's batches and the baselines are timed alike.
const traced = traceTransactions(db ?? store);
const app = await buildApp({ config, store, clock: systemClock, logger: log, metrics, ...(holds ? { holds } : {}) });

app.post<{ Body: { event_id: number; count: number; mix: PreloadMix } }>('/__bench/preload', async (request) => {
  const { event_id, count, mix } = request.body;
  if (db === undefined) throw new Error('preload runs on PostgreSQL and PGlite only');
  if (!PRELOAD_MIXES.includes(mix)) throw new Error(`mix must be one of ${PRELOAD_MIXES.join(', ')}`);
  return preloadHolds(db, event_id, count, mix, systemClock.now());
});

app.get<{ Params: { id: string } }>('/__bench/recount/:id', async (request) => {
  const eventId = Number(request.params.id);
  const now = systemClock.now();
  // The store's own audit (SUMs over rows), plus the count of active hold rows where we can.
  const sums = await store.recount(eventId, now);
  return db === undefined ? sums : { ...sums, active_holds: await countActiveHolds(db, eventId, now) };
});

// What the server did during a measurement: the bench resets these before it and reads them
// after. Hold batches come from the service's own metrics; transaction times from the wrapper.
const LOOP_RESOLUTION_MS = 5;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();
app.post('/__bench/stats/reset', async () => {
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
  store, clock: systemClock, sweepIntervalSeconds: config.sweepIntervalSeconds, metrics,
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
  app.close()
    .then(() => sweeper.stop())
    .then(() => store.close())
    .then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
