// Where every failure becomes a problem+json answer (the bodies are built in problem.ts):
//   - the error handler, for whatever a route, hook or parser threw;
//   - the not-found handler;
//   - Fastify's frameworkErrors, for URLs the router cannot take;
//   - Node's clientError and checkExpectation, for bytes that never became a Fastify request.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { DatabaseUnavailable, DomainError, ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { requestIdOf } from './hooks.ts';
import { BODY_LIMIT_BYTES } from './json-body.ts';
import { PROBLEM_CONTENT_TYPE, problemBody } from './problem.ts';
import type { App } from './types.ts';
import { describeValidation } from './validation.ts';

/** Node's limit on the request line and headers together (its --max-http-header-size default). */
const MAX_HEADER_BYTES = 16 * 1024;

interface ProblemParts {
  code: ErrorCode;
  detail: string;
  extra?: Record<string, unknown>;
}

/**
 * What an error that is neither a DomainError nor a validation failure means, by its status,
 * whichever part of Fastify or a plugin raised it.
 */
const PROBLEM_BY_STATUS: Partial<Record<number, [ErrorCode, string]>> = {
  400: ['malformed_json', 'the body is not valid JSON'],
  413: ['payload_too_large', `request bodies are limited to ${BODY_LIMIT_BYTES} bytes`],
  415: ['unsupported_media_type', 'request bodies must be application/json'],
  429: ['rate_limited', 'too many requests from this client'],
  503: ['service_unavailable', 'the server is shutting down'],
};

/**
 * The error handler, the not-found handler, and the answer to an Expect header other than
 * 100-continue. `securityHeaders` are set on that last answer, which no hook sees.
 */
export function registerProblemHandlers(app: App, securityHeaders: Record<string, string>): void {
  // Expect: anything but 100-continue. Node answers a bare 417 unless someone listens.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const body = problemBody(
      { url: request.url, id: requestIdOf(request) },
      'expectation_failed',
      'the only Expect this server meets is 100-continue',
    );
    const text = JSON.stringify(body);
    response.writeHead(body.status, {
      ...securityHeaders,
      ...rawProblemHeaders(body.request_id),
      'content-length': Buffer.byteLength(text),
    });
    response.end(text);
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`),
  );
}

/**
 * Fastify's frameworkErrors option: a URL the router cannot take (bad percent-encoding, a path
 * parameter over MAX_PARAM_LENGTH characters) is a problem like any other, not Fastify's own JSON.
 */
/** The longest path parameter, in characters: a queue ticket (a few hundred) fits. */
export const MAX_PARAM_LENGTH = 1024;

export function frameworkErrorHandler(
  securityHeaders: Record<string, string>,
): NonNullable<FastifyServerOptions['frameworkErrors']> {
  return (error, request, reply) => {
    reply.headers(securityHeaders);
    const problem =
      error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? { code: 'uri_too_long' as const, detail: `a segment of the path is over ${MAX_PARAM_LENGTH} characters` }
        : error.code === 'FST_ERR_BAD_URL'
          ? { code: 'malformed_url' as const, detail: 'the path is not validly percent-encoded' }
          : toProblem(error, request);
    void sendProblem(request, reply, problem.code, problem.detail);
  };
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
export function clientErrorHandler(securityHeaders: Record<string, string>) {
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

/** Maps whatever was thrown to a problem. Unknown errors become a 500 that reveals nothing. */
function toProblem(error: FastifyError | DomainError | Error, request: FastifyRequest): ProblemParts {
  if (error instanceof DomainError) return { code: error.code, detail: error.message, extra: error.details };
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const { detail, errors } = describeValidation(fastifyError, request);
    return { code: 'validation_failed', detail, extra: { errors } };
  }
  if (fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return { code: 'malformed_json', detail: 'the body is empty but the content type says JSON' };
  }
  const status = error instanceof SyntaxError ? 400 : fastifyError.statusCode;
  const known = status === undefined ? undefined : PROBLEM_BY_STATUS[status];
  if (known !== undefined) return { code: known[0], detail: known[1] };
  if (status !== undefined && status >= 400 && status < 500) {
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
  // Set here too for the problems no onRequest hook saw (a URL the router could not take).
  reply.header('x-request-id', request.id).header('cache-control', 'no-store');
  // Fastify closes the connection after any body it could not parse, lest the unread rest be
  // taken for the next request. Once the body was read to its end nothing is left: keep it.
  if (request.raw.complete && reply.getHeader('connection') === 'close') reply.removeHeader('connection');
  return reply
    .code(status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemBody(request, code, detail, extra));
}
