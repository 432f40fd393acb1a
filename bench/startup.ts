// Start time: `node bin/box-office.js serve` (what `npm start` runs, without npm's own ~0.2 s)
// on a fresh, empty PGlite DATA_DIR, from spawn to the first /healthz 200, N times.
// `npx tsx bench/startup.ts [runs=5] [--npm] [--root=DIR]` (--npm: through `npm start` instead;
// --root: another checkout's build, to compare two in one session).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const viaNpm = args.includes('--npm');
const runs = Number(args.find((arg) => /^\d+$/.test(arg)) ?? 5);
const root = args.find((arg) => arg.startsWith('--root='))?.slice(7) ?? new URL('..', import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function once(): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'box-office-start-'));
  const port = await freePort();
  const started = performance.now();
  const child = spawn(viaNpm ? 'npm' : process.execPath, viaNpm ? ['start'] : ['bin/box-office.js', 'serve'], {
    cwd: root,
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true, // its own process group, so that npm's child goes too
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  try {
    for (;;) {
      if (exited) throw new Error('the server exited before answering /healthz');
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ok) return (performance.now() - started) / 1000;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    if (!exited) {
      process.kill(-child.pid!, 'SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const times: number[] = [];
for (let run = 1; run <= runs; run++) {
  const seconds = await once();
  times.push(seconds);
  console.log(`run ${run}: ${seconds.toFixed(2)} s`);
}
times.sort((a, b) => a - b);
const median = runs % 2 ? times[(runs - 1) / 2]! : (times[runs / 2 - 1]! + times[runs / 2]!) / 2;
console.log(`median of ${runs}: ${median.toFixed(2)} s (${viaNpm ? 'npm start' : 'node bin/box-office.js serve'})`);
