// Idempotency-Key over HTTP. Every POST, PATCH and DELETE route gets, as it is registered:
//   - the optional Idempotency-Key header and its 409/422 answers in its schema (so OpenAPI
//     documents them);
//   - a claim step that runs after the route's own preHandlers (authentication first), and
//     replays a stored response with Idempotent-Replayed: true;
// and every response finishes its claim in onSend: stored, unless the effect's transaction
// already stored it, or released on a 5xx so that a retry runs afresh.
//
// Scope: keys are per credential. With an Authorization header, its hash; else with an
// X-Payment-Token header, its hash; else the client's address. Anonymous clients thus never
// share a key space, so a guessed key cannot replay someone else's hold and its token.
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { App } from '../http/types.ts';
import { DomainError } from '../errors.ts';
import { PROBLEM_CONTENT_TYPE, problemBody } from '../http/problem.ts';
import { withProblems } from '../http/schemas.ts';
import type { Claim, IdempotencyService } from './idempotency.service.ts';
import { type Outcome, Recorder, type Rendered } from './recorder.ts';

declare module 'fastify' {
  interface FastifyInstance {
    idempotency: IdempotencyService;
  }
  interface FastifyRequest {
    idempotencyClaim: Claim | null;
  }
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const IdempotencyKeyHeader = Type.String({
  minLength: 1,
  maxLength: 255,
  // Visible ASCII; an RFC 8941 sf-string ("...") is accepted as well and its quotes dropped.
  pattern: '^[!-~]+$',
  description:
    'Makes the request safe to retry: the same key and request replay the first response ' +
    '(Idempotent-Replayed: true) for IDEMPOTENCY_KEY_TTL_SECONDS. Use a fresh UUID per request.',
});

const hex = (text: string): string => createHash('sha256').update(text).digest('hex');

export function registerIdempotency(app: App, keys: IdempotencyService): void {
  app.decorate('idempotency', keys);
  app.decorateRequest('idempotencyClaim', null);
  // Only routes that change something take keys: reads (a queue's status, polled by every
  // buyer in line) run neither step.
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    if (!methods.some((method) => UNSAFE_METHODS.has(method))) return;
    route.preHandler = [...[route.preHandler ?? []].flat(), claimStep];
    route.onSend = [...[route.onSend ?? []].flat(), finishStep];
    documentIdempotency(route);
  });
}

/** Records the answer of a claimed key (after the request hooks' onSend: it keeps the final headers). */
function finishStep(
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
  done: (error: Error | null, payload?: unknown) => void,
): void {
  const claim = request.idempotencyClaim;
  if (claim == null || claim.finished) return done(null, payload);
  finish(request, reply, payload).then(() => done(null, payload), done);
}

function documentIdempotency(route: RouteOptions): void {
  if (route.schema === undefined) return;
  const headers = (route.schema.headers ?? { type: 'object', properties: {} }) as { properties?: object };
  route.schema.headers = {
    ...headers,
    type: 'object',
    properties: { ...headers.properties, 'idempotency-key': IdempotencyKeyHeader },
  };
  route.schema.response = withProblems((route.schema.response ?? {}) as Record<number, unknown>, [
    'validation_failed',
    'idempotency_key_in_flight',
    'idempotency_key_reused',
  ]);
}

/**
 * Without an Idempotency-Key (most requests) this is a synchronous no-op: a callback-style
 * hook, so that a request without a key pays for no promise.
 */
