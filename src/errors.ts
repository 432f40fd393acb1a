// Domain errors: plain classes with a stable machine-readable `code`. Services throw them and
// know nothing of HTTP; the single error handler in app.ts turns them into problem+json using
// the table below.

export const ERROR_STATUS = {
  validation_failed: 400,
  malformed_json: 400,
  unauthorized: 401,
  invalid_payment_token: 403,
  not_found: 404,
  insufficient_seats: 409,
  hold_not_active: 409,
  hold_expired: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  overloaded: 503,
  service_unavailable: 503,
  internal_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_TITLES: Record<ErrorCode, string> = {
  validation_failed: 'Request failed validation',
  malformed_json: 'Request body is not valid JSON',
  unauthorized: 'Missing or invalid admin credentials',
  invalid_payment_token: 'Payment token does not match this hold',
  not_found: 'Not found',
  insufficient_seats: 'Not enough seats available',
  hold_not_active: 'Hold is not active',
  hold_expired: 'Hold has expired',
  payload_too_large: 'Request body is too large',
  unsupported_media_type: 'Unsupported media type',
  overloaded: 'Too many requests waiting for this event',
  service_unavailable: 'Service unavailable',
  internal_error: 'Internal server error',
};

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra members for the problem body. Never put a hold id here (see app.ts). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export const notFound = (what: string, id: number | string): DomainError =>
  new DomainError('not_found', `${what} ${id} does not exist`);
