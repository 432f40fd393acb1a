// The `box-office` command: serve (default), worker, migrate, sweep.
import { readFileSync } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { DatabaseEvents } from './db/faults.ts';
import { DataDirInUse } from './db/data-dir-lock.ts';
import { systemClock } from './clock.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { DatabaseUnavailable } from './errors.ts';
import { ChangeFeed } from './changes/feed.ts';
import { type Metrics, createMetrics } from './metrics.ts';
import { openStore } from './storage/open.ts';
import type { Store } from './storage/store.ts';
import { Sweeper, purgeExpiredKeys, sweepOnce } from './worker/sweeper.ts';
import { WebhookWorker } from './webhooks/delivery.ts';

const USAGE = `usage: box-office <command>

  serve     run the HTTP API (and the in-process expiry sweeper and webhook deliveries); the default
  worker    run only the expiry sweeper, every SWEEP_INTERVAL_SECONDS, and webhook deliveries
  migrate   apply database migrations and exit
  sweep     run one expiry pass and exit

  --version print the version and exit

Configuration comes from the environment; see .env.example.`;

/** Logs (and counts) the database going down and coming back, once per change. */
/** A sweep that failed because the database is down is expected: one line at warn, not a stack. */
function sweepFailed(log: Logger) {
  return (error: unknown) => {
    if (error instanceof DatabaseUnavailable) log.warn({ code: error.code, detail: error.message }, 'sweep skipped');
    else log.error({ err: error }, 'sweep failed');
  };
}

function databaseEvents(log: Logger, metrics?: Metrics): DatabaseEvents {
  metrics?.databaseUp.set(1);
  return {
    down: (error) => {
      metrics?.databaseUp.set(0);
      log.error({ err: error }, 'database unavailable: answering 503 until a probe reaches it');
    },
    up: () => {
      metrics?.databaseUp.set(1);
      log.warn('database reachable again');
    },
    fault: (kind) => metrics?.databaseFaults.inc({ kind }),
  };
}

async function openMigrated(config: Config, log: Logger, metrics?: Metrics): Promise<Store> {
  const store = await openStore(config, databaseEvents(log, metrics));
  const applied = await store.migrate();
  log.info({ backend: store.backend, applied }, 'database ready');
  return store;
}

/**
 * Runs `stop` once on the first SIGTERM or SIGINT, then exits; if `stop` has not finished
 * within SHUTDOWN_TIMEOUT_SECONDS (a request or the database hangs), exits anyway.
 */
function onShutdown(log: Logger, shutdownTimeoutSeconds: number, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error({ shutdownTimeoutSeconds }, 'shutdown deadline passed; exiting with work unfinished');
      process.exit(1);
    }, shutdownTimeoutSeconds * 1000).unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

async function serve(config: Config, log: Logger): Promise<void> {
  const metrics = createMetrics();
  // The HTTP side (Fastify and its plugins) loads while the database opens: on a fresh PGlite
  // DATA_DIR the open is mostly a copy of the template, which leaves the CPU free.
  const [store, { buildApp, LISTEN_BACKLOG }] = await Promise.all([
    openMigrated(config, log, metrics),
    import('./app.ts'),
  ]);
  const app = await buildApp({ config, store, clock: systemClock, logger: log, metrics });
  const sweeper = new Sweeper({
    store,
    clock: systemClock,
    outbox: app.changeFeed.outbox,
    changeRetentionSeconds: config.changeRetentionSeconds,
    sweepIntervalSeconds: config.sweepIntervalSeconds,
    waitlistOfferTtlSeconds: config.waitlistOfferTtlSeconds,
    metrics,
    onError: sweepFailed(log),
    onSwept: (expired) => expired > 0 && log.info({ expired }, 'swept lapsed holds'),
  });
  try {
    await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
  } catch (error) {
    await store.close();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(
        `box-office: port ${config.port} on ${config.host} is already in use; stop what is using it or set PORT`,
      );
      process.exit(1);
    }
    throw error;
  }
  if (config.sweeperInServe) sweeper.start();
  else log.info('SWEEPER_IN_SERVE=false: run `box-office worker` to expire holds in the background');
  const webhooks = config.webhooksInServe
    ? new WebhookWorker({ store, clock: systemClock, config, metrics, log, feed: app.changeFeed })
    : undefined;
  webhooks?.start();
  onShutdown(log, config.shutdownTimeoutSeconds, async () => {
    // Stop taking requests and let in-flight ones (and their hold batches) finish first.
    await app.close();
    await sweeper.stop();
    await webhooks?.stop();
    await store.close();
  });
}

async function worker(config: Config, log: Logger): Promise<void> {
  const store = await openMigrated(config, log);
  // The worker numbers the changes it writes (and any others) like a server does.
  const feed = new ChangeFeed(store, config.changeFeed, log);
  await feed.start();
  const sweeper = new Sweeper({
    store,
    clock: systemClock,
    outbox: feed.outbox,
    changeRetentionSeconds: config.changeRetentionSeconds,
    sweepIntervalSeconds: config.sweepIntervalSeconds,
    waitlistOfferTtlSeconds: config.waitlistOfferTtlSeconds,
    onError: sweepFailed(log),
    onSwept: (expired) => expired > 0 && log.info({ expired }, 'swept lapsed holds'),
  });
  sweeper.start();
  const webhooks = new WebhookWorker({ store, clock: systemClock, config, log, feed });
  webhooks.start();
  log.info({ sweepIntervalSeconds: config.sweepIntervalSeconds }, 'expiry worker started');
  onShutdown(log, config.shutdownTimeoutSeconds, async () => {
    await sweeper.stop();
    await webhooks.stop();
    await feed.stop();
    await store.close();
  });
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'serve';
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`box-office: ${error.message}`);
    process.exit(2);
  }
  const log = pino({ level: config.logLevel, base: { service: 'box-office' } });
  switch (command) {
    case 'serve':
      return serve(config, log);
    case 'worker':
      return worker(config, log);
    case 'migrate': {
      const store = await openStore(config);
      const applied = await store.migrate();
      console.log(applied.length > 0 ? `applied: ${applied.join(', ')}` : 'up to date');
      return store.close();
    }
    case 'sweep': {
      const store = await openMigrated(config, log);
      const feed = new ChangeFeed(store, config.changeFeed, log);
      await feed.start();
      const expired = await sweepOnce(store, systemClock, feed.outbox, config.waitlistOfferTtlSeconds);
      await feed.stop();
      log.info(
        { purgedIdempotencyKeys: await purgeExpiredKeys(store, systemClock) },
        'purged expired Idempotency-Keys',
      );
      console.log(JSON.stringify({ expired }));
      return store.close();
    }
    default:
      console.error(`box-office: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // Errors a person can act on get one line; anything else is a bug and keeps its stack.
  if (error instanceof DataDirInUse || error instanceof DatabaseUnavailable)
    console.error(`box-office: ${error.message}`);
  else console.error('box-office: fatal:', error);
  process.exit(1);
});
