// Embedded PGlite, the default engine: PostgreSQL compiled to WebAssembly, in this process,
// persisted in DATA_DIR (or in memory). It speaks the same dialect as a PostgreSQL server
// (postgres.ts) behind the same `PgDatabase`, so the store above does not know which it has.
// One connection and no network: none of the server's faults, pool or failover apply.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.ts';
import { migratePostgres } from './migrate.ts';
import { copyTemplate, pgliteTemplate, readTarball } from './pglite-template.ts';
import { PG_NUMBER_PARSERS, type PgDatabase, type SqlRunner } from './types.ts';

export async function openPglite(dataDir: string | undefined): Promise<PgDatabase> {
  // A fresh database starts as a copy of a migrated template (see pglite-template.ts): PGlite's
  // own initdb takes seconds.
  const template = await pgliteTemplate(async (fresh) => {
    await migratePostgres(wrapPglite(fresh, async () => {}));
  });
  // PGlite is one process's memory over files: a second process on the same files corrupts
  // them (WASM aborts, holds expired twice). The lock makes the second one fail at once.
  let unlock = () => {};
  if (dataDir !== undefined) {
    mkdirSync(dataDir, { recursive: true });
    unlock = lockDataDir(dataDir);
    if (!existsSync(join(dataDir, 'PG_VERSION'))) copyTemplate(template, dataDir);
  }
  let db: PGlite;
  try {
    db = new PGlite({
      ...(dataDir === undefined ? { loadDataDir: readTarball(template) } : { dataDir }),
      parsers: PG_NUMBER_PARSERS,
    });
    await db.waitReady;
  } catch (error) {
    unlock();
    throw error;
  }
  return wrapPglite(db, async () => {
    try {
      await db.close();
    } finally {
      unlock();
    }
  });
}

function wrapPglite(db: PGlite, close: () => Promise<void>): PgDatabase {
  const wrap = (runner: Pick<PGlite, 'query'>): SqlRunner => ({
    async query<R>(sql: string, params: unknown[] = []) {
      const result = await runner.query<R>(sql, params);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  });
  const runner = wrap(db);
  return {
    engine: 'pglite',
    ...runner,
    write: (sql, params) => runner.query(sql, params),
    // PGlite has one connection; its transaction() holds it exclusively until commit.
    transaction: async (fn) => {
      // PGlite answers in microtasks, so without this a transaction runs to its commit before
      // the event loop reads another request: every hold batch held one request (~200 holds/s).
      // One turn of the event loop lets the requests that arrived meanwhile join the next batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      return db.transaction((tx) => fn(wrap(tx)));
    },
    exec: async (sql) => {
      await db.exec(sql);
    },
    listen: (channel, onMessage) => db.listen(channel, onMessage),
    close,
  };
}
