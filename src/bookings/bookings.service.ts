// Booking turns an active, unexpired hold into a booking, at most once per hold. Retries with
// the right token get the same booking back; the unique index on bookings.hold_id is the last
// guard if two requests ever race past the status check. Staff may cancel a booking: its seats
// go back on sale, and the row stays so that its hold can never be booked again.
import type { Clock } from '../clock.ts';
import { DomainError, notFound, present } from '../errors.ts';
import { tokenMatches } from '../holds/payment-token.ts';
import { KeyedBatcher } from '../holds/keyed-batcher.ts';
import { keyTakenOver } from '../idempotency/idempotency.service.ts';
import { type Recorder, lockClaims, recordOutcomes } from '../idempotency/recorder.ts';
import type { Metrics } from '../metrics.ts';
import type { BookingRow, HoldRow, NewChange } from '../model.ts';
import type { Store, Tx } from '../storage/store.ts';
import { type Outbox, snapshotsBefore } from '../changes/outbox.ts';
import { endOffers, offerFreedSeats } from '../waitlist/offers.ts';

export interface BookingResult {
  bookingId: number;
  /** False when this was a retry and the booking already existed. */
  created: boolean;
}

const holdExpired = (holdId: number): DomainError =>
  new DomainError('hold_expired', `hold ${holdId} has expired or was released and can no longer be booked`);

const bookingCancelled = (bookingId: number): DomainError =>
  new DomainError(
    'booking_cancelled',
    `the booking of this hold (${bookingId}) was cancelled; the hold cannot be booked again`,
    { booking_id: bookingId },
  );

interface BookRequest {
  hold: HoldRow;
  /** When the request was checked; booking never extends a hold past this instant's view. */
  now: Date;
  recorder: Recorder<BookingResult> | undefined;
}

export interface BookingsConfig {
  holdBatchMax: number;
  holdQueueMax: number;
  waitlistOfferTtlSeconds: number;
}

