// Forward-only migrations for both dialects: numbered .sql files per dialect (migrations/),
// each applied once and recorded in schema_migrations; on PostgreSQL and PGlite each in its own
// transaction. It works on the shapes in types.ts, not on a driver, so the engines (and the
// PGlite template) can use it without importing each other.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MIGRATION_TIMEOUT_MS, type MysqlDatabase, type PgDatabase } from './types.ts';

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

const MIGRATION_LOCK_SECONDS = 60;

/**
 * Applies pending migrations; returns the names applied. Safe to run from several processes:
 * they take turns under GET_LOCK. MySQL commits DDL implicitly, so a migration is not one
 * transaction here as it is on PostgreSQL; our MySQL migrations are written to be re-runnable
 * (create table if not exists) so that one interrupted halfway completes on the next run.
 */
export async function migrateMysql(db: MysqlDatabase): Promise<string[]> {
  return db.session(async (conn) => {
    // GET_LOCK names are server-wide, not per database, and at most 64 characters on MySQL:
    // hash the database name into the lock name so separate databases migrate independently.
    const [{ name }] = (await conn.rows<{ name: string | null }>('select database() as name')) as [
      { name: string | null },
    ];
    if (name === null) throw new Error('the MySQL URL must name a database');
    const lock = `box_office_migrate:${createHash('sha1').update(name).digest('hex')}`;
    const [{ got }] = (await conn.rows<{ got: number | null }>('select get_lock(?, ?) as got', [
      lock,
      MIGRATION_LOCK_SECONDS,
    ])) as [{ got: number | null }];
    if (got !== 1) throw new Error(`timed out waiting for the migration lock on ${name}`);
    try {
      await conn.write(
        `create table if not exists schema_migrations (
           version integer primary key,
           name varchar(255) not null,
           applied_at datetime(3) not null default current_timestamp(3)
         ) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin`,
      );
      const seen = await conn.rows<{ version: number }>('select version from schema_migrations');
      const done = new Set(seen.map((row) => row.version));
      const applied: string[] = [];
      for (const migration of loadMigrations('mysql')) {
        if (done.has(migration.version)) continue;
        for (const statement of splitStatements(migration.sql)) await conn.write(statement);
        await conn.write('insert into schema_migrations (version, name) values (?, ?)', [
          migration.version,
          migration.name,
        ]);
        applied.push(migration.name);
      }
      return applied;
    } finally {
      await conn.rows('select release_lock(?)', [lock]);
    }
  });
}

/** Splits a migration file on semicolons that end a line; our migrations keep to that. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((statement) => statement.replace(/^\s*--.*$/gm, '').trim())
    .filter((statement) => statement.length > 0);
}
