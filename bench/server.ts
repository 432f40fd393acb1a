// The box office as the benchmark runs it, in its own process: the same wiring as
// `box-office serve` (config from env, migrate, buildApp, sweeper, webhook deliveries, listen), plus bench-only
// routes:
//   GET  /__bench/recount/:id  audit an event's counters against SUMs over its rows
//   POST /__bench/stats/reset, GET /__bench/stats  what the server did during a measurement
// It reports its port to the parent over IPC once it listens.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { LISTEN_BACKLOG, buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { createMetrics } from '../src/metrics.ts';
import { recount } from '../src/storage/audit.sql.ts';
import { openStore } from '../src/storage/open.ts';
import type { Sql } from '../src/storage/sql.ts';
import { WebhookWorker } from '../src/webhooks/delivery.ts';
import { Sweeper } from '../src/worker/sweeper.ts';
import { traceTransactions } from './trace.ts';

const config = loadConfig();
const log = pino({ level: config.logLevel, base: { service: 'box-office' } });

const store = await openStore(config);
await store.migrate();
const metrics = createMetrics();
// Traced below the store, so every statement the service sends is timed.
const traced = traceTransactions(store.sql);
const app = await buildApp({ config, store, clock: systemClock, logger: log, metrics });

/** How many active, unexpired hold rows an event has (the books check counts them); both dialects. */
async function countActiveHolds(sql: Sql, eventId: number, now: Date): Promise<number> {
  const [row] = await sql.rows<{ n: number | string }>(
    `select count(*) as n from holds where event_id = $1 and status = 'active' and expires_at > $2`,
    [eventId, now],
  );
  return Number(row!.n);
}

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
// As `serve` does: a webhook a bench registers (--features) is delivered by this process.
const webhooks = config.webhooksInServe
  ? new WebhookWorker({ store, clock: systemClock, config, metrics, log, feed: app.changeFeed })
  : undefined;
await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
sweeper.start();
webhooks?.start();
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
    .then(() => webhooks?.stop())
    .then(() => store.close())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
