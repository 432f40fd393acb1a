// What the service keeps, as the domain sees it: the rows services and routes work with. The
// SQL that reads and writes them lives in src/storage/, which returns these shapes and nothing
// else; nothing here knows how they are stored.
//
// Glossary (the tables are defined in src/db/migrations/):
//   event     something with a fixed number of seats. Its row carries the counters
//             available + held + booked = total_seats, changed in the same statement as the
//             holds and bookings they count.
//   hold      seats set aside for one buyer until expires_at; proven by a payment token, of
//             which only the SHA-256 is stored.
//   booking   a hold made permanent, at most one per hold; staff may cancel it.
//   expiry    a hold past expires_at stops counting at once; the hold path and the sweeper
//             later mark it 'expired' and move its seats back (reclaim).
//   snapshot  an event's counters exact at an instant: lapsed, unreclaimed holds not counted.
//   customer  who a hold is for (an account id, or an email normalised: customer.ts); an event
//             may cap the seats one customer holds and has booked (EventLimits).
//   queue     an event's waiting room: buyers join, wait for their position to be admitted,
//             and hold seats with the signed admission token they are then given (admission/).

export type HoldStatus = 'active' | 'expired' | 'booked' | 'released';
export type BookingStatus = 'confirmed' | 'cancelled';

/** An event's waiting room (src/admission/): only buyers it admits may hold seats. */
export interface QueueSettings {
  /** How many positions are admitted per minute, a little at every tick. */
  admitPerMinute: number;
  /** How long an admitted buyer may hold seats with their admission token. */
  admissionTtlSeconds: number;
  /** From when buyers may join (a random place, drawn at sale_opens_at); null: as soon as the queue is set. */
  prequeueOpensAt: Date | null;
}

/** The rules of an event's sale, as staff set them: what one buyer may take, and when and how they get in. Null: no limit. */
export interface EventLimits {
  /** Seats in a customer's active holds plus confirmed bookings. */
  maxSeatsPerCustomer: number | null;
  /** The largest qty of one hold. */
  maxSeatsPerHold: number | null;
  /** Holds without a customer are refused. */
  customerRequired: boolean;
  /** No hold before this instant. */
  saleOpensAt: Date | null;
  /** Null: anyone may hold seats once the sale opens. */
  queue: QueueSettings | null;
  /** Who freed seats go to while entries wait (src/waitlist/): 'fill' or 'strict'. */
  waitlistPolicy: WaitlistPolicy;
}

/**
 * 'fill': a freed seat goes to the oldest waiting entry it can serve, so a group at the head
 * never keeps seats from the single buyers behind it. 'strict': the oldest entry is served first
 * and those behind it wait until its seats are free together.
 */
export type WaitlistPolicy = 'fill' | 'strict';

export const NO_LIMITS: EventLimits = {
  maxSeatsPerCustomer: null,
  maxSeatsPerHold: null,
  customerRequired: false,
  saleOpensAt: null,
  queue: null,
  waitlistPolicy: 'fill',
};

export interface EventRow {
  id: number;
  name: string;
  totalSeats: number;
  createdAt: Date;
  limits: EventLimits;
}

export interface Snapshot {
  eventId: number;
  name: string;
  total: number;
  available: number;
  held: number;
  booked: number;
  /** Seats asked for by waiting-list entries not yet offered any. */
  waiting: number;
  limits: EventLimits;
}

/** An event's row as locked by a writer: `held` still includes lapsed, unreclaimed holds. */
export interface EventBooks {
  id: number;
  name: string;
  total: number;
  available: number;
  held: number;
  booked: number;
  /** Seats asked for by waiting entries: while above 0, public holds take no seats. */
  waiting: number;
  limits: EventLimits;
}

/** One customer's seats in one event, exact at an instant. */
export interface CustomerSeats {
  customer: string;
  /** In active holds that have not lapsed. */
  held: number;
  /** In confirmed bookings. */
  booked: number;
}

export interface LockedEvent {
  id: number;
  available: number;
  waiting: number;
}

export interface NewHold {
  qty: number;
  paymentTokenHash: Buffer;
  /** Normalised (customer.ts); null for an anonymous hold. */
  customer: string | null;
  /** The queue ticket whose admission token the request carried (its jti); null without one. */
  admissionTicket: number | null;
}

export interface HoldRow {
  id: number;
  eventId: number;
  qty: number;
  customer: string | null;
  status: HoldStatus;
  paymentTokenHash: Buffer;
  createdAt: Date;
  expiresAt: Date;
  bookingId: number | null;
  /** Status of its booking; null without one. */
  bookingStatus: BookingStatus | null;
  /** The waiting-list entry this hold is an offer to; null for a public hold. */
  waitlistEntryId: number | null;
}

export interface BookingRow {
  id: number;
  eventId: number;
  holdId: number;
  qty: number;
  /** Its hold's customer. */
  customer: string | null;
  status: BookingStatus;
  createdAt: Date;
  cancelledAt: Date | null;
  /** The hash of its hold's payment token, which also grants read access to the booking. */
  paymentTokenHash: Buffer;
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

export const CHANGE_TYPES = [
  'event.created',
  'event.updated',
  'hold.granted',
  'hold.released',
  'hold.extended',
  'hold.expired',
  'booking.created',
  'booking.cancelled',
  'waitlist.joined',
  'waitlist.offered',
  'waitlist.expired',
  'waitlist.converted',
  'waitlist.left',
] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

/** An event's counters at one instant, as a change carries them. */
export interface Counters {
  total: number;
  available: number;
  held: number;
  booked: number;
  /** Seats asked for by waiting-list entries not yet offered any. */
  waiting: number;
}

/** A change about to be written, in the transaction of its effect. */
export interface NewChange {
  eventId: number;
  type: ChangeType;
  holdId?: number;
  bookingId?: number;
  qty?: number;
  /** The hold's customer: for staff and webhooks, never on public reads. */
  customer?: string | null;
  /** The event's snapshot just after this change. */
  snapshot: Counters;
}

/** A change in the log. */
export interface Change {
  position: number;
  eventId: number;
  type: ChangeType;
  holdId: number | null;
  bookingId: number | null;
  qty: number | null;
  customer: string | null;
  at: Date;
  snapshot: Counters;
}

/** A hold as staff list it: no token hash, no booking status. */
export type ListedHold = Omit<HoldRow, 'paymentTokenHash' | 'bookingStatus' | 'waitlistEntryId'>;
/** A booking as staff list it: no token hash. */
export type ListedBooking = Omit<BookingRow, 'paymentTokenHash'>;

export type ListOrder = 'asc' | 'desc';

/** One page of a keyset listing. */
export interface ListPage {
  /** Rows with ids after (asc) or before (desc) this one; null starts at the first or last. */
  afterId: number | null;
  limit: number;
  order: ListOrder;
}
