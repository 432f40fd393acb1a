// Operator actions: force-expire one hold (the design demo's `rails runner` step) and run one
// sweep pass on demand.
import type { Clock } from '../clock.ts';
import { DomainError, notFound, present } from '../errors.ts';
import type { Recorder } from '../idempotency/recorder.ts';
import type { Metrics } from '../metrics.ts';
import type { HoldRow } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { purgeExpiredKeys, purgeOldChanges, sweepOnce } from '../worker/sweeper.ts';
import type { Outbox } from '../changes/outbox.ts';
import { endOffers, offerFreedSeats } from '../waitlist/offers.ts';

export class AdminService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly outbox: Outbox,
    private readonly config: { changeRetentionSeconds: number; waitlistOfferTtlSeconds: number },
    private readonly metrics?: Metrics,
  ) {}

  /** Ends an active hold now; expiring an already expired or released hold changes nothing. */
  async expireHold(holdId: number, recorder?: Recorder<HoldRow>): Promise<HoldRow> {
    const hold = await this.store.findHold(holdId);
    if (hold === null) throw notFound('hold', holdId);
    if (hold.status === 'active') {
      const now = this.clock.now();
      const ended = await this.store.transaction(async (tx) => {
        const event = present(await this.store.lockEvent(tx, hold.eventId), `event ${hold.eventId}`);
        if (!(await this.store.endHold(tx, hold, 'expired', now))) return false;
        await this.outbox.recordOne(
          tx,
          { eventId: hold.eventId, type: 'hold.expired', holdId, qty: hold.qty, customer: hold.customer },
          now,
        );
        const waitlist = {
          store: this.store,
          outbox: this.outbox,
          offerTtlSeconds: this.config.waitlistOfferTtlSeconds,
        };
        if (hold.waitlistEntryId !== null) {
          const offer = { entryId: hold.waitlistEntryId, holdId, qty: hold.qty, customer: hold.customer };
          await endOffers(waitlist, tx, hold.eventId, [offer], 'expired', now);
        }
        await offerFreedSeats(waitlist, tx, hold.eventId, event.waiting, now);
        // endHold keeps a deadline already passed and sets any later one to now.
        const expiresAt = hold.expiresAt <= now ? hold.expiresAt : now;
        await recorder?.record(tx, { ...hold, status: 'expired', expiresAt });
        return true;
      });
      this.outbox.committed();
      if (ended) this.metrics?.holdsForceExpired.inc();
    }
    const after = present(await this.store.findHold(holdId), `hold ${holdId}`);
    if (after.status === 'booked') {
      throw new DomainError('hold_not_active', `hold ${holdId} is booked and cannot be expired`);
    }
    return after;
  }

  async sweep(): Promise<number> {
    const expired = await sweepOnce(this.store, this.clock, this.outbox, this.config.waitlistOfferTtlSeconds);
    this.metrics?.holdsSwept.inc(expired);
    await purgeExpiredKeys(this.store, this.clock);
    await purgeOldChanges(this.store, this.clock, this.config.changeRetentionSeconds);
    return expired;
  }
}
