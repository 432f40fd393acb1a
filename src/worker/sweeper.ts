// The expiry sweeper: marks lapsed holds 'expired' and moves their seats back. Availability is
// already exact without it (readers discount lapsed holds, the hold path reclaims them); the
// sweeper keeps the active set small for events nobody is asking about. Each pass also
// purges Idempotency-Keys past IDEMPOTENCY_KEY_TTL_SECONDS.
import type { Clock } from '../clock.ts';
import type { Metrics } from '../metrics.ts';
import { type Outbox, snapshotsBefore } from '../changes/outbox.ts';
import type { NewChange } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { expireOffers, offerFreedSeats } from '../waitlist/offers.ts';

/** Offers made by a sweep called without the configured TTL (tests, tools). */
const WAITLIST_OFFER_TTL_SECONDS_DEFAULT = 900;

/** Events handled per query; a pass repeats until fewer come back. */
const SWEEP_EVENTS_PER_QUERY = 100;
/** Bounds one pass, so a sweep never holds a worker for unbounded time. */
const SWEEP_MAX_QUERIES_PER_PASS = 100;

/** One expiry pass; returns how many holds this pass marked expired. */
export async function sweepOnce(
  store: Store,
  clock: Clock,
  outbox: Outbox,
  waitlistOfferTtlSeconds = WAITLIST_OFFER_TTL_SECONDS_DEFAULT,
): Promise<number> {
  const waitlist = { store, outbox, offerTtlSeconds: waitlistOfferTtlSeconds };
  const now = clock.now();
  let expired = 0;
  for (let query = 0; query < SWEEP_MAX_QUERIES_PER_PASS; query++) {
    const eventIds = await store.eventsWithLapsedHolds(now, SWEEP_EVENTS_PER_QUERY);
    let progressed = false;
    for (const eventId of eventIds) {
      expired += await store.transaction(async (tx) => {
        // Skip an event whose row is locked: another sweeper has it, or a hold batch does,
        // and hold batches reclaim lapsed holds themselves. Never two sweepers on one hold.
        const event = await store.lockEventSkipLocked(tx, eventId);
        if (event === null) return 0;
        progressed = true;
        const { holds } = await store.reclaimLapsedHolds(tx, eventId, now);
        if (holds.length > 0 && outbox.enabled) {
          const { total, available, held, booked, waiting } = (await store.snapshotIn(tx, eventId, now))!;
          const snapshots = snapshotsBefore(
            { total, available, held, booked, waiting },
            holds.map((hold) => -hold.qty),
            'available',
            'held',
          );
          const changes = holds.map((hold, i): NewChange => ({
            eventId,
            type: 'hold.expired',
            holdId: hold.id,
            qty: hold.qty,
            snapshot: snapshots[i]!,
          }));
          await outbox.record(tx, changes, now);
        }
        // The seats that came back go to the waiting list before anyone else sees them.
        await expireOffers(waitlist, tx, eventId, holds, now);
        await offerFreedSeats(waitlist, tx, eventId, event.waiting, now);
        return holds.length;
      });
    }
    outbox.committed();
    if (eventIds.length < SWEEP_EVENTS_PER_QUERY || !progressed) break;
  }
  return expired;
}

/** Keys deleted per statement, and statements per pass. */
const PURGE_KEYS_PER_STATEMENT = 1000;
const PURGE_MAX_STATEMENTS_PER_PASS = 100;

/** Deletes expired Idempotency-Keys; returns how many. */
export async function purgeExpiredKeys(store: Store, clock: Clock): Promise<number> {
  const now = clock.now();
  let purged = 0;
  for (let statement = 0; statement < PURGE_MAX_STATEMENTS_PER_PASS; statement++) {
    const deleted = await store.purgeIdempotencyKeys(now, PURGE_KEYS_PER_STATEMENT);
    purged += deleted;
    if (deleted < PURGE_KEYS_PER_STATEMENT) break;
  }
  return purged;
}

/** Deletes changes older than the retention, in bounded statements; returns how many. */
export async function purgeOldChanges(store: Store, clock: Clock, retentionSeconds: number): Promise<number> {
  const before = new Date(clock.now().getTime() - retentionSeconds * 1000);
  let purged = 0;
  for (let statement = 0; statement < PURGE_MAX_STATEMENTS_PER_PASS; statement++) {
    const deleted = await store.purgeChanges(before, PURGE_KEYS_PER_STATEMENT);
    purged += deleted;
    if (deleted < PURGE_KEYS_PER_STATEMENT) break;
  }
  return purged;
}

export interface SweeperOptions {
  store: Store;
  clock: Clock;
  outbox: Outbox;
  /** Changes older than this are purged from the log. */
  changeRetentionSeconds: number;
  sweepIntervalSeconds: number;
  waitlistOfferTtlSeconds?: number;
  metrics?: Metrics;
  onError: (error: unknown) => void;
  onSwept?: (expired: number) => void;
}

/** Runs sweepOnce every interval until stopped; stop() waits for a pass in progress. */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: SweeperOptions) {}

  start(): void {
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.options.sweepIntervalSeconds * 1000);
  }

  private async pass(): Promise<void> {
    try {
      const { store, clock, outbox, waitlistOfferTtlSeconds } = this.options;
      const expired = await sweepOnce(store, clock, outbox, waitlistOfferTtlSeconds);
      this.options.metrics?.holdsSwept.inc(expired);
      this.options.onSwept?.(expired);
      await purgeExpiredKeys(this.options.store, this.options.clock);
      await purgeOldChanges(this.options.store, this.options.clock, this.options.changeRetentionSeconds);
    } catch (error) {
      this.options.onError(error);
    }
  }
}
