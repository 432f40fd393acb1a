// Forward-only migrations: numbered .sql files per dialect, each applied once in its own
// transaction and recorded in schema_migrations.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MIGRATION_TIMEOUT_MS } from './breaker.ts';
import type { PgDatabase } from './postgres.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dialect: 'postgres' | 'mysql'): Migration[] {
  const dir = fileURLToPath(new URL(`./migrations/${dialect}/`, import.meta.url));
  const migrations = readdirSync(dir)
    .filter((file) => /^\d+_.+\.sql$/.test(file))
    .sort()
    .map((file) => ({
      version: Number(file.split('_')[0]),
      name: file,
      sql: readFileSync(`${dir}${file}`, 'utf8'),
    }));
  // Two branches can each add the next number under different names, and git merges them
  // without a conflict; one would then be skipped silently as "already applied".
  migrations.forEach((migration, i) => {
    if (migrations[i - 1]?.version === migration.version) {
      throw new Error(`${migrations[i - 1]!.name} and ${migration.name} share version ${migration.version}`);
    }
  });
  return migrations;
}

// Any constant works; it only has to be the same in every process migrating this database.
const MIGRATION_LOCK_ID = 4_242_001;

/** Applies pending migrations; returns the names applied. Safe to run from several processes. */
export async function migratePostgres(db: PgDatabase): Promise<string[]> {
  await db.query(
    `create table if not exists schema_migrations (
       version integer primary key, name text not null, applied_at timestamptz not null default now())`,
  );
  // Usually everything is applied already (and always on a database copied from the PGlite
  // template): one read then, instead of a locked transaction per migration.
  const seen = await db.query<{ version: number }>('select version from schema_migrations');
  const known = new Set(seen.rows.map((row) => row.version));
  const applied: string[] = [];
  for (const migration of loadMigrations('postgres')) {
    if (known.has(migration.version)) continue;
    const done = await db.transaction(
      async (tx) => {
        await tx.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
        const seen = await tx.query('select 1 from schema_migrations where version = $1', [migration.version]);
        if (seen.rows.length > 0) return false;
        for (const statement of splitStatements(migration.sql)) await tx.query(statement);
        await tx.query('insert into schema_migrations (version, name) values ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        return true;
      },
      { timeoutMs: MIGRATION_TIMEOUT_MS },
    );
    if (done) applied.push(migration.name);
  }
  return applied;
}

/** Splits a migration file on semicolons that end a line; our migrations keep to that. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((statement) => statement.replace(/^\s*--.*$/gm, '').trim())
    .filter((statement) => statement.length > 0);
}
