// Events: created by staff, listed and read by anyone, renamed or resized by staff. A resize
// never goes below the seats already held or booked; `available` absorbs the difference in
// the same statement, under the event's row lock.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { DomainError, notFound } from '../errors.ts';
import { type Outbox, reclaimChanges } from '../changes/outbox.ts';
import { expireOffers, offerFreedSeats } from '../waitlist/offers.ts';
import type { Recorder } from '../idempotency/recorder.ts';
import {
  type CustomerSeats,
  type EventLimits,
  type EventRow,
  NO_LIMITS,
  type QueueSettings,
  type Snapshot,
} from '../model.ts';
import type { Store } from '../storage/store.ts';

export interface EventChanges {
  name?: string;
  totalSeats?: number;
  /** The queue is patched apart: see `queue`. */
  limits?: Partial<Omit<EventLimits, 'queue'>>;
  /** Null removes the queue; fields left out keep their values (a new queue needs admitPerMinute). */
  queue?: Partial<QueueSettings> | null;
}

/** A new queue's admission window when staff name none: Ticketmaster holds a turn about 10 minutes. */
export const ADMISSION_TTL_SECONDS_DEFAULT = 600;

function patchQueue(current: QueueSettings | null, patch: EventChanges['queue']): QueueSettings | null {
  if (patch === undefined) return current;
  if (patch === null) return null;
  const admitPerMinute = patch.admitPerMinute ?? current?.admitPerMinute;
  if (admitPerMinute === undefined) {
    throw new DomainError('validation_failed', 'a new queue needs admit_per_minute', {
      errors: [{ path: 'body/event/queue/admit_per_minute', message: 'is required for a new queue' }],
    });
  }
  return {
    admitPerMinute,
    admissionTtlSeconds: patch.admissionTtlSeconds ?? current?.admissionTtlSeconds ?? ADMISSION_TTL_SECONDS_DEFAULT,
    prequeueOpensAt: patch.prequeueOpensAt !== undefined ? patch.prequeueOpensAt : (current?.prequeueOpensAt ?? null),
  };
}

/**
 * A limit above the event's seats could never bind: refused, so that staff notice the typo. A
 * queue needs the instant it opens on, and a cap per customer: an admission token is good for
 * max_seats_per_customer seats, and without one a single admission could take the whole sale.
 */
function checkLimits(limits: EventLimits, totalSeats: number): void {
  const errors = (['maxSeatsPerCustomer', 'maxSeatsPerHold'] as const)
    .filter((key) => (limits[key] ?? 0) > totalSeats)
    .map((key) => ({
      path: `body/event/${key === 'maxSeatsPerCustomer' ? 'max_seats_per_customer' : 'max_seats_per_hold'}`,
      message: `must be at most total_seats (${totalSeats})`,
    }));
  const { queue, saleOpensAt } = limits;
  if (queue !== null && saleOpensAt === null)
    errors.push({ path: 'body/event/sale_opens_at', message: 'is required with a queue: admission starts then' });
  if (queue !== null && limits.maxSeatsPerCustomer === null)
    errors.push({
      path: 'body/event/max_seats_per_customer',
      message: 'is required with a queue: it is what one admission may take',
    });
  if (queue?.prequeueOpensAt != null && saleOpensAt !== null && queue.prequeueOpensAt > saleOpensAt)
    errors.push({ path: 'body/event/queue/prequeue_opens_at', message: 'must be at or before sale_opens_at' });
  if (errors.length > 0) throw new DomainError('validation_failed', errors[0]!.message, { errors });
}

/** The seed of a queue's pre-queue draw (admission/queue.service.ts drawOrder): secret, random. */
const newQueueSeed = (): string => randomBytes(16).toString('hex');

export interface SnapshotPage {
  events: Snapshot[];
  /** The last event id of this page when more may follow. */
  nextAfterId: number | null;
}

