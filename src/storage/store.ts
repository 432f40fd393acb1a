// The storage seam. Services call these functions and never write SQL; each backend
// (postgres.store.ts for PGlite and PostgreSQL, with its Idempotency-Key statements in
// postgres.idempotency.ts; mysql.store.ts for MySQL/MariaDB) keeps its SQL to itself. A function that takes a `Tx` must run inside `store.transaction`, and
// every function that changes an event's holds or bookings expects the caller to have locked
// that event first with `lockEvent` (one lock order: event row, then its holds and bookings,
// then idempotency keys). Never call a function without a `Tx` while a transaction is open on
// the same store: PGlite has one connection, and the call would wait for the transaction forever.

declare const txBrand: unique symbol;
/** An open transaction. Opaque above storage. */
export type Tx = { readonly [txBrand]: true };

export type HoldStatus = 'active' | 'expired' | 'booked' | 'released';
export type BookingStatus = 'confirmed' | 'cancelled';

export interface EventRow {
  id: number;
  name: string;
  totalSeats: number;
  createdAt: Date;
}

export interface Snapshot {
  eventId: number;
  name: string;
  total: number;
  available: number;
  held: number;
  booked: number;
}

export interface LockedEvent {
  id: number;
  available: number;
}

export interface NewHold {
  qty: number;
  paymentTokenHash: Buffer;
}

export interface HoldRow {
  id: number;
  eventId: number;
  qty: number;
  status: HoldStatus;
  paymentTokenHash: Buffer;
  createdAt: Date;
  expiresAt: Date;
  bookingId: number | null;
  /** Status of its booking; null without one. */
  bookingStatus: BookingStatus | null;
}

export interface BookingRow {
  id: number;
  eventId: number;
  holdId: number;
  qty: number;
  status: BookingStatus;
  createdAt: Date;
  cancelledAt: Date | null;
  /** The hash of its hold's payment token, which also grants read access to the booking. */
  paymentTokenHash: Buffer;
}

/** An event's row as stored: `held` still includes lapsed, unreclaimed holds. */
export interface EventBooks {
  id: number;
  name: string;
  total: number;
  available: number;
  held: number;
  booked: number;
}

export interface IdempotencyClaim {
  keyHash: Buffer;
  requestHash: Buffer;
  claimId: string;
  now: Date;
  expiresAt: Date;
  /** An unfinished claim locked at or before this instant is presumed dead. */
  staleBefore: Date;
}

export interface IdempotencyKeyRow {
  keyHash: Buffer;
  requestHash: Buffer;
  claimId: string;
  lockedAt: Date;
  /** Null while the request that claimed the key is still in flight. */
  responseStatus: number | null;
  responseBody: Buffer | null;
  expiresAt: Date;
}

export interface IdempotencyCompletion {
  keyHash: Buffer;
  claimId: string;
  status: number;
  body: Buffer;
}

/**
 * Operations of the hold lifecycle, booking cancellation, event listing and editing, and
 * Idempotency-Key storage (issue 4), kept apart from the foundation's for reading.
 */
