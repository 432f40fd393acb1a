// The console's pages and assets as served: the same security headers as the API, nothing the
// content security policy would block (no inline script, no inline handler), labelled form
// controls, compressed and revalidated assets, and the JavaScript budget. The pages at work in
// a real browser are in browser.test.ts.
import assert from 'node:assert/strict';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { consoleAssets, encoded } from '../src/console/console.routes.ts';
import {
  PAGE_SECURITY_HEADERS,
  contractHarness,
  contractTest,
  installContractCheck,
  isProblem,
} from './support/contract.ts';
import { type Harness, backends } from './support/helpers.ts';

installContractCheck();

/** Compressed JavaScript a page may load, all modules together. */
const JS_BUDGET_BYTES = 100 * 1024;
const PAGES = { '/': 'index.html', '/console/events/1': 'event.html', '/buy': 'buy.html' };

/** The modules a page loads: its entry scripts and everything they import, transitively. */
function moduleGraph(html: string, files: Map<string, { identity: Buffer }>): string[] {
  const pending = [...html.matchAll(/<script[^>]*\ssrc="\/(assets\/[^"]+)"/g)].map((match) => match[1]!);
  const seen = new Set<string>();
  while (pending.length > 0) {
    const path = pending.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const source = files.get(path);
    assert.ok(source, `${path} is served`);
    for (const [, imported] of source.identity.toString().matchAll(/\bfrom '\.\/([^']+)'/g)) {
      pending.push(`assets/${imported}`);
    }
  }
  return [...seen];
}

describe('the console as served', () => {
  let h: Harness & { close: () => Promise<void> };
  before(async () => {
    h = await contractHarness(backends()[0]!);
  });
  after(() => h.close());

  test('each page is HTML with the security headers and a policy that allows only its own scripts', async () => {
    for (const url of [...Object.keys(PAGES), '/console']) {
      const res = await h.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
      for (const header of PAGE_SECURITY_HEADERS) assert.ok(res.headers[header], `${url}: ${header}`);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /script-src-attr 'none'/);
      assert.equal(res.headers['cache-control'], 'no-cache');
    }
  });

  test('no inline script, inline handler or inline style; every control is labelled', async () => {
    for (const url of Object.keys(PAGES)) {
      const html = (await h.app.inject({ method: 'GET', url })).body;
      for (const script of html.matchAll(/<script\b[^>]*>/g)) assert.match(script[0], /\ssrc="\/assets\//, url);
      assert.doesNotMatch(html, /\son[a-z]+=/i, `${url}: inline event handler`);
      assert.doesNotMatch(html, /\sstyle=/i, `${url}: inline style`);
      assert.doesNotMatch(html, /javascript:/i);
      for (const control of html.matchAll(/<(input|select|textarea)\b[^>]*>/g)) {
        const id = /\sid="([^"]+)"/.exec(control[0])?.[1];
        const labelled =
          /\saria-label(ledby)?=/.test(control[0]) || (id !== undefined && html.includes(`<label for="${id}"`));
        assert.ok(labelled, `${url}: ${control[0]} has no label`);
      }
      for (const asset of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
        assert.equal((await h.app.inject({ method: 'GET', url: asset[1]! })).statusCode, 200, asset[1]);
      }
    }
  });

  test('assets come compressed as the client allows, and revalidate to 304', async () => {
    const identity = await h.app.inject({ method: 'GET', url: '/assets/api.js' });
    assert.equal(identity.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(identity.headers['content-encoding'], undefined);
    assert.equal(identity.headers.vary, 'accept-encoding');

    const br = await h.app.inject({ method: 'GET', url: '/assets/api.js', headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(br.rawPayload).toString(), identity.body);
    const gzip = await h.app.inject({
      method: 'GET',
      url: '/assets/api.js',
      headers: { 'accept-encoding': 'gzip, br;q=0' },
    });
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gzip.rawPayload).toString(), identity.body);
    assert.notEqual(br.headers.etag, gzip.headers.etag, 'each encoding has its own validator');

    const again = await h.app.inject({
      method: 'GET',
      url: '/assets/api.js',
      headers: { 'accept-encoding': 'br', 'if-none-match': String(br.headers.etag) },
    });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    assert.ok(again.headers['content-security-policy']);
    assert.equal((await h.app.inject({ method: 'HEAD', url: '/buy' })).statusCode, 200);
  });

  test('only files of web/ are served; anything else is a problem+json 404', async () => {
    for (const url of [
      '/assets/nope.js',
      '/assets/../package.json',
      '/assets/..%2Fpackage.json',
      '/assets/%2e%2e/src/app.ts',
      '/assets/',
      '/index.html',
    ]) {
      isProblem(await h.app.inject({ method: 'GET', url }), 404, 'not_found');
    }
  });

  test("the queue's modules load with the pages that need them, under the same policy", async () => {
    const files = await consoleAssets();
    const graph = (file: string) => moduleGraph(files.get(file)!.identity.toString(), files);
    const wanted = {
      'event.html': ['assets/queue-panel.js', 'assets/sale-form.js'],
      'buy.html': ['assets/waiting-room.js'],
    };
    for (const [file, modules] of Object.entries(wanted)) {
      for (const module of modules) assert.ok(graph(file).includes(module), `${file} loads ${module}`);
    }
    for (const module of Object.values(wanted).flat()) {
      const res = await h.app.inject({ method: 'GET', url: `/${module}` });
      assert.equal(res.statusCode, 200, module);
      assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
      assert.match(String(res.headers['content-security-policy']), /script-src 'self'/);
      // Elements are built with dom.js's h(): no markup from the server's data is ever parsed.
      assert.doesNotMatch(res.body, /innerHTML|insertAdjacentHTML|document\.write/, module);
    }
  });

  test(`each page loads at most ${JS_BUDGET_BYTES / 1024} KB of compressed JavaScript`, async (t) => {
    const files = await consoleAssets();
    for (const [url, file] of Object.entries(PAGES)) {
      const modules = moduleGraph(files.get(file)!.identity.toString(), files);
      const brotli = modules.reduce((sum, path) => sum + encoded(files.get(path)!, 'br').length, 0);
      const gzip = modules.reduce((sum, path) => sum + encoded(files.get(path)!, 'gzip').length, 0);
      t.diagnostic(`${url}: ${modules.length} modules, ${gzip} bytes gzip, ${brotli} bytes brotli`);
      assert.ok(gzip <= JS_BUDGET_BYTES, `${url}: ${gzip} bytes of gzipped JavaScript`);
    }
  });
});

contractTest();