export class EventsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly outbox: Outbox,
    private readonly waitlistOfferTtlSeconds: number,
  ) {}

  async create(
    name: string,
    totalSeats: number,
    limits: EventLimits = NO_LIMITS,
    recorder?: Recorder<EventRow>,
  ): Promise<EventRow> {
    checkLimits(limits, totalSeats);
    const now = this.clock.now();
    // Always a transaction, even alone: a commit whose outcome is lost is then reported as in
    // doubt (503 outcome_unknown), which a lone autocommitted insert could not be.
    const created = await this.store.transaction(async (tx) => {
      const event = await this.store.insertEvent(tx, name, totalSeats, limits, now);
      if (limits.queue !== null) await this.store.ensureQueue(tx, event.id, newQueueSeed());
      const snapshot = { total: totalSeats, available: totalSeats, held: 0, booked: 0, waiting: 0 };
      await this.outbox.record(tx, [{ eventId: event.id, type: 'event.created', snapshot }], now);
      await recorder?.record(tx, event);
      return event;
    });
    this.outbox.committed();
    return created;
  }

  /** One customer's seats in the event, exact now, with the event's limit. */
  async customer(eventId: number, customer: string): Promise<CustomerSeats & { limit: number | null }> {
    const now = this.clock.now();
    const snapshot = await this.store.snapshot(eventId, now);
    if (snapshot === null) throw notFound('event', eventId);
    const seats = await this.store.customerSeats(eventId, customer, now);
    return { ...seats, limit: snapshot.limits.maxSeatsPerCustomer };
  }

  async snapshot(eventId: number): Promise<Snapshot> {
    const snapshot = await this.store.snapshot(eventId, this.clock.now());
    if (snapshot === null) throw notFound('event', eventId);
    return snapshot;
  }

  async list(afterId: number, limit: number): Promise<SnapshotPage> {
    // One row more than asked says whether another page follows, without a count.
    const rows = await this.store.listSnapshots(afterId, limit + 1, this.clock.now());
    const events = rows.slice(0, limit);
    return { events, nextAfterId: rows.length > limit ? events[events.length - 1]!.eventId : null };
  }

  async update(eventId: number, changes: EventChanges, recorder?: Recorder<Snapshot>): Promise<Snapshot> {
    const now = this.clock.now();
    const updated = await this.store.transaction(async (tx) => {
      const books = await this.store.lockEventBooks(tx, eventId);
      if (books === null) throw notFound('event', eventId);
      // Lapsed holds no longer count against the new total: reclaim them first.
      const reclaimed = await this.store.reclaimLapsedHolds(tx, eventId, now);
      const held = books.held - reclaimed.seats;
      const total = changes.totalSeats ?? books.total;
      if (total < held + books.booked) {
        throw new DomainError(
          'seats_in_use',
          `total_seats cannot go below the ${held + books.booked} seats held or booked`,
          { held, booked: books.booked, minimum_total_seats: held + books.booked, requested: total },
        );
      }
      const name = changes.name ?? books.name;
      const limits = { ...books.limits, ...changes.limits, queue: patchQueue(books.limits.queue, changes.queue) };
      checkLimits(limits, total);
      await this.store.updateEvent(tx, eventId, name, total, limits);
      if (limits.queue !== null) await this.store.ensureQueue(tx, eventId, newQueueSeed());
      const snapshot = {
        eventId,
        name,
        total,
        available: total - held - books.booked,
        held,
        booked: books.booked,
        waiting: books.waiting,
        limits,
      };
      const { changes: expired } = reclaimChanges(books, reclaimed.holds);
      const counters = { total, available: snapshot.available, held, booked: books.booked, waiting: books.waiting };
      await this.outbox.record(tx, [...expired, { eventId, type: 'event.updated', snapshot: counters }], now);
      // Seats a resize added, or the reclaim brought back, go to the waiting list first.
      const waitlist = { store: this.store, outbox: this.outbox, offerTtlSeconds: this.waitlistOfferTtlSeconds };
      await expireOffers(waitlist, tx, eventId, reclaimed.holds, now);
      const offers = await offerFreedSeats(waitlist, tx, eventId, books.waiting, now);
      if (offers !== null) {
        snapshot.available = offers.available;
        snapshot.held = total - offers.available - books.booked;
        snapshot.waiting = offers.waiting;
      }
      await recorder?.record(tx, snapshot);
      return snapshot;
    });
    this.outbox.committed();
    return updated;
  }
}
