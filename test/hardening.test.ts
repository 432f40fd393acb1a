// OWASP API hardening, on each backend: tokens, strict bodies, rate limits, security headers,
// the OpenAPI document covering every response, and configuration.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type Socket, connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { BODY_DRAIN_LIMIT_BYTES, BODY_LIMIT_BYTES, MAX_JSON_DEPTH } from '../src/http/json-body.ts';
import { MAX_PARAM_LENGTH } from '../src/http/problem.handlers.ts';
import {
  PAGE_SECURITY_HEADERS,
  SECURITY_HEADERS,
  contractHarness,
  contractTest,
  contractViolation,
  installContractCheck,
  isProblem,
} from './support/contract.ts';
import { type Harness, backends, books, createEvent, hold } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };

const json = (app: App, method: 'POST' | 'PATCH', url: string, body: string, headers: Record<string, string> = {}) =>
  app.inject({ method, url, payload: body, headers: { 'content-type': 'application/json', ...headers } });

for (const backend of backends()) {
  describe(`hardening on ${backend.name}`, () => {
    let h: H;
    let eventId: number;
    let granted: { hold_id: number; payment_token: string };
    before(async () => {
      h = await contractHarness(backend);
      eventId = await createEvent(h.app, 20);
      granted = (await hold(h.app, eventId, 2)).json();
    });
    after(() => h.close());

    test('payment tokens: 192 random bits, stored only as SHA-256', async () => {
      assert.equal(Buffer.from(granted.payment_token, 'base64url').length, 24);
      const stored = (await h.store.findHold(granted.hold_id))!;
      assert.deepEqual(stored.paymentTokenHash, createHash('sha256').update(granted.payment_token).digest());
    });

    test('a token of the wrong length is 403 on every route that takes one, never a 500', async () => {
      const { hold_id: id } = granted;
      for (const token of [
        'x',
        'short',
        granted.payment_token.slice(1),
        `${granted.payment_token}=`,
        'y'.repeat(100),
        'z'.repeat(256),
      ]) {
        const header = { 'x-payment-token': token };
        isProblem(
          await h.app.inject({ method: 'GET', url: `/holds/${id}`, headers: header }),
          403,
          'invalid_payment_token',
        );
        isProblem(
          await h.app.inject({ method: 'DELETE', url: `/holds/${id}`, headers: header }),
          403,
          'invalid_payment_token',
        );
        isProblem(
          await json(h.app, 'POST', `/holds/${id}/extend`, '{"seconds":5}', header),
          403,
          'invalid_payment_token',
        );
        isProblem(
          await json(h.app, 'POST', '/book', JSON.stringify({ booking: { hold_id: id, payment_token: token } })),
          403,
          'invalid_payment_token',
        );
      }
      // Past the bound it is refused before any lookup.
      isProblem(
        await h.app.inject({ method: 'GET', url: `/holds/${id}`, headers: { 'x-payment-token': 'w'.repeat(257) } }),
        400,
        'validation_failed',
      );
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.held, b.booked, b.balanced], [2, 0, true]);
    });

    test('strict bodies: unknown fields, coerced types and out-of-bounds values are 400 on every body', async () => {
      const id = granted.hold_id;
      const cases: Array<[string, string, string]> = [
        ['POST', '/events', '{"event":{"name":"a","total_seats":1},"extra":1}'],
        ['POST', '/events', '{"event":{"name":"a","total_seats":"5"}}'],
        ['POST', '/events', `{"event":{"name":"${'n'.repeat(201)}","total_seats":1}}`],
        ['POST', '/events', '{"event":{"name":"a","total_seats":1000001}}'],
        ['POST', '/holds', `{"hold":{"event_id":${eventId},"qty":"5"}}`],
        ['POST', '/holds', `{"hold":{"event_id":"${eventId}","qty":1}}`],
        ['POST', '/holds', `{"hold":{"event_id":${eventId},"qty":1,"price":0}}`],
        ['POST', '/book', `{"booking":{"hold_id":${id},"payment_token":"t","qty":9}}`],
        ['POST', '/book', `{"booking":{"hold_id":${id},"payment_token":5}}`],
        ['POST', `/holds/${id}/extend`, '{"seconds":"5"}'],
        ['POST', `/holds/${id}/extend`, '{"seconds":5,"forever":true}'],
        ['POST', `/holds/${id}/extend`, '{"seconds":0}'],
        ['POST', `/holds/${id}/extend`, '{"seconds":1.5}'],
        ['PATCH', `/events/${eventId}`, '{"event":{"total_seats":"30"}}'],
        ['PATCH', `/events/${eventId}`, '{"event":{"name":"a"},"total_seats":30}'],
      ];
      for (const [method, url, body] of cases) {
        const headers: Record<string, string> = url.includes('/extend')
          ? { 'x-payment-token': granted.payment_token }
          : {};
        const res = await json(h.app, method as 'POST' | 'PATCH', url, body, headers);
        isProblem(res, 400, 'validation_failed');
        assert.ok(Array.isArray(res.json().errors) && res.json().errors.length > 0, `${url} ${body}`);
      }
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.total, b.held, b.balanced], [20, 2, true]);
    });

    test('bodies over 16 KiB are 413 and anything but JSON is 415, on every body route', async () => {
      const big = JSON.stringify({ pad: 'p'.repeat(16 * 1024) });
      const routes: Array<['POST' | 'PATCH', string]> = [
        ['POST', '/events'],
        ['POST', '/holds'],
        ['POST', '/book'],
        ['POST', `/holds/${granted.hold_id}/extend`],
        ['PATCH', `/events/${eventId}`],
      ];
      for (const [method, url] of routes) {
        isProblem(await json(h.app, method, url, big), 413, 'payload_too_large');
        for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
          isProblem(
            await h.app.inject({ method, url, payload: 'seconds=5', headers: { 'content-type': type } }),
            415,
            'unsupported_media_type',
          );
        }
      }
    });

    test('routes without a body still refuse non-JSON and malformed bodies, as documented', async () => {
      const url = `/holds/${granted.hold_id}`;
      const headers = { 'x-payment-token': granted.payment_token };
      isProblem(
        await h.app.inject({
          method: 'DELETE',
          url,
          payload: 'x',
          headers: { ...headers, 'content-type': 'text/plain' },
        }),
        415,
        'unsupported_media_type',
      );
      isProblem(
        await h.app.inject({
          method: 'DELETE',
          url,
          payload: '{',
          headers: { ...headers, 'content-type': 'application/json' },
        }),
        400,
        'malformed_json',
      );
      assert.equal((await books(h.store, eventId, h.clock.now())).held, 2);
    });

    test('rate limits are off in tests unless a test turns them on', async () => {
      const statuses = await Promise.all(
        Array.from({ length: 150 }, () => hold(h.app, eventId, 1).then((res) => res.statusCode)),
      );
      assert.ok(!statuses.includes(429));
    });

    test('security headers on every kind of response; API responses are never cached', async () => {
      const responses = [
        await h.app.inject({ method: 'GET', url: `/events/${eventId}` }),
        await hold(h.app, eventId, 1),
        await h.app.inject({ method: 'GET', url: '/nowhere' }),
        await json(h.app, 'POST', '/holds', '{'),
        await h.app.inject({ method: 'GET', url: '/openapi.json' }),
        await h.app.inject({ method: 'GET', url: '/docs/' }),
      ];
      for (const res of responses) {
        const page = String(res.headers['content-type']).startsWith('text/html');
        for (const header of page ? PAGE_SECURITY_HEADERS : SECURITY_HEADERS)
          assert.ok(res.headers[header] !== undefined, `${header} on ${res.statusCode}`);
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
        // Data is never a page: rendered by a browser it may load nothing and sit in no frame.
        if (!page) {
          assert.equal(res.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
          assert.equal(res.headers['x-frame-options'], 'DENY');
        }
      }
      assert.ok(
        responses.some((res) => String(res.headers['content-type']).startsWith('text/html')),
        'a page is checked',
      );
      assert.equal(responses[0]!.headers['cache-control'], 'no-store');
      assert.equal(responses[1]!.headers['cache-control'], 'no-store');
    });

    test('the interactive docs still load under the content security policy', async () => {
      const page = await h.app.inject({ method: 'GET', url: '/docs' });
      assert.equal(page.statusCode, 200);
      assert.ok(
        !/<script>(?!\s*<\/script>)|<script[^>]*>[^<\s]/.test(page.body),
        'no inline script for script-src self to block',
      );
      const csp = String(page.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /upgrade-insecure-requests/, 'plain-HTTP docs must not be upgraded');
      const assets = [...page.body.matchAll(/(?:src|href)="(\/docs\/static\/[^"]+)"/g)].map((match) => match[1]!);
      assert.ok(assets.length >= 5, 'the page loads its scripts and styles from /docs/static');
      for (const url of assets) assert.equal((await h.app.inject({ method: 'GET', url })).statusCode, 200, url);
      assert.equal((await h.app.inject({ method: 'GET', url: '/docs/json' })).statusCode, 200);
    });

    test('the OpenAPI document covers every response: problems, idempotency, rate limits', async () => {
      const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      for (const [path, operations] of Object.entries<
        Record<
          string,
          { responses: Record<string, { content?: object }>; parameters?: Array<{ name: string; in: string }> }
        >
      >(doc.paths)) {
        for (const [method, operation] of Object.entries(operations)) {
          const where = `${method.toUpperCase()} ${path}`;
          assert.ok(operation.responses['500'] && operation.responses['503'], `${where} documents 500 and 503`);
          for (const [status, response] of Object.entries(operation.responses)) {
            if (Number(status) >= 400)
              assert.deepEqual(Object.keys(response.content ?? {}), ['application/problem+json'], `${where} ${status}`);
          }
          if (['post', 'patch', 'delete'].includes(method)) {
            assert.ok(
              operation.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key'),
              `${where} Idempotency-Key`,
            );
            for (const status of ['400', '409', '413', '415', '422'])
              assert.ok(operation.responses[status], `${where} ${status}`);
          }
        }
      }
      for (const path of ['/holds', '/book']) assert.ok(doc.paths[path].post.responses['429'], `${path} documents 429`);
    });

    test('the contract check itself catches an undocumented status and a wrong body', async () => {
      const response = {
        method: 'GET',
        route: '/events/:id',
        type: 'application/json',
        headers: Object.fromEntries(SECURITY_HEADERS.map((name) => [name, 'x'])),
      };
      assert.match(
        String(contractViolation(h.app, { ...response, status: 418, payload: '{}' })),
        /status not documented/,
      );
      assert.match(String(contractViolation(h.app, { ...response, status: 200, payload: '{"event_id":"1"}' })), /must/);
      assert.match(
        String(contractViolation(h.app, { ...response, status: 404, payload: '{}' })),
        /content type application\/json not documented/,
      );
      assert.match(
        String(contractViolation(h.app, { ...response, headers: {}, status: 200, payload: '{}' })),
        /no content-security-policy/,
      );
    });
  });

  describe(`rate limits on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend, {
        env: { RATE_LIMIT_HOLDS_PER_MINUTE: '3', RATE_LIMIT_BOOK_PER_MINUTE: '2' },
      });
    });
    after(() => h.close());

    test('POST /holds and POST /book answer 429 with Retry-After past the per-client limit', async () => {
      const eventId = await createEvent(h.app, 50);
      const fromA = (qty: number) =>
        h.app.inject({
          method: 'POST',
          url: '/holds',
          payload: { hold: { event_id: eventId, qty } },
          remoteAddress: '10.1.1.1',
        });
      const granted: Array<{ hold_id: number; payment_token: string }> = [];
      for (let i = 0; i < 3; i++) granted.push((await fromA(1)).json());
      const limited = await fromA(1);
      isProblem(limited, 429, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60);
      // Another client is not limited by the first.
      const other = await h.app.inject({
        method: 'POST',
        url: '/holds',
        payload: { hold: { event_id: eventId, qty: 1 } },
        remoteAddress: '10.1.1.2',
      });
      assert.equal(other.statusCode, 201);

      const bookFromA = (i: number) =>
        h.app.inject({
          method: 'POST',
          url: '/book',
          remoteAddress: '10.1.1.1',
          payload: { booking: { hold_id: granted[i]!.hold_id, payment_token: granted[i]!.payment_token } },
        });
      assert.equal((await bookFromA(0)).statusCode, 201);
      assert.equal((await bookFromA(1)).statusCode, 201);
      isProblem(await bookFromA(2), 429, 'rate_limited');
      const b = await books(h.store, eventId, h.clock.now());
      assert.deepEqual([b.held, b.booked, b.balanced], [2, 2, true]);
      // Other routes are not limited.
      assert.equal(
        (await h.app.inject({ method: 'GET', url: `/events/${eventId}`, remoteAddress: '10.1.1.1' })).statusCode,
        200,
      );
    });
  });
}

describe('configuration of the lifecycle and hardening', () => {
  test('defaults: lifetime 900 s, keys kept a day, rate limits on except under NODE_ENV=test', () => {
    const config = loadConfig({});
    assert.deepEqual(
      [
        config.maxHoldLifetimeSeconds,
        config.idempotencyKeyTtlSeconds,
        config.idempotencyLockTimeoutSeconds,
        config.trustProxyHops,
      ],
      [900, 86_400, 60, 0],
    );
    assert.deepEqual([config.rateLimitHoldsPerMinute, config.rateLimitBookPerMinute], [120, 60]);
    const test = loadConfig({ NODE_ENV: 'test' });
    assert.deepEqual([test.rateLimitHoldsPerMinute, test.rateLimitBookPerMinute], [0, 0]);
    assert.equal(loadConfig({ NODE_ENV: 'test', RATE_LIMIT_BOOK_PER_MINUTE: '5' }).rateLimitBookPerMinute, 5);
    assert.equal(
      loadConfig({ HOLD_TTL_SECONDS: '1800' }).maxHoldLifetimeSeconds,
      1800,
      'unset, the cap follows a longer TTL',
    );
  });

  test('every bad new variable is named at once', () => {
    try {
      loadConfig({
        MAX_HOLD_LIFETIME_SECONDS: 'long',
        IDEMPOTENCY_KEY_TTL_SECONDS: '5',
        IDEMPOTENCY_LOCK_TIMEOUT_SECONDS: '0',
        RATE_LIMIT_HOLDS_PER_MINUTE: '-1',
        RATE_LIMIT_BOOK_PER_MINUTE: '1.5',
        TRUST_PROXY_HOPS: '99',
      });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems.length, 6);
    }
    assert.throws(
      () => loadConfig({ HOLD_TTL_SECONDS: '600', MAX_HOLD_LIFETIME_SECONDS: '300' }),
      /MAX_HOLD_LIFETIME_SECONDS \(300\) must be at least HOLD_TTL_SECONDS/,
    );
    assert.throws(
      () => loadConfig({ IDEMPOTENCY_KEY_TTL_SECONDS: '120', IDEMPOTENCY_LOCK_TIMEOUT_SECONDS: '120' }),
      /IDEMPOTENCY_LOCK_TIMEOUT_SECONDS \(120\) must be shorter than IDEMPOTENCY_KEY_TTL_SECONDS/,
    );
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://u@h1:5432,h2:5432/db?target_session_attrs=standby' }),
      /target_session_attrs=standby is not supported/,
    );
  });
});

describe('errors a person can act on', () => {
  let h: H;
  before(async () => {
    h = await contractHarness(backends()[0]!, { env: { ADMIN_TOKEN: 'an-admin-token-long-enough' } });
  });
  after(() => h.close());
  const admin = { authorization: 'Bearer an-admin-token-long-enough' };

  test('the usual flat body names each field and where it belongs', async () => {
    const res = await json(h.app, 'POST', '/holds', JSON.stringify({ event_id: 1, qty: 2 }));
    const body = isProblem(res, 400, 'validation_failed');
    assert.match(
      String(body.detail),
      /unknown field "event_id": it belongs inside "hold", as \{"hold": \{"event_id": …\}\}/,
    );
    assert.match(String(body.detail), /unknown field "qty": it belongs inside "hold"/);
    assert.match(String(body.detail), /the field "hold" is missing/);
    assert.doesNotMatch(String(body.detail), /NOT have additional properties/);
    const nested = isProblem(
      await json(h.app, 'POST', '/holds', JSON.stringify({ hold: { event_id: 1, qty: 1, seat: 'A1' } })),
      400,
      'validation_failed',
    );
    assert.deepEqual(nested.errors, [{ path: 'body/hold', message: 'unknown field "seat"' }]);
  });

  test('path and query errors say what is allowed, never a regex', async () => {
    const path = isProblem(await h.app.inject({ method: 'GET', url: '/events/abc' }), 400, 'validation_failed');
    assert.equal(path.detail, 'the request path is invalid: id: must be a positive integer');
    const query = isProblem(await h.app.inject({ method: 'GET', url: '/events?limit=500' }), 400, 'validation_failed');
    assert.equal(
      query.detail,
      'the request query string is invalid: limit: must be a whole number from 1 to 100 (default 20)',
    );
    const typed = isProblem(
      await json(h.app, 'POST', '/holds', JSON.stringify({ hold: { event_id: '1', qty: 1 } })),
      400,
      'validation_failed',
    );
    assert.match(String(typed.detail), /hold\/event_id: must be an integer \(a JSON number, not a string\)/);
    for (const body of [path, query, typed]) assert.doesNotMatch(JSON.stringify(body), /\^|\$"|pattern/);
  });

  test('an admin route without credentials is 401 whatever its body', async () => {
    isProblem(await json(h.app, 'POST', '/events', '{"bad":'), 401, 'unauthorized');
    isProblem(await json(h.app, 'POST', '/events', JSON.stringify({ nope: 1 })), 401, 'unauthorized');
    isProblem(await json(h.app, 'PATCH', '/events/1', JSON.stringify({ nope: 1 })), 401, 'unauthorized');
    // With credentials, the body is judged.
    isProblem(await json(h.app, 'POST', '/events', JSON.stringify({ nope: 1 }), admin), 400, 'validation_failed');
  });

  test('/openapi.json carries the package version; /metrics has no blank lines and counts force-expired holds', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    assert.equal((await h.app.inject({ method: 'GET', url: '/openapi.json' })).json().info.version, version);
    const created = await json(
      h.app,
      'POST',
      '/events',
      JSON.stringify({ event: { name: 'Metrics', total_seats: 5 } }),
      admin,
    );
    const granted = (await hold(h.app, created.json().event_id, 1)).json();
    const expired = await h.app.inject({
      method: 'POST',
      url: `/admin/holds/${granted.hold_id}/expire`,
      headers: admin,
    });
    assert.equal(expired.statusCode, 200);
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.doesNotMatch(text, /\n\n/);
    assert.match(text, /^holds_force_expired_total 1$/m);
  });
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses the first HTTP/1.1 response (with a Content-Length) out of what a socket received. */
function parseResponse(text: string): RawResponse & { rest: string } {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const length = Number(headers['content-length'] ?? 0);
  const bodyStart = end + 4;
  const bytes = Buffer.from(text.slice(bodyStart));
  return {
    status: Number(statusLine!.split(' ')[1]),
    headers,
    body: bytes.subarray(0, length).toString(),
    rest: bytes.subarray(length).toString(),
  };
}

/** Writes `request` on a fresh connection and returns everything received until the server closes it. */
function exchange(port: number, request: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection; received ${JSON.stringify(received.slice(0, 300))}`));
    }, timeoutMs);
    socket.on('data', (data) => (received += data.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(request);
  });
}