export interface LifecycleStore {
  /** insertEvent inside a transaction, so an Idempotency-Key can be recorded with it. */
  insertEventTx(tx: Tx, name: string, totalSeats: number, now: Date): Promise<EventRow>;
  /** Snapshots (exact at `now`) of events with id > afterId, by id, at most `limit`. */
  listSnapshots(afterId: number, limit: number, now: Date): Promise<Snapshot[]>;
  /** lockEvent that also returns the stored counters and name. */
  lockEventBooks(tx: Tx, eventId: number): Promise<EventBooks | null>;
  /** Sets name and total_seats and recomputes available = total - held - booked (event locked). */
  updateEvent(tx: Tx, eventId: number, name: string, totalSeats: number): Promise<void>;
  /** findHold under the transaction, row-locking the hold (its event locked first). */
  lockHold(tx: Tx, holdId: number): Promise<HoldRow | null>;
  /** Moves an active hold's deadline; false when the hold is not active. Counters unchanged. */
  setHoldExpiry(tx: Tx, holdId: number, expiresAt: Date): Promise<boolean>;
  findBooking(bookingId: number): Promise<BookingRow | null>;
  /** Confirmed -> cancelled, moving its seats from booked to available; false if not confirmed. */
  cancelBooking(tx: Tx, bookingId: number, now: Date): Promise<boolean>;
  /**
   * One statement: inserts the key as in flight, or takes over a row that has expired or whose
   * unfinished claim is stale and was made for the same request. True when the claim is ours.
   */
  claimIdempotencyKey(claim: IdempotencyClaim): Promise<boolean>;
  findIdempotencyKey(keyHash: Buffer): Promise<IdempotencyKeyRow | null>;
  /**
   * Locks the key rows still in flight under these claims until the transaction ends, so no
   * claim can be taken over while its effect is being written; returns the claim ids still held.
   */
  lockIdempotencyClaims(tx: Tx, claims: Array<{ keyHash: Buffer; claimId: string }>): Promise<Set<string>>;
  /**
   * Stores the responses of in-flight keys still owned by the given claims, in one statement;
   * returns how many it stored (fewer means a claim was taken over).
   */
  completeIdempotencyKeys(tx: Tx, completions: IdempotencyCompletion[]): Promise<number>;
  /** Deletes the key if it is still in flight under this claim (the request stored nothing). */
  releaseIdempotencyKey(keyHash: Buffer, claimId: string): Promise<void>;
  /** Deletes up to `limit` keys expired at `now`, skipping rows others have locked. */
  purgeIdempotencyKeys(now: Date, limit: number): Promise<number>;
}

export interface Store extends LifecycleStore {
  readonly backend: 'pglite' | 'postgres' | 'mysql';
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  migrate(): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** True when the error is this backend's unique-constraint violation. */
  isUniqueViolation(error: unknown): boolean;

  insertEvent(name: string, totalSeats: number, now: Date): Promise<EventRow>;
  /** Exact at `now`: lapsed holds count as available even before they are reclaimed. */
  snapshot(eventId: number, now: Date): Promise<Snapshot | null>;

  /** Locks the event row until the transaction ends; null when there is no such event. */
  lockEvent(tx: Tx, eventId: number): Promise<LockedEvent | null>;
  /** Like lockEvent, but returns null at once if another transaction holds the lock. */
  lockEventSkipLocked(tx: Tx, eventId: number): Promise<LockedEvent | null>;
  /** Marks the event's lapsed holds 'expired' and moves their seats back; returns seats moved. */
  reclaimLapsedHolds(tx: Tx, eventId: number, now: Date): Promise<{ holds: number; seats: number }>;
  /** Inserts granted holds and moves their seats from available to held; ids in input order. */
  insertHolds(tx: Tx, eventId: number, holds: NewHold[], now: Date, expiresAt: Date): Promise<number[]>;
  /** Books an active, unexpired hold; null when the hold is no longer bookable. */
  bookHold(tx: Tx, hold: HoldRow, now: Date): Promise<number | null>;
  /** Ends an active hold now ('expired' or 'released'); false when it was not active. */
  endHold(tx: Tx, hold: HoldRow, status: 'expired' | 'released', now: Date): Promise<boolean>;

  findHold(holdId: number): Promise<HoldRow | null>;
  /**
   * Recounts an event's held and booked seats from the hold and booking rows themselves,
   * with SUMs (cancelled bookings are not booked). Never on a hot path: tests and the benchmark use it to audit the counters.
   */
  recount(eventId: number, now: Date): Promise<{ held: number; booked: number }>;
  /** Events that have lapsed, unreclaimed holds at `now`, oldest first. */
  eventsWithLapsedHolds(now: Date, limit: number): Promise<number[]>;
}

/** @deprecated Every Store is complete now; kept for code written while it was not. */
export type CompleteStore = Store;
