import type { Config } from '../config.ts';
import type { DatabaseEvents } from '../db/faults.ts';
import { openPglite } from '../db/pglite.ts';
import { openPostgres } from '../db/postgres.ts';
import type { ServerDatabaseOptions } from '../db/types.ts';
import { mysqlSql, postgresSql } from './sql.ts';
import { type Store, createStore } from './store.ts';

type DatabaseConfig = Pick<
  Config,
  | 'backend'
  | 'databaseUrl'
  | 'dataDir'
  | 'databasePoolSize'
  | 'databaseConnectTimeoutMs'
  | 'databaseAcquireTimeoutMs'
  | 'databaseStatementTimeoutMs'
  | 'databaseIdleInTransactionTimeoutMs'
>;

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

/** PGlite in `dataDir` (in memory when undefined). */
export async function openPgliteStore(dataDir: string | undefined): Promise<Store> {
  return createStore(postgresSql(await openPglite(dataDir)));
}

export async function openPostgresStore(url: string, options: Partial<ServerDatabaseOptions> = {}): Promise<Store> {
  return createStore(postgresSql(await openPostgres(url, options)));
}

export async function openMysqlStore(url: string, options: Partial<ServerDatabaseOptions> = {}): Promise<Store> {
  // Loaded only when asked for, so the PostgreSQL paths never load the MySQL driver.
  const { openMysql } = await import('../db/mysql.ts');
  return createStore(mysqlSql(await openMysql(url, options)));
}

/** A server backend's DATABASE_URL: loadConfig sets the two together, a hand-made config may not. */
function urlOf(config: DatabaseConfig): string {
  if (config.databaseUrl === undefined) throw new Error(`the ${config.backend} backend needs a DATABASE_URL`);
  return config.databaseUrl;
}

/** Opens the database named by the config: PGlite in DATA_DIR, PostgreSQL, or MySQL. */
export async function openStore(config: DatabaseConfig, events?: DatabaseEvents): Promise<Store> {
  switch (config.backend) {
    case 'pglite':
      return openPgliteStore(config.dataDir);
    case 'postgres':
      return openPostgresStore(urlOf(config), serverOptions(config, events));
    case 'mysql':
      return openMysqlStore(urlOf(config), serverOptions(config, events));
  }
}
