// Domain errors: plain classes with a stable machine-readable `code`. Services throw them and
// know nothing of HTTP; the single error handler (http/problem.handlers.ts) turns them into
// problem+json using the table below.

export const ERROR_STATUS = {
  validation_failed: 400,
  malformed_json: 400,
  json_too_deep: 400,
  malformed_url: 400,
  bad_request: 400,
  webhook_url_refused: 400,
  unauthorized: 401,
  invalid_payment_token: 403,
  admission_required: 403,
  admission_invalid: 403,
  admission_expired: 403,
  sale_not_open: 403,
  not_found: 404,
  insufficient_seats: 409,
  customer_limit_reached: 409,
  hold_not_active: 409,
  hold_booked: 409,
  hold_lifetime_exceeded: 409,
  seats_in_use: 409,
  queue_not_open: 409,
  waitlist_duplicate: 409,
  waitlist_not_needed: 409,
  waitlist_ended: 409,
  idempotency_key_in_flight: 409,
  hold_expired: 410,
  hold_released: 410,
  booking_cancelled: 410,
  request_timeout: 408,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  expectation_failed: 417,
  idempotency_key_reused: 422,
  customer_required: 422,
  hold_too_large: 422,
  waitlist_too_large: 422,
  rate_limited: 429,
  headers_too_large: 431,
  internal_error: 500,
  overloaded: 503,
  service_unavailable: 503,
  database_unavailable: 503,
  outcome_unknown: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_TITLES: Record<ErrorCode, string> = {
  validation_failed: 'Request failed validation',
  malformed_json: 'Request body is not valid JSON',
  json_too_deep: 'Request body is nested too deeply',
  malformed_url: 'Request URL is malformed',
  bad_request: 'Request is not valid HTTP/1.1',
  webhook_url_refused: 'Webhook URL refused',
  unauthorized: 'Missing or invalid admin credentials',
  invalid_payment_token: 'Payment token does not match this hold',
  admission_required: 'This event sells through its queue: join it and hold with the admission token',
  admission_invalid: 'Admission-Token is not valid for this hold',
  admission_expired: 'Admission-Token has expired',
  sale_not_open: 'The sale of this event has not opened yet',
  not_found: 'Not found',
  insufficient_seats: 'Not enough seats available',
  customer_limit_reached: 'This customer has reached the limit of seats for this event',
  customer_required: 'This event needs a customer on every hold',
  hold_too_large: 'More seats than one hold of this event may take',
  hold_not_active: 'Hold is not active',
  hold_booked: 'Hold is already booked',
  hold_lifetime_exceeded: 'Hold cannot live that long',
  seats_in_use: 'Seats are held or booked',
  queue_not_open: "This event's queue is not open yet",
  waitlist_duplicate: 'This customer is already on the waiting list of this event',
  waitlist_not_needed: 'Seats are available: hold them instead of joining the waiting list',
  waitlist_ended: 'This waiting-list entry has ended',
  waitlist_too_large: 'More seats than one waiting-list entry may ask for',
  idempotency_key_in_flight: 'A request with this Idempotency-Key is still in progress',
  hold_expired: 'Hold has expired',
  hold_released: 'Hold was released',
  booking_cancelled: 'Booking was cancelled',
  request_timeout: 'Request took too long to arrive',
  payload_too_large: 'Request body is too large',
  uri_too_long: 'Request URL is too long',
  unsupported_media_type: 'Unsupported media type',
  expectation_failed: 'Expect header cannot be met',
  idempotency_key_reused: 'Idempotency-Key was used for a different request',
  rate_limited: 'Too many requests',
  headers_too_large: 'Request header fields are too large',
  internal_error: 'Internal server error',
  overloaded: 'Too many requests waiting for this event',
  service_unavailable: 'Service unavailable',
  database_unavailable: 'The database is unavailable',
  outcome_unknown: 'The outcome of this request is unknown',
};

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra members for the problem body. Never put a hold id here (see http/problem.ts). */
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

/**
 * The database could not answer: it is down, restarting, failing over, frozen, or too busy.
 * Transient by nature, so the client is told to come back (503 with Retry-After) rather than
 * that the server is broken (500). `inDoubt` marks a failure during COMMIT: the change may have
 * been made, and only a retry that is safe to repeat (same Idempotency-Key, or for /book the
 * same hold and token) tells the true outcome.
 */
export class DatabaseUnavailable extends DomainError {
  constructor(
    reason: string,
    readonly inDoubt = false,
    override readonly cause?: unknown,
  ) {
    super(
      inDoubt ? 'outcome_unknown' : 'database_unavailable',
      inDoubt
        ? `the connection to the database was lost while committing, so this request may or may not have taken effect (${reason}); ` +
            'retry it with the same Idempotency-Key (for POST /book, the same hold_id and payment_token) to learn the true outcome'
        : `the database is unavailable (${reason}); retry after the Retry-After delay. Retrying with the same Idempotency-Key is always safe`,
    );
    this.name = 'DatabaseUnavailable';
  }
}

/** The message of whatever was thrown: an Error's message, or the thrown value as text. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * A row this code has already seen exist. Holds, bookings and events are never deleted, so a
 * second read finds it; should that ever be false, this says which row rather than a TypeError.
 */
export function present<T>(row: T | null | undefined, what: string): T {
  if (row == null) throw new Error(`${what} was there a moment ago and is gone`);
  return row;
}
