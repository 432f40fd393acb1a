// Helpers for the browser tests: Debian's Chromium driven by playwright-core, and the app on
// PGlite listening on a real port. The app runs on the system clock, because the pages count
// down against the browser's own clock; a test that needs a hold to expire sets a short
// HOLD_TTL_SECONDS and waits for it, as a buyer would.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { type App, buildApp } from '../../src/app.ts';
import { systemClock } from '../../src/clock.ts';
import type { Store } from '../../src/storage/store.ts';
import { backends, testConfig } from './helpers.ts';

/** Debian's Chromium; CHROMIUM_PATH points elsewhere (CI points it away to prove the skip). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false when they can. */
export const chromiumMissing: string | false = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing, so the browser tests are skipped (apt-get install -y chromium)`;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface Served {
  base: string;
  app: App;
  store: Store;
  /** The API over HTTP, as another client would use it; throws unless the status is 2xx. */
  call<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  close(): Promise<void>;
}

/** The app on a fresh in-memory PGlite, on 127.0.0.1 and a free port. */
export async function serve(env: Record<string, string> = {}): Promise<Served> {
  const pglite = backends().find((backend) => backend.name === 'pglite') ?? backends()[0]!;
  const { store, drop } = await pglite.open();
  const app = await buildApp({ config: testConfig(env), store, clock: systemClock });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    app,
    store,
    async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return (text === '' ? null : JSON.parse(text)) as T;
    },
    async close() {
      await app.close();
      await store.close();
      await drop();
    },
  };
}

/**
 * The status GET /events/:id/stream answers; the request is dropped as soon as the status is
 * known, since a stream never ends.
 */
export async function streamStatus(base: string, eventId: number): Promise<number> {
  const abort = new AbortController();
  try {
    const res = await fetch(`${base}/events/${eventId}/stream`, {
      headers: { accept: 'text/event-stream' },
      signal: abort.signal,
    });
    return res.status;
  } finally {
    abort.abort();
  }
}

/**
 * What a page did wrong while a test used it: uncaught errors, and anything the content
 * security policy refused. Failed API calls are the pages' business (they show them) and are
 * not collected.
 */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`policy: ${message.text()}`);
  });
  page.on('dialog', (dialog) => void dialog.accept());
  page.setDefaultTimeout(10_000);
  return problems;
}

/** Where screenshots go: SCREENSHOT_DIR (npm run screenshots sets docs/screenshots), else a temp dir. */
export function screenshotPath(name: string): string {
  const dir = process.env.SCREENSHOT_DIR ?? join(tmpdir(), 'box-office-screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
