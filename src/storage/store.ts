// The storage seam. Services call these functions and never write SQL; each backend
// (postgres.store.ts for PGlite and PostgreSQL, mysql.store.ts for MySQL/MariaDB) keeps all of
// its SQL in one file. A function that takes a `Tx` must run inside `store.transaction`, and
// every function that changes an event's holds or bookings expects the caller to have locked
// that event first with `lockEvent` (one lock order: event row, then its holds).

declare const txBrand: unique symbol;
/** An open transaction. Opaque above storage. */
export type Tx = { readonly [txBrand]: true };

export type HoldStatus = 'active' | 'expired' | 'booked' | 'released';

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
}

export interface Store {
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
   * with SUMs. Never on a hot path: tests and the benchmark use it to audit the counters.
   */
  recount(eventId: number, now: Date): Promise<{ held: number; booked: number }>;
  /** Events that have lapsed, unreclaimed holds at `now`, oldest first. */
  eventsWithLapsedHolds(now: Date, limit: number): Promise<number[]>;
}
