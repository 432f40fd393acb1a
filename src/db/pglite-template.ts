// A migrated PGlite database made once and copied, instead of initialising each one from
// scratch. PGlite's own start runs initdb in WebAssembly, about 6 s on our 2-core box, every
// time a fresh DATA_DIR (or a test's in-memory database) is opened; copying a ready data
// directory and opening it takes under 1 s, and loading the same directory from a tarball
// into memory about 1 s.
//
// The template is made by `npm run build` (so the first `npm start` does not pay for it) or on
// first use, under node_modules/.cache, named by a hash of the PGlite version and the
// migrations: change either and a new template is made. Two processes making it at once is
// harmless: each builds its own and the first rename wins.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { loadMigrations } from './migrate.ts';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PgliteTemplate {
  /** A migrated PGlite data directory, to copy into an empty DATA_DIR. */
  dir: string;
  /** The same, as a gzipped tarball, for PGlite's loadDataDir (in-memory databases). */
  tarball: string;
}

function templatePaths(): PgliteTemplate {
  // The package does not export its package.json; it sits above its dist/ entry point.
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const pgliteVersion = (
    JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }
  ).version;
  const hash = createHash('sha256').update(pgliteVersion);
  for (const migration of loadMigrations('postgres')) hash.update(migration.name).update(migration.sql);
  const dir = join(PACKAGE_ROOT, 'node_modules', '.cache', 'box-office', `pglite-${hash.digest('hex').slice(0, 16)}`);
  return { dir, tarball: `${dir}.tar.gz` };
}

/** The template, made now if it does not exist yet. */
export async function pgliteTemplate(migrate: (db: PGlite) => Promise<void>): Promise<PgliteTemplate> {
  const paths = templatePaths();
  if (existsSync(join(paths.dir, 'PG_VERSION')) && existsSync(paths.tarball)) return paths;
  mkdirSync(dirname(paths.dir), { recursive: true });
  const building = `${paths.dir}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  const db = new PGlite({ dataDir: building });
  try {
    await db.waitReady;
    await migrate(db);
    const dump = await db.dumpDataDir('gzip');
    writeFileSync(`${building}.tar.gz`, Buffer.from(await dump.arrayBuffer()));
  } finally {
    await db.close();
  }
  try {
    renameSync(`${building}.tar.gz`, paths.tarball);
    renameSync(building, paths.dir);
  } catch (error) {
    // Another process published it first; ours is the same, so drop it.
    if (!existsSync(join(paths.dir, 'PG_VERSION'))) throw error;
  } finally {
    rmSync(building, { recursive: true, force: true });
    rmSync(`${building}.tar.gz`, { force: true });
  }
  return paths;
}

/** The template's tarball, as PGlite's loadDataDir takes it. */
export function readTarball(template: PgliteTemplate): Blob {
  return new Blob([readFileSync(template.tarball)]);
}
