// buildApp wires config, storage and clock into services and routes. It never listens: cli.ts
// does, and tests call app.inject() or listen on port 0 themselves.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import helmet from 'helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
  type RouteOptions,
} from 'fastify';
import { adminRoutes } from './admin/admin.routes.ts';
import { AdminService } from './admin/admin.service.ts';
import { bookingRoutes } from './bookings/bookings.routes.ts';
import { ChangeFeed } from './changes/feed.ts';
import { changeRoutes } from './changes/changes.routes.ts';
import { ChangesService } from './changes/changes.service.ts';
import { BookingsService } from './bookings/bookings.service.ts';
import { type Clock, systemClock } from './clock.ts';
import { consoleRoutes } from './console/console.routes.ts';
import type { Config } from './config.ts';
import { DatabaseUnavailable, DomainError, ERROR_STATUS, type ErrorCode } from './errors.ts';
import { eventRoutes } from './events/events.routes.ts';
import { EventsService } from './events/events.service.ts';
import { HoldLifecycleService } from './holds/hold-lifecycle.service.ts';
import { holdRoutes } from './holds/holds.routes.ts';
import { HoldsService } from './holds/holds.service.ts';
import { BODY_LIMIT_BYTES, registerJsonParser } from './http/json-body.ts';
import { PROBLEM_CONTENT_TYPE, problemBody } from './http/problem.ts';
import { BODY_ERRORS, problems, withProblems } from './http/schemas.ts';
import { registerRateLimits } from './http/rate-limit.ts';
import { describeValidation } from './http/validation.ts';
import { registerIdempotency } from './idempotency/idempotency.http.ts';
import { IdempotencyService } from './idempotency/idempotency.service.ts';
import { listingRoutes } from './listings/listings.routes.ts';
import { ListingsService } from './listings/listings.service.ts';
import { type Metrics, createMetrics } from './metrics.ts';
import type { Store } from './storage/store.ts';
import { webhookRoutes } from './webhooks/webhooks.routes.ts';
import { WebhooksService } from './webhooks/webhooks.service.ts';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export type AdminGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    changeFeed: ChangeFeed;
  }
}

export interface AppDeps {
  config: Config;
  store: Store;
  /** The change feed; built here when not given. */
  feed?: ChangeFeed;
  clock?: Clock;
  logger?: FastifyBaseLogger;
  metrics?: Metrics;
}

