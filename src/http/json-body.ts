// The JSON body parser, in place of Fastify's own, for two reasons.
//
// A client must be able to read its 413. Fastify's parser stops reading a body at the limit
// (at once, unread, when Content-Length is over it) and marks the reply Connection: close,
// since what is left unread would otherwise be taken for the next request. Node's server then
// closes the socket as soon as the 413 is written, with the rest of the body still arriving:
// the kernel answers it with a reset, and a client still writing (fetch, undici) fails with
// `write EPIPE` and never reads the 413. So a body over BODY_LIMIT_BYTES is read to its end and
// discarded, up to BODY_DRAIN_LIMIT_BYTES, and only then answered; the connection stays open
// (http/hooks.ts drops Fastify's Connection: close once the body has been read to its end).
// Past that bound the 413 is sent at once and the connection closed: a client sending that much
// may see the connection reset instead.
//
// Depth is bounded. A body nested deeper than MAX_JSON_DEPTH arrays and objects is 400
// json_too_deep before it is parsed, on every route, so nothing downstream (the Idempotency-Key
// fingerprint, validation, serializers) ever recurses over hostile depth.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../errors.ts';

/** The largest JSON body accepted. */
export const BODY_LIMIT_BYTES = 16 * 1024;
/**
 * A body over BODY_LIMIT_BYTES is read and discarded up to this many bytes before its 413 is
 * sent, so that a client still writing it can read the answer (8 MiB covers a client that
 * sends a few megabytes by mistake); past it, the connection is closed.
 */
export const BODY_DRAIN_LIMIT_BYTES = 8 * 1024 * 1024;
/** The deepest nesting of arrays and objects a JSON body may have. The API's own bodies need 3. */
export const MAX_JSON_DEPTH = 32;

const tooLarge = () => new DomainError('payload_too_large', `request bodies are limited to ${BODY_LIMIT_BYTES} bytes`);
const tooDeep = () =>
  new DomainError('json_too_deep', `JSON bodies may nest arrays and objects at most ${MAX_JSON_DEPTH} deep`);

type Done = (error: Error | null, body?: unknown) => void;

export function registerJsonParser(app: FastifyInstance): void {
  // Fastify's own parsing of the text (prototype poisoning refused), once the bytes are in.
  const parseText = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    (request: FastifyRequest, payload: NodeJS.ReadableStream, done: Done) => {
      readBody(payload, Number(request.headers['content-length']), (...[error, body]) => {
        if (error !== null) return done(error);
        if (nestedDeeperThan(body, MAX_JSON_DEPTH)) return done(tooDeep());
        // Fastify's default parser answers through `done`; it returns nothing.
        void parseText(request, body.toString('utf8'), done);
      });
    },
  );
}

function readBody(
  payload: NodeJS.ReadableStream,
  declaredLength: number,
  done: (...result: [error: Error] | [error: null, body: Buffer]) => void,
): void {
  // Announced past the drain bound: not worth reading.
  if (declaredLength > BODY_DRAIN_LIMIT_BYTES) return done(tooLarge());
  let received = 0;
  let chunks: Buffer[] | null = [];
  const stop = () => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
  };
  function onData(chunk: Buffer | string) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    received += buffer.length;
    if (received > BODY_DRAIN_LIMIT_BYTES) {
      stop();
      payload.pause();
      return done(tooLarge());
    }
    // Over the limit: read on to the end, keeping nothing.
    if (received > BODY_LIMIT_BYTES) chunks = null;
    else chunks?.push(buffer);
  }
  function onEnd() {
    stop();
    if (chunks === null) return done(tooLarge());
    done(null, Buffer.concat(chunks, received));
  }
  function onError(error: Error & { statusCode?: number }) {
    stop();
    // The client went away mid-body; nobody reads this answer.
    if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
    done(error);
  }
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * Whether JSON text nests arrays and objects deeper than `max`, by one pass over its bytes
 * (brackets inside strings do not count). Multi-byte UTF-8 never contains these ASCII bytes.
 */
export function nestedDeeperThan(text: Buffer, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const byte = text[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) depth--;
  }
  return false;
}
