// The storage seam: what services may ask of the database, one feature at a time. Each feature's
// statements live in their own module (events.sql.ts, holds.sql.ts, bookings.sql.ts,
// idempotency.sql.ts), written once where both SQL dialects agree and once per dialect where
// they do not. A function that takes a `Tx` runs inside `store.transaction`, and one that
// changes an event's holds or bookings expects the caller to have locked that event first
// (lockEvent): one lock order, event row, then its holds and bookings, then Idempotency-Keys.
// Never call a function without a `Tx` while a transaction is open on the same store: PGlite has
// one connection, and the call would wait for the transaction forever.
import { type BookingStore, bookingStatements } from './bookings.sql.ts';
import { type ChangeStore, changeStatements } from './changes.sql.ts';
import { type EventStore, eventStatements } from './events.sql.ts';
import { type HoldStore, holdStatements } from './holds.sql.ts';
import { type IdempotencyStore, idempotencyStatements } from './idempotency.sql.ts';
import { type ListingStore, listingStatements } from './listings.sql.ts';
import { type QueueStore, queueStatements } from './queue.sql.ts';
import type { SqlDatabase, Tx } from './sql.ts';
import { type WaitlistStore, waitlistStatements } from './waitlist.sql.ts';
import { type WebhookStore, webhookStatements } from './webhooks.sql.ts';

export type { Tx } from './sql.ts';
export type {
  BookingStore,
  ChangeStore,
  EventStore,
  HoldStore,
  IdempotencyStore,
  ListingStore,
  QueueStore,
  WaitlistStore,
  WebhookStore,
};

export interface Store
  extends
    EventStore,
    HoldStore,
    BookingStore,
    IdempotencyStore,
    ChangeStore,
    WebhookStore,
    ListingStore,
    QueueStore,
    WaitlistStore {
  readonly backend: SqlDatabase['backend'];
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  migrate(): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** True when the error is this backend's unique-constraint violation. */
  isUniqueViolation(error: unknown): boolean;
  /** The database itself, for tooling that runs its own statements (tests, bench: recount). */
  readonly sql: SqlDatabase;
}

export function createStore(db: SqlDatabase): Store {
  return {
    backend: db.backend,
    sql: db,
    transaction: (fn) => db.transaction(fn),
    migrate: () => db.migrate(),
    ping: async () => {
      await db.rows('select 1');
    },
    close: () => db.close(),
    isUniqueViolation: (error) => db.isUniqueViolation(error),
    ...eventStatements(db),
    ...holdStatements(db),
    ...bookingStatements(db),
    ...idempotencyStatements(db),
    ...changeStatements(db),
    ...webhookStatements(db),
    ...listingStatements(db),
    ...queueStatements(db),
    ...waitlistStatements(db),
  };
}