function assertRawProblem(response: RawResponse, status: number, code: string): void {
  assert.equal(response.status, status, response.body);
  assert.match(response.headers['content-type'] ?? '', /^application\/problem\+json/);
  for (const header of SECURITY_HEADERS) assert.ok(response.headers[header] !== undefined, `${header} on ${status}`);
  const body = JSON.parse(response.body);
  assert.deepEqual([body.status, body.code, typeof body.title, typeof body.detail], [status, code, 'string', 'string']);
  assert.equal(body.request_id, response.headers['x-request-id']);
}

describe('HTTP at its edges, over a real socket', () => {
  let h: H;
  let base: string;
  let port: number;
  before(async () => {
    h = await contractHarness(backends()[0]!);
    base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    port = Number(new URL(base).port);
  });
  after(() => h.close());

  const post = (body: BodyInit, init: RequestInit = {}) =>
    fetch(`${base}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
      ...init,
    });

  const assertTooLarge = async (res: Response) => {
    assert.equal(res.status, 413);
    assert.match(String(res.headers.get('content-type')), /^application\/problem\+json/);
    const body = await res.json();
    assert.equal(body.code, 'payload_too_large');
    assert.equal(body.status, 413);
  };

  test('fetch sending 3 MB reads its 413 problem, whether the length is announced or streamed', async () => {
    // Announced with Content-Length: the server reads it to the end before answering.
    for (let i = 0; i < 3; i++) await assertTooLarge(await post(Buffer.alloc(3_000_000, 'x')));
    // Streamed (chunked), a slice at a time: the client is certainly still writing when the
    // limit is passed. Before the fix the server closed the connection there, and fetch failed
    // with `write EPIPE` (or ECONNRESET) instead of reading the 413.
    const slice = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= 3_000_000) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 1));
        sent += slice.length;
        controller.enqueue(slice);
      },
    });
    await assertTooLarge(await post(stream, { duplex: 'half' } as RequestInit));
    assert.ok(sent >= 3_000_000, 'the whole body was sent');
  });

  test('a client that writes all of a 3 MB body, a slice at a time, can: no reset, then the 413', async () => {
    // Before the fix the server answered at the Content-Length and closed the connection after
    // 128 KiB had been read; every later write was met with a reset (EPIPE for fetch).
    const size = 3_000_000;
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let failure: Error | null = null;
    let closed = false;
    socket.on('data', (data) => (received += data.toString('latin1')));
    socket.on('error', (error) => (failure = error));
    const gone = new Promise<void>((resolve) =>
      socket.on('close', () => {
        closed = true;
        resolve();
      }),
    );
    socket.write(
      `POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${size}\r\nconnection: close\r\n\r\n`,
    );
    const slice = Buffer.alloc(64 * 1024, 'x');
    let sent = 0;
    while (sent < size && failure === null && !closed) {
      const part = slice.subarray(0, Math.min(slice.length, size - sent));
      sent += part.length;
      if (!socket.write(part)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), gone]);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 5000))]);
    socket.destroy();
    assert.equal(failure, null);
    assert.equal(sent, size, 'the connection stayed open until the whole body was written');
    assertRawProblem(parseResponse(received), 413, 'payload_too_large');
  });

  test('an oversized body within the drain bound leaves the connection open for the next request', async () => {
    const big = Buffer.alloc(100_000, 'x');
    const received = await exchange(
      port,
      Buffer.concat([
        Buffer.from(
          `POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${big.length}\r\n\r\n`,
        ),
        big,
        Buffer.from('GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'),
      ]),
    );
    const first = parseResponse(received);
    assertRawProblem(first, 413, 'payload_too_large');
    assert.notEqual(first.headers.connection, 'close');
    const second = parseResponse(first.rest);
    assert.equal(second.status, 200);
    assert.deepEqual(JSON.parse(second.body), { status: 'ok' });
  });

  test(`past BODY_DRAIN_LIMIT_BYTES (${BODY_DRAIN_LIMIT_BYTES}) the 413 is sent at once and the connection closed`, async () => {
    assert.ok(BODY_DRAIN_LIMIT_BYTES >= 100 * BODY_LIMIT_BYTES);
    // Announced: answered before a byte of the body is sent.
    const announced = parseResponse(
      await exchange(
        port,
        `POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${BODY_DRAIN_LIMIT_BYTES + 1}\r\n\r\n`,
      ),
    );
    assertRawProblem(announced, 413, 'payload_too_large');
    assert.equal(announced.headers.connection, 'close');
    // Streamed without end: the server stops reading past the bound and closes.
    const socket: Socket = connect(port, '127.0.0.1');
    let closed = false;
    socket.on('error', () => {});
    const gone = new Promise<void>((resolve) =>
      socket.on('close', () => {
        closed = true;
        resolve();
      }),
    );
    socket.write(
      'POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(0x10000, 'x'), Buffer.from('\r\n')]);
    let sent = 0;
    const giveUpAt = 4 * BODY_DRAIN_LIMIT_BYTES;
    while (!closed && sent < giveUpAt) {
      sent += 0x10000;
      if (!socket.write(chunk)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), gone]);
    }
    await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 5000))]);
    socket.destroy();
    assert.ok(closed, 'the server closed the connection');
    assert.ok(sent < giveUpAt, `closed after ${sent} bytes`);
  });

  test('what Node refuses before Fastify sees a request is a problem too: bad method 400, big headers 431, Expect 417', async () => {
    const brew = parseResponse(await exchange(port, 'BREW /events HTTP/1.1\r\nhost: x\r\n\r\n'));
    assertRawProblem(brew, 400, 'bad_request');
    assert.equal(brew.headers.connection, 'close');
    assertRawProblem(parseResponse(await exchange(port, 'GET /events HTTP/1.1\r\nhost\r\n\r\n')), 400, 'bad_request');
    const big = parseResponse(
      await exchange(
        port,
        `DELETE /holds/1 HTTP/1.1\r\nhost: x\r\nx-payment-token: x\r\nidempotency-key: ${'k'.repeat(20_000)}\r\n\r\n`,
      ),
    );
    assertRawProblem(big, 431, 'headers_too_large');
    const refused = parseResponse(
      await exchange(port, 'GET /events/1 HTTP/1.1\r\nhost: x\r\nexpect: bogus\r\nconnection: close\r\n\r\n'),
    );
    assertRawProblem(refused, 417, 'expectation_failed');
    assert.equal(JSON.parse(refused.body).instance, '/events/1');
    // 100-continue is still met.
    const continued = await exchange(
      port,
      'GET /healthz HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n',
    );
    assert.match(continued, /HTTP\/1.1 200 OK/);
  });

  test('a malformed URL is 400 malformed_url, a path parameter over MAX_PARAM_LENGTH characters 414 uri_too_long', async () => {
    for (const url of ['/events/%zz', '/events%zz', '/holds/%E0%A4%A', '/nowhere/%zz']) {
      const res = await fetch(`${base}${url}`);
      assert.equal(res.status, 400, url);
      assert.match(String(res.headers.get('content-type')), /^application\/problem\+json/);
      for (const header of SECURITY_HEADERS) assert.ok(res.headers.get(header) !== null, `${header} on ${url}`);
      assert.equal((await res.json()).code, 'malformed_url');
    }
    isProblem(await h.app.inject({ method: 'GET', url: '/events/%zz' }), 400, 'malformed_url');
    isProblem(
      await h.app.inject({ method: 'GET', url: `/events/${'1'.repeat(MAX_PARAM_LENGTH + 1)}` }),
      414,
      'uri_too_long',
    );
    isProblem(
      await h.app.inject({
        method: 'DELETE',
        url: `/holds/${'a'.repeat(MAX_PARAM_LENGTH * 2)}`,
        headers: { 'x-payment-token': 'x' },
      }),
      414,
      'uri_too_long',
    );
  });

  test('every route documents what HTTP itself can refuse; routes with path parameters document 414', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const [path, operations] of Object.entries<Record<string, { responses: Record<string, unknown> }>>(
      doc.paths,
    )) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const status of ['400', '408', '417', '431'])
          assert.ok(operation.responses[status], `${method} ${path} documents ${status}`);
        assert.equal(Boolean(operation.responses['414']), path.includes('{'), `${method} ${path} 414`);
      }
    }
  });

  test(`JSON nested deeper than ${MAX_JSON_DEPTH} is 400 json_too_deep on every route, with or without an Idempotency-Key`, async () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'deep', 'x-payment-token': 'x' };
    for (const [method, url] of [
      ['DELETE', '/holds/1'],
      ['POST', '/holds'],
      ['POST', '/events'],
      ['POST', '/holds/1/extend'],
    ] as const) {
      isProblem(await h.app.inject({ method, url, headers, payload: deep }), 400, 'json_too_deep');
    }
    const res = await fetch(`${base}/holds/1`, { method: 'DELETE', headers, body: deep });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, 'json_too_deep');
    // At the bound the body is parsed (and then judged by the route's schema).
    const atBound = `{"hold":${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}}`;
    isProblem(await json(h.app, 'POST', '/holds', atBound), 400, 'validation_failed');
    const overBound = `{"hold":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`;
    isProblem(await json(h.app, 'POST', '/holds', overBound), 400, 'json_too_deep');
    // Brackets inside strings do not count.
    isProblem(
      await json(h.app, 'POST', '/holds', JSON.stringify({ hold: { event_id: 1, qty: 1, note: '['.repeat(1000) } })),
      400,
      'validation_failed',
    );
  });
});

describe('start-up', () => {
  test('building and starting the app emits no warning (FSTDEP023 disableRequestLogging and the like)', () => {
    // A fresh process: Fastify emits each deprecation once per process, so an app built earlier
    // in this one would hide it.
    const script = `
      const warnings = [];
      process.on('warning', (warning) => warnings.push(\`\${warning.name} \${warning.code ?? ''} \${warning.message}\`));
      const { buildApp } = await import('./src/app.ts');
      const { openPgliteStore } = await import('./src/storage/open.ts');
      const { loadConfig } = await import('./src/config.ts');
      const store = await openPgliteStore(undefined);
      await store.migrate();
      const app = await buildApp({ config: loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent' }), store });
      await app.listen({ port: 0, host: '127.0.0.1' });
      await app.close();
      await store.close();
      await new Promise((resolve) => setImmediate(resolve));
      console.log(JSON.stringify(warnings));
    `;
    const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    const warnings = JSON.parse(output.trim().split('\n').at(-1)!) as string[];
    assert.deepEqual(
      warnings.filter((warning) => /FSTDEP|FSTWRN|Fastify/.test(warning)),
      [],
    );
  });
});

contractTest();
