// The OpenAPI 3.1 document, generated from the route schemas, and its interactive docs at /docs.
// Every route's document also lists the problems any route can answer (documentCommonProblems).
import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { RouteOptions } from 'fastify';
import type { ErrorCode } from '../errors.ts';
import { BODY_ERRORS, withProblems } from './schemas.ts';
import type { App } from './types.ts';

/** The OpenAPI document's version is the package's. */
const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Registers the document and the docs; routes registered afterwards are documented. */
export async function registerOpenApi(app: App): Promise<void> {
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
  app.addHook('onRoute', documentCommonProblems);
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
