// Schemas shared by every route. The same TypeBox objects validate requests, serialize
// responses and generate the OpenAPI document.
import { Type, type TSchema } from '@sinclair/typebox';
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';

/** Largest id a JSON number carries exactly. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

export const Id = Type.Integer({ minimum: 1, maximum: MAX_ID });

/** Path ids arrive as text and are not coerced, so their shape is checked here. */
export const IdParams = Type.Object(
  { id: Type.String({ pattern: '^[1-9][0-9]{0,14}$', description: 'A positive integer id' }) },
  { additionalProperties: false },
);

export const Timestamp = Type.String({ format: 'date-time' });

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'URI naming the problem type' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ enum: Object.keys(ERROR_STATUS), description: 'Stable machine-readable error code' }),
    instance: Type.Optional(Type.String()),
    request_id: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), {
        description: 'Each validation failure (validation_failed only)',
      }),
    ),
    available: Type.Optional(Type.Integer({ description: 'Seats available when refused (insufficient_seats)' })),
    requested: Type.Optional(Type.Integer()),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

/** Problem responses for the given error codes, keyed by HTTP status, for a route schema. */
export function problems(...codes: ErrorCode[]): Record<number, TSchema> {
  const responses: Record<number, TSchema> = {};
  for (const code of [...codes, 'internal_error' as const]) responses[ERROR_STATUS[code]] = Problem;
  return responses;
}

/** Errors any route with a JSON body can return before it runs. */
export const BODY_ERRORS: ErrorCode[] = ['validation_failed', 'payload_too_large', 'unsupported_media_type'];