export class BookingsService {
  /**
   * Bookings of one event share its row lock with hold batches; one commit per booking capped
   * a hot event at the single-statement rate (~400/s in the benchmark), so concurrent bookings
   * for one event are committed together, exactly like holds.
   */
  private readonly batcher: KeyedBatcher<number, BookRequest, number | null>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: BookingsConfig,
    private readonly outbox: Outbox,
    private readonly metrics?: Metrics,
  ) {
    this.batcher = new KeyedBatcher(
      (eventId, requests) => this.bookBatch(eventId, requests),
      config.holdBatchMax,
      config.holdQueueMax,
    );
  }

  async book(holdId: number, paymentToken: string, recorder?: Recorder<BookingResult>): Promise<BookingResult> {
    const hold = await this.authorizedHold(holdId, paymentToken);
    if (hold.bookingId !== null) return this.existing(hold);
    // Booking never extends a hold: the deadline is the one the hold was granted with.
    const now = this.clock.now();
    if (hold.status !== 'active' || hold.expiresAt <= now) throw holdExpired(holdId);

    let bookingId: number | null = null;
    try {
      bookingId = await this.batcher.submit(hold.eventId, { hold, now, recorder });
    } catch (error) {
      if (!this.store.isUniqueViolation(error)) throw error;
    }
    if (bookingId !== null) {
      this.metrics?.bookingsCreated.inc();
      return { bookingId, created: true };
    }
    // Lost a race: a concurrent retry booked it first, or it lapsed or was released meanwhile.
    const after = await this.store.findHold(holdId);
    if (after?.bookingId != null) return this.existing(after);
    throw holdExpired(holdId);
  }

  /**
   * Books every request with one statement (bookHolds), under one lock of the event row and
   * one commit. A hold
   * asked for twice in one batch is booked by the first; the second finds it booked (null) and
   * answers with that booking, as any lost race does.
   */
  private async bookBatch(eventId: number, requests: BookRequest[]): Promise<Array<number | null | Error>> {
    const ids = await this.store.transaction(async (tx) => {
      await this.store.lockEvent(tx, eventId);
      // A request whose key a retry took over is left out, so it cannot fail its batchmates.
      const owned = await lockClaims(
        tx,
        requests.map((request) => request.recorder),
      );
      const live = requests.filter((_, i) => owned[i]);
      const booked = live.length > 0 ? await this.store.bookHolds(tx, eventId, live) : [];
      await this.recordBookings(tx, eventId, live, booked);
      // A booked offer converts its entry, in the booking's transaction.
      const offers = live.flatMap(({ hold }, i) =>
        booked[i] == null || hold.waitlistEntryId === null
          ? []
          : [{ entryId: hold.waitlistEntryId, holdId: hold.id, qty: hold.qty, customer: hold.customer }],
      );
      await endOffers(this.waitlist(), tx, eventId, offers, 'converted', this.clock.now());
      let next = 0;
      const ids: Array<number | null | Error> = requests.map((_, i) => (owned[i] ? booked[next++]! : keyTakenOver()));
      await recordOutcomes(
        tx,
        requests.map((request, i) => {
          const id = ids[i]!;
          return [
            typeof id === 'number' ? request.recorder : undefined,
            { bookingId: id as number, created: true },
          ] as const;
        }),
      );
      return ids;
    });
    this.outbox.committed();
    return ids;
  }

  /** booking.created for each new booking, with the snapshot after it (read once, after all). */
  private async recordBookings(tx: Tx, eventId: number, requests: BookRequest[], booked: Array<number | null>) {
    const made = requests.flatMap((request, i) =>
      booked[i] == null ? [] : [{ hold: request.hold, bookingId: booked[i] }],
    );
    if (made.length === 0 || !this.outbox.enabled) return;
    const now = this.clock.now();
    const {
      total,
      available,
      held,
      booked: bookedSeats,
      waiting,
    } = present(await this.store.snapshotIn(tx, eventId, now), `event ${eventId}`);
    const snapshots = snapshotsBefore(
      { total, available, held, booked: bookedSeats, waiting },
      made.map((m) => m.hold.qty),
      'held',
      'booked',
    );
    const changes = made.map(({ hold, bookingId }, i): NewChange => ({
      eventId,
      type: 'booking.created',
      holdId: hold.id,
      bookingId,
      qty: hold.qty,
      customer: hold.customer,
      snapshot: snapshots[i]!,
    }));
    await this.outbox.record(tx, changes, now);
  }

  /**
   * A booking, to whoever holds its hold's payment token; without a token the caller must be
   * staff, which the route has checked.
   */
  async get(bookingId: number, paymentToken: string | undefined): Promise<BookingRow> {
    const booking = await this.store.findBooking(bookingId);
    if (booking === null) throw notFound('booking', bookingId);
    if (paymentToken !== undefined && !tokenMatches(paymentToken, booking.paymentTokenHash)) {
      throw new DomainError('invalid_payment_token', 'the payment token does not match the hold of this booking');
    }
    return booking;
  }

  /** Cancels a booking and puts its seats back on sale; cancelling again changes nothing. */
  async cancel(bookingId: number, recorder?: Recorder<BookingRow>): Promise<BookingRow> {
    const booking = await this.store.findBooking(bookingId);
    if (booking === null) throw notFound('booking', bookingId);
    if (booking.status === 'cancelled') return booking;
    const now = this.clock.now();
    const cancelled = await this.store.transaction(async (tx) => {
      const event = present(await this.store.lockEvent(tx, booking.eventId), `event ${booking.eventId}`);
      if (!(await this.store.cancelBooking(tx, bookingId, now))) return null;
      await this.outbox.recordOne(
        tx,
        {
          eventId: booking.eventId,
          type: 'booking.cancelled',
          holdId: booking.holdId,
          bookingId,
          qty: booking.qty,
          customer: booking.customer,
        },
        now,
      );
      await offerFreedSeats(this.waitlist(), tx, booking.eventId, event.waiting, now);
      const row: BookingRow = { ...booking, status: 'cancelled', cancelledAt: now };
      await recorder?.record(tx, row);
      return row;
    });
    this.outbox.committed();
    // null: a concurrent cancel won; report the booking as it cancelled it.
    return cancelled ?? present(await this.store.findBooking(bookingId), `booking ${bookingId}`);
  }

  private waitlist() {
    return { store: this.store, outbox: this.outbox, offerTtlSeconds: this.config.waitlistOfferTtlSeconds };
  }

  private existing(hold: HoldRow): BookingResult {
    if (hold.bookingStatus === 'cancelled') throw bookingCancelled(hold.bookingId!);
    return { bookingId: hold.bookingId!, created: false };
  }

  private async authorizedHold(holdId: number, paymentToken: string): Promise<HoldRow> {
    const hold = await this.store.findHold(holdId);
    if (hold === null) throw notFound('hold', holdId);
    if (!tokenMatches(paymentToken, hold.paymentTokenHash)) {
      throw new DomainError('invalid_payment_token', 'the payment token does not match this hold');
    }
    return hold;
  }
}
