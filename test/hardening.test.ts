// OWASP API hardening, on each backend: tokens, strict bodies, rate limits, security headers,
// the OpenAPI document covering every response, and configuration.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import {
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
        for (const header of SECURITY_HEADERS)
          assert.ok(res.headers[header] !== undefined, `${header} on ${res.statusCode}`);
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
      }
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

contractTest();