export { BODY_DRAIN_LIMIT_BYTES, BODY_LIMIT_BYTES, MAX_JSON_DEPTH } from './http/json-body.ts';
/** The OpenAPI document's version is the package's. */
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
/** /readyz answers 503 after this long without an answer from the database. */
const READY_TIMEOUT_MS = 800;
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const requestIdOf = (request: IncomingMessage): string => {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
};
/** Node's limit on the request line and headers together (its --max-http-header-size default). */
const MAX_HEADER_BYTES = 16 * 1024;

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, store } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics();
  const securityHeaders = securityHeadersMiddleware();
  // The same headers, for answers written before Fastify has a request (see clientErrorHandler).
  const fixedSecurityHeaders = headersSetBy(securityHeaders);

  const app: App = Fastify({
    ...(deps.logger === undefined ? { logger: false } : { loggerInstance: deps.logger }),
    // One access-log line per request, at ACCESS_LOG_LEVEL (the onResponse hook below), instead
    // of Fastify's two at info. (The top-level disableRequestLogging option is deprecated.)
    logController: new LogController({ disableRequestLogging: true }),
    // Enforced by the JSON parser (http/json-body.ts), which reads an oversized body to its end.
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: requestIdOf,
    // A URL the router cannot take (bad percent-encoding, a path parameter over 100
    // characters) is a problem like any other, not Fastify's own JSON.
    frameworkErrors: (error, request, reply) => {
      reply.headers(fixedSecurityHeaders);
      const problem =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? { code: 'uri_too_long' as const, detail: 'a segment of the path is over 100 characters' }
          : error.code === 'FST_ERR_BAD_URL'
            ? { code: 'malformed_url' as const, detail: 'the path is not validly percent-encoded' }
            : toProblem(error, request);
      void sendProblem(request, reply, problem.code, problem.detail);
    },
    clientErrorHandler: clientErrorHandler(fixedSecurityHeaders),
    // Per-client rate limits key on the client's address; behind proxies, believe that many.
    trustProxy: config.trustProxyHops > 0 ? (_address: string, hop: number) => hop < config.trustProxyHops : false,
    // Strict bodies: nothing coerced ("5" is not 5), nothing silently dropped.
    // verbose: errors carry their schema, whose description says what is allowed (http/validation.ts).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, verbose: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Only JSON bodies are accepted; anything else is 415 before a route runs.
  app.removeContentTypeParser(['text/plain']);
  registerJsonParser(app);
  // Expect: anything but 100-continue. Node answers a bare 417 unless someone listens.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const body = problemBody(
      { url: request.url, id: requestIdOf(request) },
      'expectation_failed',
      'the only Expect this server meets is 100-continue',
    );
    const text = JSON.stringify(body);
    response.writeHead(body.status, {
      ...fixedSecurityHeaders,
      ...rawProblemHeaders(body.request_id),
      'content-length': Buffer.byteLength(text),
    });
    response.end(text);
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
  );
  // Hooks on every request are callback-style: an async hook costs a promise per request.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    // Fastify closes the connection after any body it could not parse, lest the unread rest be
    // taken for the next request. Once the body was read to its end nothing is left: keep it.
    if (request.raw.complete && reply.getHeader('connection') === 'close') reply.removeHeader('connection');
    // Responses carry payment tokens and live seat counts: no cache may keep them.
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    if (config.accessLogLevel !== 'silent') {
      request.log[config.accessLogLevel](
        {
          method: request.method,
          url: request.url,
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

  await registerPlugins(app, config, metrics, securityHeaders);
  app.addHook('onRoute', documentCommonProblems);
  registerIdempotency(app, new IdempotencyService(store, clock, config));

  if (config.adminToken === undefined) {
    app.log.warn('ADMIN_TOKEN is not set: POST /events and /admin/* are open to anyone. Set it outside local demos.');
  }
  const requireAdmin = adminGuard(config.adminToken);

  // The change feed: every service writes its changes through the outbox, in its transaction.
  const feed = deps.feed ?? new ChangeFeed(store, config.changeFeed, app.log);
  app.decorate('changeFeed', feed);
  app.addHook('onReady', () => feed.start());
  app.addHook('onClose', () => feed.stop());
  const { outbox } = feed;

  const holds = new HoldsService(store, clock, config, outbox, metrics);
  eventRoutes(app, new EventsService(store, clock, outbox), requireAdmin, config);
  holdRoutes(app, holds, new HoldLifecycleService(store, clock, config, outbox), config);
  bookingRoutes(app, new BookingsService(store, clock, config, outbox, metrics), requireAdmin, config);
  adminRoutes(app, new AdminService(store, clock, outbox, config, metrics), requireAdmin);
  changeRoutes(app, new ChangesService(store, clock, feed), requireAdmin);
  webhookRoutes(app, new WebhooksService(store, clock, config), requireAdmin);
  probeRoutes(app, store, metrics);
  listingRoutes(app, new ListingsService(store, clock), requireAdmin, config);
  await consoleRoutes(app, requireAdmin, config);
  return app;
}

type SecurityHeaders = ReturnType<typeof helmet>;

function securityHeadersMiddleware(): SecurityHeaders {
  // helmet's middleware built once, at start. @fastify/helmet rebuilds it on every request
  // (parsing the CSP each time); the headers are the same either way.
  return helmet({
    contentSecurityPolicy: {
      // The service speaks plain HTTP behind whatever terminates TLS; upgrading the docs'
      // requests to https would break them on localhost.
      directives: { 'upgrade-insecure-requests': null },
    },
  });
}

/** The headers the middleware sets, which are the same on every response. */
function headersSetBy(middleware: SecurityHeaders): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  middleware({} as IncomingMessage, response as unknown as ServerResponse, () => {});
  return headers;
}

const rawProblemHeaders = (requestId: string) => ({
  'content-type': PROBLEM_CONTENT_TYPE,
  'cache-control': 'no-store',
  'x-request-id': requestId,
});

/**
 * Answers what Node's HTTP parser refused before there was a request: an unknown method or
 * other malformed HTTP (400 bad_request), headers over MAX_HEADER_BYTES (431), headers that
 * took too long (408). The answer is written on the socket, which is then closed.
 */
function clientErrorHandler(securityHeaders: Record<string, string>) {
  return function (this: FastifyInstance, error: Error & { code?: string; reason?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [code, detail]: [ErrorCode, string] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? ['headers_too_large', `the request line and headers are limited to ${MAX_HEADER_BYTES} bytes`]
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['request_timeout', 'the request did not arrive in time']
          : [
              'bad_request',
              `the request is not valid HTTP/1.1 (${error.code ?? 'unknown'}: ${error.reason ?? error.message})`,
            ];
    this.log.debug({ err: error }, 'client error');
    // As Node does: answer only if no response on this connection has begun, or the peer would
    // read ours as the rest of that one.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (!socket.writable || inFlight?.headersSent === true) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const body = JSON.stringify(problemBody({ id: requestId }, code, detail));
    const status = ERROR_STATUS[code];
    const headers = { ...securityHeaders, ...rawProblemHeaders(requestId) };
    const head = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      `content-length: ${Buffer.byteLength(body)}`,
      'connection: close',
    ].join('\r\n');
    // Closed once written: the rest of what the client sent cannot be read as HTTP.
    socket.end(`${head}\r\n\r\n${body}`, () => socket.destroy());
  };
}

/** Security headers, rate limiting and the OpenAPI document with its interactive docs. */
async function registerPlugins(
  app: App,
  config: Config,
  metrics: Metrics,
  securityHeaders: SecurityHeaders,
): Promise<void> {
  app.addHook('onRequest', (request, reply, done) => {
    securityHeaders(request.raw, reply.raw, (error?: unknown) => done(error as Error | undefined));
  });
  await registerRateLimits(app, config.redisUrl, metrics);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Box office',
        version: PACKAGE_VERSION,
        description:
          'Events, temporary seat holds and bookings. Errors are RFC 9457 problem+json with a stable `code`. ' +
          'Every POST, PATCH and DELETE accepts an Idempotency-Key header.',
      },
      components: { securitySchemes: { adminBearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

/**
 * Documents the problems any route can answer whatever it does: 500, 503 while the server
 * drains, what HTTP itself refuses (malformed requests and URLs, oversized headers, an Expect
 * not met, a path parameter over 100 characters), and for unsafe methods the body errors (a
 * DELETE may still carry a bad body).
 */
function documentCommonProblems(route: RouteOptions): void {
  if (route.schema === undefined || route.schema.hide === true) return;
  const unsafe = [route.method].flat().some((method) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(method));
  const codes: ErrorCode[] = [
    'internal_error',
    'service_unavailable',
    'database_unavailable',
    'bad_request',
    'malformed_url',
    'request_timeout',
    'expectation_failed',
    'headers_too_large',
    ...(route.url.includes(':') ? ['uri_too_long' as const] : []),
    ...(unsafe ? ['outcome_unknown' as const, ...BODY_ERRORS] : []),
  ];
  route.schema.response = withProblems((route.schema.response ?? {}) as Record<number, unknown>, codes);
}

function probeRoutes(app: App, store: Store, metrics: Metrics): void {
  const Status = Type.Object({ status: Type.String() });
  app.get(
    '/healthz',
    { schema: { summary: 'The process is up', tags: ['probes'], response: { 200: Status } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'The database answers',
        tags: ['probes'],
        response: { 200: Status, ...problems('service_unavailable') },
      },
    },
    async () => {
      // Answers within READY_TIMEOUT_MS whatever the database does: a frozen server must not
      // freeze the probe that is meant to report it.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      });
      try {
        await Promise.race([store.ping(), timeout]);
      } catch (error) {
        throw new DomainError('service_unavailable', `the database is not answering: ${(error as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ok' };
    },
  );
  const MetricsText = {
    description: 'Prometheus text exposition format',
    content: { 'text/plain': { schema: Type.String() } },
  };
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['probes'], response: { 200: MetricsText } } },
    async (_request, reply) =>
      // prom-client separates metrics with blank lines, which some scrapers' parsers reject.
      reply.type(metrics.registry.contentType).send((await metrics.registry.metrics()).replace(/\n{2,}/g, '\n')),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

function adminGuard(adminToken: string | undefined): AdminGuard {
  if (adminToken === undefined) return async () => {};
  const expected = createHash('sha256').update(adminToken).digest();
  return async (request, reply) => {
    const header = request.headers.authorization ?? '';
    const presented = createHash('sha256')
      .update(header.replace(/^Bearer\s+/i, ''))
      .digest();
    // Equal-length digests compared in constant time: no timing hint about the token.
    if (!/^Bearer\s+/i.test(header) || !timingSafeEqual(presented, expected)) {
      reply.header('www-authenticate', 'Bearer');
      throw new DomainError('unauthorized', 'this route needs Authorization: Bearer <ADMIN_TOKEN>');
    }
  };
}

interface ProblemParts {
  code: ErrorCode;
  detail: string;
  extra?: Record<string, unknown>;
}

/** Maps whatever was thrown to a problem. Unknown errors become a 500 that reveals nothing. */
function toProblem(error: FastifyError | DomainError | Error, request: FastifyRequest): ProblemParts {
  if (error instanceof DomainError) return { code: error.code, detail: error.message, extra: error.details };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const { detail, errors } = describeValidation(fastifyError, request);
    return { code: 'validation_failed', detail, extra: { errors } };
  }
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'unsupported_media_type', detail: 'request bodies must be application/json' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'payload_too_large', detail: `request bodies are limited to ${BODY_LIMIT_BYTES} bytes` };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'malformed_json', detail: 'the body is empty but the content type says JSON' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'malformed_json', detail: 'the body is not valid JSON' };
  }
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) {
    return { code: 'malformed_json', detail: 'the body is not valid JSON' };
  }
  if (fastifyError.statusCode === 413) {
    return { code: 'payload_too_large', detail: `request bodies are limited to ${BODY_LIMIT_BYTES} bytes` };
  }
  if (fastifyError.statusCode === 415) {
    return { code: 'unsupported_media_type', detail: 'request bodies must be application/json' };
  }
  if (fastifyError.statusCode === 429) {
    return { code: 'rate_limited', detail: 'too many requests from this client' };
  }
  if (fastifyError.statusCode === 503) {
    return { code: 'service_unavailable', detail: 'the server is shutting down' };
  }
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return { code: 'validation_failed', detail: fastifyError.message };
  }
  return {
    code: 'internal_error',
    detail: 'an unexpected error occurred; the request id locates it in the server log',
  };
}

function errorHandler(this: FastifyInstance, error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const problem = toProblem(error, request);
  // A database outage is not a bug: one line per request at warn, not a stack trace at error.
  if (error instanceof DatabaseUnavailable || problem.code === 'service_unavailable') {
    request.log.warn({ code: problem.code, detail: problem.detail }, 'unavailable');
  } else if (ERROR_STATUS[problem.code] >= 500) {
    request.log.error({ err: error }, 'request failed');
  }
  return sendProblem(request, reply, problem.code, problem.detail, problem.extra);
}

function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
) {
  const status = ERROR_STATUS[code];
  // Both are worth retrying soon: a 503 when the database or the queue recovers, a key in
  // flight when its first request finishes.
  if (status === 503 || code === 'idempotency_key_in_flight') reply.header('retry-after', '1');
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemBody(request, code, detail, extra));
}
