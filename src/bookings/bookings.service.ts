// Booking turns an active, unexpired hold into a booking, at most once per hold. Retries with
// the right token get the same booking back; the unique index on bookings.hold_id is the last
// guard if two requests ever race past the status check.
import type { Clock } from '../clock.ts';
import { DomainError, notFound } from '../errors.ts';
import { tokenMatches } from '../holds/payment-token.ts';
import type { Metrics } from '../metrics.ts';
import type { HoldRow, Store } from '../storage/store.ts';

export interface BookingResult {
  bookingId: number;
  /** False when this was a retry and the booking already existed. */
  created: boolean;
}

const holdExpired = (holdId: number): DomainError =>
  new DomainError('hold_expired', `hold ${holdId} has expired or was released and can no longer be booked`);

export class BookingsService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics?: Metrics,
  ) {}

  async book(holdId: number, paymentToken: string): Promise<BookingResult> {
    const hold = await this.authorizedHold(holdId, paymentToken);
    if (hold.bookingId !== null) return { bookingId: hold.bookingId, created: false };
    // Booking never extends a hold: the deadline is the one the hold was granted with.
    const now = this.clock.now();
    if (hold.status !== 'active' || hold.expiresAt <= now) throw holdExpired(holdId);

    let bookingId: number | null = null;
    try {
      bookingId = await this.store.transaction(async (tx) => {
        await this.store.lockEvent(tx, hold.eventId);
        return this.store.bookHold(tx, hold, now);
      });
    } catch (error) {
      if (!this.store.isUniqueViolation(error)) throw error;
    }
    if (bookingId !== null) {
      this.metrics?.bookingsCreated.inc();
      return { bookingId, created: true };
    }
    // Lost a race: a concurrent retry booked it first, or it lapsed or was released meanwhile.
    const after = await this.store.findHold(holdId);
    if (after?.bookingId != null) return { bookingId: after.bookingId, created: false };
    throw holdExpired(holdId);
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
