// The `box-office` command: serve (default), worker, migrate, sweep.
import pino, { type Logger } from 'pino';
import { buildApp } from './app.ts';
import { systemClock } from './clock.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { createMetrics } from './metrics.ts';
import { openStore } from './storage/open.ts';
import type { Store } from './storage/store.ts';
import { Sweeper, purgeExpiredKeys, sweepOnce } from './worker/sweeper.ts';

const USAGE = `usage: box-office <command>

  serve     run the HTTP API (and the in-process expiry sweeper); the default
  worker    run only the expiry sweeper, every SWEEP_INTERVAL_SECONDS
  migrate   apply database migrations and exit
  sweep     run one expiry pass and exit

Configuration comes from the environment; see .env.example.`;

async function openMigrated(config: Config, log: Logger): Promise<Store> {
  const store = await openStore(config);
  const applied = await store.migrate();
  log.info({ backend: store.backend, applied }, 'database ready');
  return store;
}

/** Runs `stop` once on the first SIGTERM or SIGINT, then exits. */
function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
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
  const store = await openMigrated(config, log);
  const metrics = createMetrics();
  const app = await buildApp({ config, store, clock: systemClock, logger: log, metrics });
  const sweeper = new Sweeper({
    store, clock: systemClock, sweepIntervalSeconds: config.sweepIntervalSeconds, metrics,
    onError: (error) => log.error({ err: error }, 'sweep failed'),
    onSwept: (expired) => expired > 0 && log.info({ expired }, 'swept lapsed holds'),
  });
  await app.listen({ port: config.port, host: config.host });
  sweeper.start();
  onShutdown(log, async () => {
    // Stop taking requests and let in-flight ones (and their hold batches) finish first.
    await app.close();
    await sweeper.stop();
    await store.close();
  });
}

async function worker(config: Config, log: Logger): Promise<void> {
  const store = await openMigrated(config, log);
  const sweeper = new Sweeper({
    store, clock: systemClock, sweepIntervalSeconds: config.sweepIntervalSeconds,
    onError: (error) => log.error({ err: error }, 'sweep failed'),
    onSwept: (expired) => log.info({ expired }, 'sweep pass done'),
  });
  sweeper.start();
  log.info({ sweepIntervalSeconds: config.sweepIntervalSeconds }, 'expiry worker started');
  onShutdown(log, async () => {
    await sweeper.stop();
    await store.close();
  });
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'serve';
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
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
      const expired = await sweepOnce(store, systemClock);
      log.info({ purgedIdempotencyKeys: await purgeExpiredKeys(store, systemClock) }, 'purged expired Idempotency-Keys');
      console.log(JSON.stringify({ expired }));
      return store.close();
    }
    default:
      console.error(`box-office: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error('box-office: fatal:', error);
  process.exit(1);
});
