// What happens on every request, whatever the route: its id, the security headers, no caching,
// one access-log line and the request-duration metric. Hooks on every request are
// callback-style: an async hook costs a promise per request.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { onSendHookHandler } from 'fastify';
import helmet from 'helmet';
import { levels } from 'pino';
import type { Config } from '../config.ts';
import type { Metrics } from '../metrics.ts';
import type { App } from './types.ts';

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify's genReqId: the client's X-Request-Id when it is a sane one, else a fresh UUID. */
export const requestIdOf = (request: IncomingMessage): string => {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
};

/**
 * The security headers of every answer: the set OWASP's REST Security Cheat Sheet gives for API
 * responses (no-store is added per response below, as a route may allow caching), plus
 * Cross-Origin-Resource-Policy, which keeps a JSON answer out of another site's no-cors loads.
 * The policy lets an answer load nothing and be framed by no one: a JSON body is data, never a
 * page. Also set on answers written before Fastify has a request (http/problem.handlers.ts).
 *
 * helmet's dozen document headers (a 240-byte policy, Origin-Agent-Cluster, X-DNS-Prefetch-Control
 * and the rest) are for pages: they go on every answer that is not JSON (documentSecurityHeaders).
 * On every answer they were 640 of its 900-odd bytes and a setHeader each, on every seat held.
 */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

/**
 * The security headers of a page (the console, the API docs): helmet's middleware run once, at
 * start, into a list, since they are the same on every page. Running helmet's chain of a dozen
 * middlewares on every request cost 1–2% of the hold path's CPU.
 */
function documentSecurityHeaders(): Record<string, string> {
  const middleware = helmet({
    contentSecurityPolicy: {
      // The service speaks plain HTTP behind whatever terminates TLS; upgrading the docs'
      // requests to https would break them on localhost.
      directives: { 'upgrade-insecure-requests': null },
    },
  });
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  middleware({} as IncomingMessage, response as unknown as ServerResponse, () => {});
  return headers;
}

/** JSON answers are data; anything else (pages, their scripts and styles, /metrics) gets the page headers. */
const isData = (contentType: unknown): boolean =>
  typeof contentType === 'string' &&
  (contentType.startsWith('application/json') || contentType.startsWith('application/problem+json'));

export function registerRequestHooks(app: App, config: Pick<Config, 'accessLogLevel'>, metrics: Metrics): void {
  // Every answer's fixed headers, set once on the raw response as the request arrives, not by a
  // hook on every answer's way out: a header a route sets later (reply.header) overrides its
  // value when the head is written.
  const fixedHeaders = Object.entries(API_SECURITY_HEADERS);
  app.addHook('onRequest', (request, reply, done) => {
    const raw = reply.raw;
    for (const [name, value] of fixedHeaders) raw.setHeader(name, value);
    raw.setHeader('x-request-id', request.id);
    // Responses carry payment tokens and live seat counts: no cache may keep them.
    raw.setHeader('cache-control', 'no-store');
    done();
  });
  // Pages (the console, the API docs, /metrics) are the routes without a JSON response schema:
  // only they check, as they send, whether the answer is a page (problems are data).
  const pageHeaders = documentSecurityHeaders();
  const onPageSend: onSendHookHandler = (_request, reply, payload, done) => {
    if (!isData(reply.getHeader('content-type'))) reply.headers(pageHeaders);
    done(null, payload);
  };
  app.addHook('onRoute', (route) => {
    if (route.schema?.response !== undefined) return;
    route.onSend = [...[route.onSend ?? []].flat(), onPageSend];
  });
  // One access-log line per request, at ACCESS_LOG_LEVEL (Fastify's own two are off: app.ts).
  // Checked first: building the line (the redacted URL above all) for a level the logger drops
  // was 1–2% of a GET /healthz.
  const accessLevel = config.accessLogLevel === 'silent' ? -Infinity : levels.values[config.accessLogLevel]!;
  app.addHook('onResponse', (request, reply, done) => {
    if (accessLevel >= (levels.values[request.log.level] ?? Infinity)) {
      request.log[config.accessLogLevel](
        {
          method: request.method,
          url: redactedUrl(request.url),
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
        },
        'request',
      );
    }
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode },
      reply.elapsedTime / 1000,
    );
    done();
  });
}

/**
 * The URL as logged: a queue ticket in the path is a credential (it yields its admission
 * token), so it is left out, as payment tokens are (they travel in a header, never logged). So is
 * a waiting-list secret given as ?secret= (it yields the offer's payment token).
 */
export const redactedUrl = (url: string): string =>
  url.replace(/^\/queue\/[^/?]+/, '/queue/[ticket]').replace(/([?&]secret=)[^&#]*/g, '$1[secret]');
