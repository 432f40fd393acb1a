// Events: created by staff, listed and read by anyone, renamed or resized by staff. A resize
// never goes below the seats already held or booked; `available` absorbs the difference in
// the same statement, under the event's row lock.
import type { Clock } from '../clock.ts';
import { DomainError, notFound } from '../errors.ts';
import { type Outbox, reclaimChanges } from '../changes/outbox.ts';
import type { Recorder } from '../idempotency/recorder.ts';
import { type CustomerSeats, type EventLimits, type EventRow, NO_LIMITS, type Snapshot } from '../model.ts';
import type { Store } from '../storage/store.ts';

export interface EventChanges {
  name?: string;
  totalSeats?: number;
  limits?: Partial<EventLimits>;
}

/** A limit above the event's seats could never bind: refused, so that staff notice the typo. */
function checkLimits(limits: EventLimits, totalSeats: number): void {
  const errors = (['maxSeatsPerCustomer', 'maxSeatsPerHold'] as const)
    .filter((key) => (limits[key] ?? 0) > totalSeats)
    .map((key) => ({
      path: `body/event/${key === 'maxSeatsPerCustomer' ? 'max_seats_per_customer' : 'max_seats_per_hold'}`,
      message: `must be at most total_seats (${totalSeats})`,
    }));
  if (errors.length > 0) throw new DomainError('validation_failed', 'a limit is above total_seats', { errors });
}

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
      const snapshot = { total: totalSeats, available: totalSeats, held: 0, booked: 0 };
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
      const limits = { ...books.limits, ...changes.limits };
      checkLimits(limits, total);
      await this.store.updateEvent(tx, eventId, name, total, limits);
      const snapshot = {
        eventId,
        name,
        total,
        available: total - held - books.booked,
        held,
        booked: books.booked,
        limits,
      };
      const { changes: expired } = reclaimChanges(books, reclaimed.holds);
      const counters = { total, available: snapshot.available, held, booked: books.booked };
      await this.outbox.record(tx, [...expired, { eventId, type: 'event.updated', snapshot: counters }], now);
      await recorder?.record(tx, snapshot);
      return snapshot;
    });
    this.outbox.committed();
    return updated;
  }
}
