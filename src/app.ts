// The composition root: buildApp wires config, storage and clock into services, and registers
// the HTTP edge and the route plugins. It never listens: cli.ts does, and tests call
// app.inject() or listen on port 0 themselves.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import { adminRoutes } from './admin/admin.routes.ts';
import { queueRoutes } from './admission/queue.routes.ts';
import { QueueService } from './admission/queue.service.ts';
import { AdminService } from './admin/admin.service.ts';
import { bookingRoutes } from './bookings/bookings.routes.ts';
import { BookingsService } from './bookings/bookings.service.ts';
import { ChangeFeed } from './changes/feed.ts';
import { changeRoutes } from './changes/changes.routes.ts';
import { ChangesService } from './changes/changes.service.ts';
import { type Clock, systemClock } from './clock.ts';
import { consoleRoutes } from './console/console.routes.ts';
import type { Config } from './config.ts';
import { eventRoutes } from './events/events.routes.ts';
import { EventsService } from './events/events.service.ts';
import { HoldLifecycleService } from './holds/hold-lifecycle.service.ts';
import { holdRoutes } from './holds/holds.routes.ts';
import { HoldsService } from './holds/holds.service.ts';
import { adminGuard } from './http/admin-guard.ts';
import { API_SECURITY_HEADERS, registerRequestHooks, requestIdOf } from './http/hooks.ts';
import { BODY_LIMIT_BYTES, registerJsonParser } from './http/json-body.ts';
import { registerOpenApi } from './http/openapi.ts';
import {
  MAX_PARAM_LENGTH,
  clientErrorHandler,
  frameworkErrorHandler,
  registerProblemHandlers,
} from './http/problem.handlers.ts';
import { probeRoutes } from './http/probes.routes.ts';
import { registerRateLimits } from './http/rate-limit.ts';
import type { App } from './http/types.ts';
import { registerIdempotency } from './idempotency/idempotency.http.ts';
import { IdempotencyService } from './idempotency/idempotency.service.ts';
import { listingRoutes } from './listings/listings.routes.ts';
import { ListingsService } from './listings/listings.service.ts';
import { type Metrics, createMetrics } from './metrics.ts';
import type { Store } from './storage/store.ts';
import { WaitlistService } from './waitlist/waitlist.service.ts';
import { waitlistRoutes } from './waitlist/waitlist.routes.ts';
import { webhookRoutes } from './webhooks/webhooks.routes.ts';
import { WebhooksService } from './webhooks/webhooks.service.ts';

/** What buildApp returns, for its callers (cli, tests, bench); modules under src/ use http/types.ts. */
export type { App } from './http/types.ts';

export interface AppDeps {
  config: Config;
  store: Store;
  clock?: Clock;
  logger?: FastifyBaseLogger;
  metrics?: Metrics;
}

/**
 * Connections the kernel keeps waiting for accept(). Node's default, 511, overflows when a sale
 * opens and thousands of buyers connect in the same second: the kernel drops the SYNs past it,
 * and each such client waits for its 1-second SYN retry (2,000 streams opened at once took
 * 1.2–1.3 s for the last first message). The kernel caps it at net.core.somaxconn.
 */
export const LISTEN_BACKLOG = 4096;

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config, store } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics();
  const headers = API_SECURITY_HEADERS;

  const app: App = Fastify({
    ...(deps.logger === undefined ? { logger: false } : { loggerInstance: deps.logger }),
    // One access-log line per request, at ACCESS_LOG_LEVEL (http/hooks.ts), instead of
    // Fastify's two at info. (The top-level disableRequestLogging option is deprecated.)
    logController: new LogController({ disableRequestLogging: true }),
    // Enforced by the JSON parser (http/json-body.ts), which reads an oversized body to its end.
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: requestIdOf,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: frameworkErrorHandler(headers),
    clientErrorHandler: clientErrorHandler(headers),
    // Per-client rate limits key on the client's address; behind proxies, believe that many.
    trustProxy: config.trustProxyHops > 0 ? (_address: string, hop: number) => hop < config.trustProxyHops : false,
    // Strict bodies: nothing coerced ("5" is not 5), nothing silently dropped.
    // verbose: errors carry their schema, whose description says what is allowed (http/validation.ts).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true, verbose: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Only JSON bodies are accepted; anything else is 415 before a route runs.
  app.removeContentTypeParser(['text/plain']);
  registerJsonParser(app);
  registerProblemHandlers(app, headers);
  registerRequestHooks(app, config, metrics);
  // Root-level hooks, handlers and onRoute steps, registered before the route plugins so that
  // every route gets them (a plugin inherits what its parent has when it is registered).
  await registerRateLimits(app, config.redisUrl, metrics);
  await registerOpenApi(app);
  registerIdempotency(app, new IdempotencyService(store, clock, config));

  // The change feed: every service writes its changes through the outbox, in its transaction.
  const feed = new ChangeFeed(store, config.changeFeed, app.log);
  app.decorate('changeFeed', feed);
  app.addHook('onReady', () => feed.start());
  app.addHook('onClose', () => feed.stop());
  const { outbox } = feed;

  const requireAdmin = adminGuard(config.adminToken, app.log);
  const events = new EventsService(store, clock, outbox, config.waitlistOfferTtlSeconds);
  const holds = new HoldsService(store, clock, config, outbox, metrics);
  // Admission runs in every serving process, once per event among them (admission/queue.service.ts).
  const queue = new QueueService(store, clock, config, app.log, metrics);
  app.decorate('queue', queue);
  app.addHook('onReady', () => queue.start());
  app.addHook('onClose', () => queue.stop());
  if (config.admissionKeys.ephemeral)
    app.log.info(
      'ADMISSION_SECRET is not set: queue tickets and admission tokens are signed with a key of this process',
    );
  const lifecycle = new HoldLifecycleService(store, clock, config, outbox);
  const bookings = new BookingsService(store, clock, config, outbox, metrics);
  const admin = new AdminService(store, clock, outbox, config, metrics);
  // Registered in this order, which is the order of the paths in the OpenAPI document.
  await app.register(eventRoutes, { events, requireAdmin, config });
  await app.register(holdRoutes, { holds, lifecycle, queue, config });
  await app.register(queueRoutes, { queue, requireAdmin, config });
  await app.register(bookingRoutes, { bookings, requireAdmin, config });
  const waitlist = new WaitlistService(store, clock, {
    store,
    outbox,
    offerTtlSeconds: config.waitlistOfferTtlSeconds,
  });
  await app.register(waitlistRoutes, { waitlist, queue, requireAdmin, config });
  await app.register(adminRoutes, { admin, requireAdmin });
  await app.register(changeRoutes, { changes: new ChangesService(store, clock, feed), requireAdmin });
  await app.register(webhookRoutes, { webhooks: new WebhooksService(store, clock, config), requireAdmin });
  await app.register(probeRoutes, { store, metrics });
  await app.register(listingRoutes, { listings: new ListingsService(store, clock), requireAdmin, config });
  await app.register(consoleRoutes, { requireAdmin, config });
  return app;
}
