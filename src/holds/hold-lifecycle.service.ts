// What a holder can do with a hold after it is granted: read it, release it, extend it. Each
// needs the hold's payment token. Changes lock the event row first, like every writer, then
// the hold, and decide on the locked row, so a release, an extension, a booking and the
// sweeper can never interleave on one hold.
import type { Clock } from '../clock.ts';
import { DomainError, notFound, present } from '../errors.ts';
import type { Outbox } from '../changes/outbox.ts';
import type { Recorder } from '../idempotency/recorder.ts';
import type { HoldRow, HoldStatus } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { endOffers, offerFreedSeats } from '../waitlist/offers.ts';
import { tokenMatches } from './payment-token.ts';

export interface HoldView {
  id: number;
  eventId: number;
  qty: number;
  customer: string | null;
  /** 'expired' as soon as the deadline passes, whether or not the sweeper has run. */
  status: HoldStatus;
  createdAt: Date;
  expiresAt: Date;
  bookingId: number | null;
}

export function holdView(hold: HoldRow, now: Date): HoldView {
  const lapsed = hold.status === 'active' && hold.expiresAt <= now;
  return {
    id: hold.id,
    eventId: hold.eventId,
    qty: hold.qty,
    customer: hold.customer,
    status: lapsed ? 'expired' : hold.status,
    createdAt: hold.createdAt,
    expiresAt: hold.expiresAt,
    bookingId: hold.bookingId,
  };
}

/** Throws unless the hold can still be released or extended at `now`. */
export function assertChangeable(hold: HoldRow, now: Date): void {
  const status = holdView(hold, now).status;
  if (status === 'booked')
    throw new DomainError('hold_booked', `hold ${hold.id} is booked; a booking is cancelled by staff`);
  if (status === 'released') throw new DomainError('hold_released', `hold ${hold.id} was already released`);
  if (status === 'expired')
    throw new DomainError('hold_expired', `hold ${hold.id} has expired; expired holds are never revived`);
}

/** The deadline after adding `seconds`, or a refusal if it would outlive the lifetime cap. */
export function extendedDeadline(hold: HoldRow, seconds: number, maxLifetimeSeconds: number): Date {
  const wanted = new Date(hold.expiresAt.getTime() + seconds * 1000);
  const latest = new Date(hold.createdAt.getTime() + maxLifetimeSeconds * 1000);
  if (wanted > latest) {
    throw new DomainError(
      'hold_lifetime_exceeded',
      `a hold lives at most ${maxLifetimeSeconds} s from creation; it can be extended until ${latest.toISOString()}`,
      { max_expires_at: latest.toISOString(), max_hold_lifetime_seconds: maxLifetimeSeconds },
    );
  }
  return wanted;
}

export class HoldLifecycleService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: { maxHoldLifetimeSeconds: number; waitlistOfferTtlSeconds: number },
    private readonly outbox: Outbox,
  ) {}

  async get(holdId: number, paymentToken: string): Promise<HoldView> {
    return holdView(await this.authorized(holdId, paymentToken), this.clock.now());
  }

  /** Ends the hold now; its seats are available at once. */
  async release(holdId: number, paymentToken: string, recorder?: Recorder<HoldView>): Promise<HoldView> {
    const { eventId } = await this.authorized(holdId, paymentToken);
    const now = this.clock.now();
    const result = await this.store.transaction(async (tx) => {
      const event = present(await this.store.lockEvent(tx, eventId), `event ${eventId}`);
      const hold = present(await this.store.lockHold(tx, holdId), `hold ${holdId}`);
      assertChangeable(hold, now);
      await this.store.endHold(tx, hold, 'released', now);
      await this.outbox.recordOne(
        tx,
        { eventId, type: 'hold.released', holdId, qty: hold.qty, customer: hold.customer },
        now,
      );
      const waitlist = { store: this.store, outbox: this.outbox, offerTtlSeconds: this.config.waitlistOfferTtlSeconds };
      // Releasing an offer with its payment token declines it, as leaving the list would.
      if (hold.waitlistEntryId !== null) {
        const offer = { entryId: hold.waitlistEntryId, holdId, qty: hold.qty, customer: hold.customer };
        await endOffers(waitlist, tx, eventId, [offer], 'left', now);
      }
      await offerFreedSeats(waitlist, tx, eventId, event.waiting, now);
      const released = holdView({ ...hold, status: 'released', expiresAt: now }, now);
      await recorder?.record(tx, released);
      return released;
    });
    this.outbox.committed();
    return result;
  }

  /** Moves the deadline `seconds` later, within MAX_HOLD_LIFETIME_SECONDS of creation. */
  async extend(
    holdId: number,
    paymentToken: string,
    seconds: number,
    recorder?: Recorder<HoldView>,
  ): Promise<HoldView> {
    const { eventId } = await this.authorized(holdId, paymentToken);
    const now = this.clock.now();
    const result = await this.store.transaction(async (tx) => {
      await this.store.lockEvent(tx, eventId);
      const hold = present(await this.store.lockHold(tx, holdId), `hold ${holdId}`);
      assertChangeable(hold, now);
      const expiresAt = extendedDeadline(hold, seconds, this.config.maxHoldLifetimeSeconds);
      await this.store.setHoldExpiry(tx, holdId, expiresAt);
      await this.outbox.recordOne(
        tx,
        { eventId, type: 'hold.extended', holdId, qty: hold.qty, customer: hold.customer },
        now,
      );
      const extended = holdView({ ...hold, expiresAt }, now);
      await recorder?.record(tx, extended);
      return extended;
    });
    this.outbox.committed();
    return result;
  }

  private async authorized(holdId: number, paymentToken: string): Promise<HoldRow> {
    const hold = await this.store.findHold(holdId);
    if (hold === null) throw notFound('hold', holdId);
    if (!tokenMatches(paymentToken, hold.paymentTokenHash)) {
      throw new DomainError('invalid_payment_token', 'the payment token does not match this hold');
    }
    return hold;
  }
}
