// RFC 9457 problem bodies. The error handler sends them, and an Idempotency-Key stores the same
// body for a replay, so both build it here.
import type { FastifyRequest } from 'fastify';
import { ERROR_STATUS, ERROR_TITLES, type ErrorCode } from '../errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  request_id: string;
  [member: string]: unknown;
}

export function problemBody(
  /** Without a url (an answer to bytes that never became a request), the body has no instance. */
  request: Pick<FastifyRequest, 'id'> & { url?: string },
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
): Problem {
  const status = ERROR_STATUS[code];
  // The design's demo tells a winning hold from a losing one by grepping for "hold_id", so
  // no problem body may carry that key, whatever a service put in `extra`.
  const { hold_id: _dropped, ...safeExtra } = extra;
  return {
    type: `urn:box-office:problem:${code}`,
    title: ERROR_TITLES[code],
    status,
    detail,
    code,
    ...(request.url === undefined ? {} : { instance: request.url.split('?')[0]! }),
    request_id: request.id,
    ...safeExtra,
  };
}