function claimStep(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
  const raw = request.headers['idempotency-key'];
  if (typeof raw !== 'string') return done();
  const key = raw.length > 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw;
  request.server.idempotency
    .claim({ scope: scopeOf(request), key, fingerprint: fingerprintOf(request) })
    .then((result) => {
      if ('claim' in result) {
        request.idempotencyClaim = result.claim;
        return done();
      }
      const { status, body } = result.replay;
      reply.code(status).header('idempotent-replayed', 'true');
      if (body === '') return reply.send();
      reply.type(status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json; charset=utf-8').send(body);
    }, done);
}

function scopeOf(request: FastifyRequest): string {
  const { authorization } = request.headers;
  if (typeof authorization === 'string') return `authorization:${hex(authorization)}`;
  const token = request.headers['x-payment-token'];
  if (typeof token === 'string') return `payment-token:${hex(token)}`;
  return `address:${request.ip}`;
}

/** Method, path, payment token and body (key order ignored): what makes two requests the same. */
function fingerprintOf(request: FastifyRequest): Buffer {
  const token = request.headers['x-payment-token'];
  const head = JSON.stringify([request.method, request.url, typeof token === 'string' ? hex(token) : null]);
  // The same text as JSON.stringify([method, url, token, body with its keys sorted]), the form
  // fingerprints have always had, so keys stored before still match.
  return createHash('sha256')
    .update(`${head.slice(0, -1)},${canonicalJson(request.body)}]`)
    .digest();
}

/**
 * JSON text of a parsed JSON value with every object's keys sorted (as JSON.stringify orders
 * an object built from sorted keys: integer-like keys first), undefined as null. Iterative:
 * the parser bounds depth (MAX_JSON_DEPTH), but no body can exhaust the stack here either.
 */
export function canonicalJson(value: unknown): string {
  let out = '';
  // Work items: a value to write, or literal text (separators and closing brackets).
  const stack: Array<{ value: unknown } | string> = [{ value }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (typeof item === 'string') {
      out += item;
      continue;
    }
    const current = item.value;
    if (current === null || current === undefined || typeof current !== 'object') {
      out += JSON.stringify(current ?? null);
    } else if (Array.isArray(current)) {
      out += '[';
      stack.push(']');
      for (let i = current.length - 1; i >= 0; i--) {
        stack.push({ value: current[i] });
        if (i > 0) stack.push(',');
      }
    } else {
      const object = current as Record<string, unknown>;
      const keys = Object.keys(
        Object.fromEntries(
          Object.keys(object)
            .sort()
            .map((key) => [key, 0]),
        ),
      );
      out += '{';
      stack.push('}');
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: object[keys[i]!] });
        stack.push(`${i > 0 ? ',' : ''}${JSON.stringify(keys[i])}:`);
      }
    }
  }
  return out;
}

async function finish(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
  const claim = request.idempotencyClaim;
  // Routes of plugins registered before this (the docs) have no claim slot at all.
  if (claim == null || claim.finished) return;
  claim.finished = true;
  const keys = request.server.idempotency;
  try {
    // A response without a body (204) is stored as empty, and replayed as such; only a stream
    // cannot be stored.
    const body = payload == null ? '' : payload;
    if (reply.statusCode >= 500 || typeof body !== 'string') await keys.release(claim);
    else if (claim.recordedStatus !== reply.statusCode) {
      await keys.completeAlone(claim, { status: reply.statusCode, body });
    }
  } catch (error) {
    // The response still goes out; the key stays in flight until its lock times out.
    request.log.error({ err: error }, 'could not finish the Idempotency-Key claim');
  }
}

/**
 * The recorder a route hands its service, or undefined without an Idempotency-Key. `render`
 * turns a result into the response; refusals become the same problem the error handler sends.
 */
export function recorderFor<T>(request: FastifyRequest, render: (result: T) => Rendered): Recorder<T> | undefined {
  const claim = request.idempotencyClaim;
  if (claim == null) return undefined;
  return new Recorder<T>(request.server.idempotency, claim, (outcome: Outcome<T>) =>
    outcome instanceof DomainError
      ? { status: outcome.status, body: problemBody(request, outcome.code, outcome.message, outcome.details) }
      : render(outcome),
  );
}

/** Sends what `render` made of a result: the same status and body a replay will send. */
export function sendRendered(reply: FastifyReply, rendered: Rendered): FastifyReply {
  return rendered.body === null ? reply.code(rendered.status).send() : reply.code(rendered.status).send(rendered.body);
}
