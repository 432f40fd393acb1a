// The `box-office` command as a user runs it: config errors, migrate, sweep, and serve with a
// graceful SIGTERM. Runs on PGlite in a temporary DATA_DIR.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const BIN = join(import.meta.dirname, '..', 'bin', 'box-office.js');

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitForListening(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk) => {
      buffer += chunk;
      const match = /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/.exec(buffer);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited early with ${code}: ${buffer}`)));
  });
}

// The command runs on PGlite: skipped when this run leaves PGlite out (CI's second pass, which
// reruns only the suites of the server backends).
const pgliteSkipped =
  process.env.TEST_BACKENDS !== undefined && !process.env.TEST_BACKENDS.split(',').includes('pglite');

describe('box-office command', { skip: pgliteSkipped ? 'TEST_BACKENDS leaves PGlite out' : false }, () => {
  let dataDir: string;
  let env: Record<string, string>;
  before(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'box-office-cli-'));
    env = { DATA_DIR: dataDir, LOG_LEVEL: 'info', NODE_ENV: 'test', DATABASE_URL: '' };
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  test('a bad configuration stops it with every bad variable named', async () => {
    const result = await run(['serve'], { ...env, PORT: 'x', HOLD_TTL_SECONDS: '-1' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /PORT/);
    assert.match(result.stderr, /HOLD_TTL_SECONDS/);
  });

  test('production without ADMIN_TOKEN refuses to start', async () => {
    const result = await run(['serve'], { ...env, NODE_ENV: 'production' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /ADMIN_TOKEN/);
  });

  test('a fresh DATA_DIR starts as a copy of the migrated template: migrate finds it up to date', async () => {
    const first = await run(['migrate'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /up to date/);
    const second = await run(['migrate'], env);
    assert.equal(second.code, 0);
    assert.match(second.stdout, /up to date/);
  });

  test('sweep runs one pass and prints the count', async () => {
    const result = await run(['sweep'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\{"expired":0[,}]/);
  });

  test('serve answers requests, logs JSON with request ids, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1' },
    });
    const port = await waitForListening(child);
    let logs = '';
    child.stdout.on('data', (chunk) => (logs += chunk));
    const created = await fetch(`http://127.0.0.1:${port}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'cli-test-1' },
      body: JSON.stringify({ event: { name: 'CLI', total_seats: 2 } }),
    });
    assert.equal(created.status, 201);
    // The compiled service serves the console's pages and scripts from web/ too.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/assets\/events-page\.js">/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/assets/events-page.js`)).status, 200);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const lines = logs
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.ok(
      lines.some((line) => line.reqId === 'cli-test-1'),
      'request logs carry the request id',
    );
    assert.ok(lines.some((line) => line.msg === 'shutting down'));
  });

  test('one process owns a PGlite DATA_DIR: a second one is refused with the owner named; the port taken is one line', async () => {
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1' },
    });
    const port = await waitForListening(child);
    try {
      const worker = await run(['worker'], env);
      assert.equal(worker.code, 1);
      assert.match(worker.stderr, new RegExp(`in use by process ${child.pid}`));
      assert.doesNotMatch(worker.stderr, /\n\s+at /, 'no stack trace');
      // The owner is unharmed and still serves.
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
      // Another process with its own DATA_DIR, on the port the first one has.
      const other = mkdtempSync(join(tmpdir(), 'box-office-cli-'));
      try {
        const taken = await run(['serve'], { ...env, DATA_DIR: other, PORT: String(port), HOST: '127.0.0.1' });
        assert.equal(taken.code, 1);
        assert.match(taken.stderr, new RegExp(`port ${port} on 127.0.0.1 is already in use`));
        assert.doesNotMatch(taken.stderr, /\n\s+at /, 'no stack trace');
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    } finally {
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    // Released on exit: the next process may open it.
    const sweep = await run(['sweep'], env);
    assert.equal(sweep.code, 0, sweep.stderr);
  });

  test('--version prints the version from package.json', async () => {
    const result = await run(['--version'], env);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('unknown commands print usage and fail', async () => {
    const result = await run(['dance'], env);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /usage: box-office/);
  });
});
