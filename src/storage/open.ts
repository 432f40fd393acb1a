import type { Config } from '../config.ts';
import type { DatabaseEvents, ServerDatabaseOptions } from '../db/breaker.ts';
import { openPglite, openPostgres } from '../db/postgres.ts';
import { postgresStore } from './postgres.store.ts';
import type { Store } from './store.ts';

type DatabaseConfig = Pick<Config, 'backend' | 'databaseUrl' | 'dataDir' | 'databasePoolSize' |
  'databaseConnectTimeoutMs' | 'databaseAcquireTimeoutMs' | 'databaseStatementTimeoutMs' | 'databaseIdleInTransactionTimeoutMs'>;

export function serverOptions(config: DatabaseConfig, events?: DatabaseEvents): ServerDatabaseOptions {
  return {
    poolSize: config.databasePoolSize,
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    acquireTimeoutMs: config.databaseAcquireTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    idleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
    ...(events === undefined ? {} : { events }),
  };
}

/** Opens the database named by the config: PGlite in DATA_DIR, PostgreSQL, or MySQL. */
export async function openStore(config: DatabaseConfig, events?: DatabaseEvents): Promise<Store> {
  switch (config.backend) {
    case 'pglite':
      return postgresStore(await openPglite(config.dataDir));
    case 'postgres':
      return postgresStore(await openPostgres(config.databaseUrl!, serverOptions(config, events)));
    case 'mysql': {
      // Loaded only when asked for, so the PostgreSQL paths never load the MySQL driver.
      const { openMysqlStore } = await import('./mysql.store.ts');
      return openMysqlStore(config.databaseUrl!, serverOptions(config, events));
    }
  }
}
