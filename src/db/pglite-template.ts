// A migrated PGlite database made once and copied, instead of initialising each one from
// scratch. PGlite's own start runs initdb in WebAssembly, about 6 s on our 2-core box, every
// time a fresh DATA_DIR (or a test's in-memory database) is opened; copying a ready data
// directory and opening it takes under 1 s, and loading the same directory from a tarball
// into memory about 1 s.
//
// The template is made by `npm run build` (so the first `npm start` does not pay for it) or on
// first use, under node_modules/.cache, named by a hash of the PGlite version, the template's
// format and the migrations: change any of them and a new template is made. Two processes
// making it at once is harmless: each builds its own and the first rename wins.
//
// It is kept small, because copying it is most of a fresh start (issue 16): initdb's
// template0 and template1 databases are dropped (PGlite uses only `postgres`), the WAL is
// switched to a new segment after a checkpoint so that the old one, with all of initdb's WAL,
// can go, and the one segment left is stored without its zero tail (16 MB on disk, a few KB of
// it written): the copy writes what there is and extends it to its full size, which reads as
// the same zeros. About 8 MB to copy instead of 39 MB.
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { loadMigrations } from './migrate.ts';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Part of the template's name: change it when what a template holds changes. */
const TEMPLATE_FORMAT = 'slim-1';
/** A WAL segment's file name: timeline, then segment number. */
const WAL_SEGMENT = /^[0-9A-F]{24}$/;
const PAGE_BYTES = 8192;

export interface PgliteTemplate {
  /**
   * A migrated PGlite data directory, its WAL segments stored short: copy it with
   * copyTemplate, which gives them back their size.
   */
  dir: string;
  /** The same, as a gzipped tarball, for PGlite's loadDataDir (in-memory databases). */
  tarball: string;
  /** `{ walSegmentBytes }`, published last: the template is complete when it exists. */
  manifest: string;
}

interface Manifest {
  walSegmentBytes: number;
}

function templatePaths(): PgliteTemplate {
  // The package does not export its package.json; it sits above its dist/ entry point.
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const pgliteVersion = (
    JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }
  ).version;
  const hash = createHash('sha256').update(pgliteVersion).update(TEMPLATE_FORMAT);
  for (const migration of loadMigrations('postgres')) hash.update(migration.name).update(migration.sql);
  const dir = join(PACKAGE_ROOT, 'node_modules', '.cache', 'box-office', `pglite-${hash.digest('hex').slice(0, 16)}`);
  return { dir, tarball: `${dir}.tar.gz`, manifest: `${dir}.json` };
}

function complete(paths: PgliteTemplate): boolean {
  return existsSync(paths.manifest) && existsSync(join(paths.dir, 'PG_VERSION')) && existsSync(paths.tarball);
}

/** The template, made now if it does not exist yet. */
export async function pgliteTemplate(migrate: (db: PGlite) => Promise<void>): Promise<PgliteTemplate> {
  const paths = templatePaths();
  if (complete(paths)) return paths;
  mkdirSync(dirname(paths.dir), { recursive: true });
  const building = `${paths.dir}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  try {
    const db = new PGlite({ dataDir: building });
    try {
      await db.waitReady;
      await migrate(db);
      await slim(db);
    } finally {
      await db.close();
    }
    dropRecycledWal(building);
    // Opening the slim directory again checks that it is whole, and gives the tarball.
    const reopened = new PGlite({ dataDir: building });
    try {
      await reopened.waitReady;
      const dump = await reopened.dumpDataDir('gzip');
      writeFileSync(`${building}.tar.gz`, Buffer.from(await dump.arrayBuffer()));
    } finally {
      await reopened.close();
    }
    dropRecycledWal(building);
    const manifest: Manifest = { walSegmentBytes: shortenWal(building) };
    writeFileSync(`${building}.json`, JSON.stringify(manifest));
    renameSync(`${building}.tar.gz`, paths.tarball);
    renameSync(`${building}.json`, paths.manifest);
    renameSync(building, paths.dir);
  } catch (error) {
    // Another process published it first; ours is the same, so drop it.
    if (!complete(paths)) throw error;
  } finally {
    rmSync(building, { recursive: true, force: true });
    rmSync(`${building}.tar.gz`, { force: true });
    rmSync(`${building}.json`, { force: true });
  }
  return paths;
}

/**
 * Drops what a fresh database does not need: initdb's template databases (PGlite connects to
 * `postgres`; nothing here creates databases), and the WAL written so far, by starting a new
 * segment and checkpointing, after which the old one is recycled (dropRecycledWal).
 */
async function slim(db: PGlite): Promise<void> {
  for (const name of ['template1', 'template0']) {
    await db.exec(`ALTER DATABASE ${name} IS_TEMPLATE false`);
    await db.exec(`DROP DATABASE ${name}`);
  }
  await db.exec('CHECKPOINT');
  await db.query('SELECT pg_switch_wal()');
  await db.exec('CHECKPOINT');
}

function walSegments(dataDir: string): string[] {
  return readdirSync(join(dataDir, 'pg_wal'))
    .filter((name) => WAL_SEGMENT.test(name))
    .sort();
}

/**
 * After a checkpoint, the segments before the one it is in have been removed or renamed ahead
 * for reuse: only the first segment holds WAL, the later ones are old files PostgreSQL will
 * write over. Remove those; it makes new segments as it needs them.
 */
function dropRecycledWal(dataDir: string): void {
  for (const name of walSegments(dataDir).slice(1)) rmSync(join(dataDir, 'pg_wal', name));
}

/** Cuts the zero tail off each WAL segment (PostgreSQL fills new ones with zeros); returns their size. */
function shortenWal(dataDir: string): number {
  let segmentBytes: number | undefined;
  for (const name of walSegments(dataDir)) {
    const path = join(dataDir, 'pg_wal', name);
    const bytes = readFileSync(path);
    if (segmentBytes !== undefined && bytes.length !== segmentBytes) throw new Error(`WAL segments of two sizes`);
    segmentBytes = bytes.length;
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    truncateSync(path, Math.ceil(end / PAGE_BYTES) * PAGE_BYTES);
  }
  if (segmentBytes === undefined) throw new Error('the PGlite template has no WAL segment');
  return segmentBytes;
}

/**
 * Copies the template into `dataDir`, empty or left half-copied by a start that died: its files,
 * then each WAL segment extended to its full size (the tail reads as zeros, as it was), then
 * PG_VERSION, last, so that a copy cut short is not taken for a database and is done again.
 */
export function copyTemplate(template: PgliteTemplate, dataDir: string): void {
  const { walSegmentBytes } = JSON.parse(readFileSync(template.manifest, 'utf8')) as Manifest;
  copyTree(template.dir, dataDir, 'PG_VERSION');
  for (const name of walSegments(dataDir)) truncateSync(join(dataDir, 'pg_wal', name), walSegmentBytes);
  copyFileSync(join(template.dir, 'PG_VERSION'), join(dataDir, 'PG_VERSION'));
}

/** fs.cp, without its per-file stat and chmod round trips through the thread pool (~4x faster here). */
function copyTree(from: string, to: string, except?: string): void {
  mkdirSync(to, { recursive: true, mode: statSync(from).mode & 0o777 });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.name === except) continue;
    if (entry.isDirectory()) copyTree(join(from, entry.name), join(to, entry.name));
    else copyFileSync(join(from, entry.name), join(to, entry.name));
  }
}

/** The template's tarball, as PGlite's loadDataDir takes it. */
export function readTarball(template: PgliteTemplate): Blob {
  return new Blob([readFileSync(template.tarball)]);
}
