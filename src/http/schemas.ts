// Schemas shared by every route. The same TypeBox objects validate requests, serialize
// responses and generate the OpenAPI document.
import { type SchemaOptions, type Static, type TSchema, type TUnsafe, Type } from '@sinclair/typebox';
import { CUSTOMER_MAX_LENGTH } from '../customer.ts';
import { ERROR_STATUS, type ErrorCode } from '../errors.ts';

/** Largest id a JSON number carries exactly. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

export const Id = Type.Integer({ minimum: 1, maximum: MAX_ID });

/** Path ids arrive as text and are not coerced, so their shape is checked here. */
export const IdParams = Type.Object(
  { id: Type.String({ pattern: '^[1-9][0-9]{0,14}$', description: 'a positive integer' }) },
  { additionalProperties: false },
);

export const Timestamp = Type.String({ format: 'date-time' });

/**
 * A response field that is a value or null, as a JSON Schema type list (`["integer", "null"]`,
 * OpenAPI 3.1) rather than `anyOf`: the response serializer (fast-json-stringify) writes a type
 * list directly, while for `anyOf` it runs a schema validator on the value, per field, per answer,
 * to pick the branch (a date-time's format check included). A queue status, with six such fields,
 * was 1.3 µs to serialize instead of 0.3. For primitive schemas only; requests keep `Type.Union`.
 */
export const Nullable = <T extends TSchema>(schema: T, options: SchemaOptions = {}): TUnsafe<Static<T> | null> =>
  Type.Unsafe<Static<T> | null>({ ...schema, ...options, type: [schema.type as string, 'null'] });

/**
 * A customer as a request carries it: 1 to CUSTOMER_MAX_LENGTH characters, none a control
 * character (PostgreSQL text cannot hold NUL, and none belongs in an account id or address).
 */
export const CustomerText = (description: string) =>
  Type.String({
    minLength: 1,
    maxLength: CUSTOMER_MAX_LENGTH,
    pattern: '^[^\\u0000-\\u001f\\u007f]+$',
    description,
  });

/** The secret issued with a hold. Any length within bounds is accepted, and a wrong one is 403. */
export const PaymentToken = Type.String({ minLength: 1, maxLength: 256 });

export const PaymentTokenHeaders = Type.Object({
  'x-payment-token': Type.String({
    minLength: 1,
    maxLength: 256,
    description: 'The payment_token issued with the hold',
  }),
});

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
    held: Type.Optional(Type.Integer({ description: 'Seats held now (seats_in_use)' })),
    booked: Type.Optional(Type.Integer({ description: 'Seats booked now (seats_in_use)' })),
    minimum_total_seats: Type.Optional(Type.Integer({ description: 'held + booked (seats_in_use)' })),
    max_expires_at: Type.Optional(
      Type.String({ format: 'date-time', description: 'Latest deadline allowed (hold_lifetime_exceeded)' }),
    ),
    max_hold_lifetime_seconds: Type.Optional(Type.Integer()),
    booking_id: Type.Optional(Type.Integer({ description: 'The cancelled booking (booking_cancelled)' })),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

export interface ProblemResponse {
  description: string;
  content: { 'application/problem+json': { schema: TSchema } };
}

// Which codes each documented problem response stands for, so more can be merged in later.
const codesOf = new WeakMap<object, ErrorCode[]>();

function problemResponse(codes: ErrorCode[]): ProblemResponse {
  const response = {
    description: `Problem (application/problem+json), code: ${codes.join(' | ')}`,
    content: { 'application/problem+json': { schema: Problem } },
  };
  codesOf.set(response, codes);
  return response;
}

/** Problem responses for the given error codes (and internal_error), keyed by HTTP status. */
export function problems(...codes: ErrorCode[]): Record<number, ProblemResponse> {
  return withProblems({}, [...codes, 'internal_error']);
}

/** `responses` with problem responses for `codes` added, merging codes that share a status. */
export function withProblems<R extends Record<number | string, unknown>>(responses: R, codes: ErrorCode[]): R {
  const merged: Record<number | string, unknown> = { ...responses };
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    const existing = merged[status];
    const known = typeof existing === 'object' && existing !== null ? codesOf.get(existing) : undefined;
    if (existing !== undefined && known === undefined) continue;
    if (known?.includes(code)) continue;
    merged[status] = problemResponse([...(known ?? []), code]);
  }
  return merged as R;
}

/** Errors any route with a JSON body can return before it runs. */
export const BODY_ERRORS: ErrorCode[] = [
  'validation_failed',
  'malformed_json',
  'json_too_deep',
  'payload_too_large',
  'unsupported_media_type',
];
