import type { Config } from '../config.ts';
import { openPglite, openPostgres } from '../db/postgres.ts';
import { postgresStore } from './postgres.store.ts';
import type { Store } from './store.ts';

/** Opens the database named by the config: PGlite in DATA_DIR, PostgreSQL, or MySQL. */
export async function openStore(
  config: Pick<Config, 'backend' | 'databaseUrl' | 'dataDir' | 'databasePoolSize'>,
): Promise<Store> {
  switch (config.backend) {
    case 'pglite':
      return postgresStore(await openPglite(config.dataDir));
    case 'postgres':
      return postgresStore(await openPostgres(config.databaseUrl!, config.databasePoolSize));
    case 'mysql': {
      // Loaded only when asked for, so the PostgreSQL paths never load the MySQL driver.
      const { openMysqlStore } = await import('./mysql.store.ts');
      return openMysqlStore(config.databaseUrl!, config.databasePoolSize);
    }
  }
}
