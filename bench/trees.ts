// The checkouts of the service a benchmark measures side by side (--tree, --compare): this
// checkout and others, e.g. a `git worktree` of an older commit (or `bench/tree.sh COMMIT`), each
// with its own node_modules and dist/. The load generator, the ceiling and the books check are
// always this checkout's bench; only the server under test comes from the tree:
//   bench  the tree has bench/server.ts: run it with tsx in the tree (its sources, its bench-only
//          routes: recount for the books check, transaction stats)
//   compiled  otherwise `node <tree>/bin/box-office.js serve` (its dist/): the service only, so
//          the books are checked through GET /events/:id alone
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { MigrateCommand } from './databases.ts';

export type TreeMode = 'bench' | 'compiled';

export interface Tree {
  label: string;
  dir: string;
  mode: TreeMode;
  /** This checkout (the one the bench runs from). */
  self: boolean;
  commit: string;
  /** src/ differs from the commit (uncommitted changes). */
  srcDirty: boolean;
}

export interface TreeSpec {
  label: string | undefined;
  dir: string;
}

/** `[LABEL=]DIR`. */
export function parseTreeSpec(raw: string): TreeSpec {
  const at = raw.indexOf('=');
  if (at > 0 && !raw.slice(0, at).includes('/')) return { label: raw.slice(0, at), dir: raw.slice(at + 1) };
  return { label: undefined, dir: raw };
}

/** Which commit a tree is, and whether its src/ has uncommitted changes. */
export function codeVersion(dir: string): { commit: string; srcDirty: boolean } {
  // A tree made by bench/tree.sh is exactly one commit.
  const marker = join(dir, '.bench-commit');
  if (existsSync(marker)) return { commit: readFileSync(marker, 'utf8').trim(), srcDirty: false };
  const git = (...args: string[]) => spawnSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).stdout?.trim() ?? '';
  return { commit: git('rev-parse', 'HEAD') || 'unknown', srcDirty: git('status', '--porcelain', '--', 'src') !== '' };
}

function modeOf(dir: string, self: boolean): TreeMode {
  if (self) return 'bench';
  if (!existsSync(join(dir, 'node_modules')))
    throw new Error(`tree ${dir} has no node_modules (npm ci there, or bench/tree.sh)`);
  if (existsSync(join(dir, 'bench', 'server.ts'))) return 'bench';
  if (existsSync(join(dir, 'bin', 'box-office.js')) && existsSync(join(dir, 'dist', 'cli.js'))) return 'compiled';
  throw new Error(`tree ${dir} has neither bench/server.ts nor a built bin/box-office.js (npm run build there)`);
}

/** Resolves the trees in measuring order; labels made unique. */
export function resolveTrees(specs: Array<TreeSpec & { self?: boolean }>): Tree[] {
  const used = new Set<string>();
  return specs.map((spec) => {
    const dir = resolve(spec.dir);
    if (!existsSync(dir)) throw new Error(`tree ${spec.dir} does not exist`);
    const self = spec.self === true;
    let label = spec.label ?? (self ? 'this' : basename(dir));
    for (let n = 2; used.has(label); n++) label = `${spec.label ?? basename(dir)}-${n}`;
    used.add(label);
    return { label, dir, mode: modeOf(dir, self), self, ...codeVersion(dir) };
  });
}

/** How the tree migrates a fresh PGlite DATA_DIR before its server opens it. */
export function migrateCommand(tree: Tree, scratchDir: string): MigrateCommand {
  if (tree.mode === 'bench' && existsSync(join(tree.dir, 'src', 'cli.ts')))
    return { args: ['--import', 'tsx', 'src/cli.ts', 'migrate'], cwd: tree.dir };
  // The compiled command reads a .env in its working directory; the bench's settings must not
  // depend on one, so it runs elsewhere.
  return { args: [join(tree.dir, 'bin', 'box-office.js'), 'migrate'], cwd: scratchDir };
}
