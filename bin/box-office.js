#!/usr/bin/env node
// The `box-office` command: the compiled service in dist/, which `npm ci` builds (the `prepare`
// script) and `npm run build` rebuilds. `npm run dev` runs the TypeScript sources instead.
import { existsSync } from 'node:fs';

// Settings in a .env file in the working directory (see .env.example) apply, under any already
// set in the environment.
if (existsSync('.env')) process.loadEnvFile('.env');

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('box-office: dist/ is missing; run `npm run build` (npm ci runs it for you)');
  process.exit(1);
}
await import(entry.href);
