// The box office as the benchmark runs it, in its own process: the same wiring as
// `box-office serve` (config from env, migrate, buildApp, sweeper, listen), with the hold path
// chosen by BENCH_STRATEGY, and two bench-only routes:
//   POST /__bench/preload      bulk-store holds before a measurement (bench/preload.ts)
//   GET  /__bench/recount/:id  audit an event's counters against SUMs over its rows
// It reports its port to the parent over IPC once it listens.
import pino from 'pino';
import { buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { type PgDatabase, openPglite, openPostgres } from '../src/db/postgres.ts';
import { createMetrics } from '../src/metrics.ts';
import { openStore } from '../src/storage/open.ts';
import { postgresStore } from '../src/storage/postgres.store.ts';
import type { Store } from '../src/storage/store.ts';
import { Sweeper } from '../src/worker/sweeper.ts';
import { type HoldStrategy, STRATEGIES, type Strategy, designHolds, singleStatementHolds } from './baselines.ts';
import { PRELOAD_MIXES, type PreloadMix, preloadHolds, recountEvent } from './preload.ts';

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
    : await openPostgres(config.databaseUrl!, config.databasePoolSize);
  store = postgresStore(db);
}
await store.migrate();

let holds: HoldStrategy | undefined;
if (strategy !== 'batched') {
  if (db === undefined) throw new Error(`the ${strategy} baseline runs on PostgreSQL and PGlite only`);
  holds = strategy === 'design' ? designHolds(db, systemClock, config) : singleStatementHolds(db, systemClock, config);
}

const metrics = createMetrics();
const app = await buildApp({ config, store, clock: systemClock, logger: log, metrics, ...(holds ? { holds } : {}) });

app.post<{ Body: { event_id: number; count: number; mix: PreloadMix } }>('/__bench/preload', async (request) => {
  const { event_id, count, mix } = request.body;
  if (db === undefined) throw new Error('preload runs on PostgreSQL and PGlite only');
  if (!PRELOAD_MIXES.includes(mix)) throw new Error(`mix must be one of ${PRELOAD_MIXES.join(', ')}`);
  return preloadHolds(db, event_id, count, mix, systemClock.now());
});

app.get<{ Params: { id: string } }>('/__bench/recount/:id', async (request) => {
  const eventId = Number(request.params.id);
  if (db !== undefined) return recountEvent(db, eventId, systemClock.now());
  return store.recount(eventId, systemClock.now());
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
