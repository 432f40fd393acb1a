// What happens on every request, whatever the route: its id, the security headers, no caching,
// one access-log line and the request-duration metric. Hooks on every request are
// callback-style: an async hook costs a promise per request.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
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
 * The security headers, which are the same on every response: helmet's middleware run once, at
 * start, into a list. Every response gets them from the list (registerRequestHooks), and so do
 * answers written before Fastify has a request (http/problem.handlers.ts). Running helmet's
 * chain of a dozen middlewares on every request cost 1–2% of the hold path's CPU.
 */
export function securityHeaders(): Record<string, string> {
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

export function registerRequestHooks(
  app: App,
  config: Pick<Config, 'accessLogLevel'>,
  metrics: Metrics,
  fixed: Record<string, string>,
): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    // Fastify closes the connection after any body it could not parse, lest the unread rest be
    // taken for the next request. Once the body was read to its end nothing is left: keep it.
    if (request.raw.complete && reply.getHeader('connection') === 'close') reply.removeHeader('connection');
    // Responses carry payment tokens and live seat counts: no cache may keep them.
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
  // One access-log line per request, at ACCESS_LOG_LEVEL (Fastify's own two are off: app.ts).
  app.addHook('onResponse', (request, reply, done) => {
    if (config.accessLogLevel !== 'silent') {
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
  const fixedHeaders = Object.entries(fixed);
  app.addHook('onRequest', (request, reply, done) => {
    for (const [name, value] of fixedHeaders) reply.raw.setHeader(name, value);
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
