// The rules of holds. POST /holds requests for one event are coalesced by a KeyedBatcher and
// granted together: one transaction locks the event row, reclaims lapsed holds, decides every
// request in arrival order, and inserts the winners with one statement.
import type { Clock } from '../clock.ts';
import { DomainError, notFound } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { NewHold, Store } from '../storage/store.ts';
import { KeyedBatcher } from './keyed-batcher.ts';
import { newPaymentToken } from './payment-token.ts';

export interface HoldsConfig {
  holdTtlSeconds: number;
  holdBatchMax: number;
  holdQueueMax: number;
}

export interface GrantedHold {
  holdId: number;
  eventId: number;
  qty: number;
  expiresAt: Date;
  paymentToken: string;
}

interface HoldRequest extends NewHold {
  paymentToken: string;
}

/**
 * First come, first served, each request on its own: a request that does not fit is refused
 * without blocking smaller ones behind it.
 */
export function allocate(available: number, quantities: number[]): boolean[] {
  let left = available;
  return quantities.map((qty) => {
    if (qty > left) return false;
    left -= qty;
    return true;
  });
}

export class HoldsService {
  private readonly batcher: KeyedBatcher<number, HoldRequest, GrantedHold>;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: HoldsConfig,
    private readonly metrics?: Metrics,
  ) {
    this.batcher = new KeyedBatcher((eventId, requests) => this.grantBatch(eventId, requests),
      config.holdBatchMax, config.holdQueueMax);
  }

  createHold(eventId: number, qty: number): Promise<GrantedHold> {
    const { token, hash } = newPaymentToken();
    return this.batcher.submit(eventId, { qty, paymentToken: token, paymentTokenHash: hash });
  }

  /** Hold requests waiting or being granted right now. */
  get inFlight(): number {
    return this.batcher.pending;
  }

  private async grantBatch(eventId: number, requests: HoldRequest[]): Promise<Array<GrantedHold | Error>> {
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.config.holdTtlSeconds * 1000);
    const outcome = await this.store.transaction(async (tx) => {
      const event = await this.store.lockEvent(tx, eventId);
      if (event === null) return null;
      const reclaimed = await this.store.reclaimLapsedHolds(tx, eventId, now);
      const available = event.available + reclaimed.seats;
      const granted = allocate(available, requests.map((request) => request.qty));
      const winners = requests.filter((_, i) => granted[i]);
      const ids = winners.length > 0
        ? await this.store.insertHolds(tx, eventId, winners, now, expiresAt)
        : [];
      return { available, granted, ids };
    });
    this.metrics?.holdBatchSize.observe(requests.length);
    if (outcome === null) return requests.map(() => notFound('event', eventId));

    let next = 0;
    let left = outcome.available;
    return requests.map((request, i) => {
      if (!outcome.granted[i]) {
        this.metrics?.holdsRefused.inc();
        return new DomainError('insufficient_seats', `only ${left} of the ${request.qty} seats asked for are available`, {
          available: left,
          requested: request.qty,
        });
      }
      left -= request.qty;
      this.metrics?.holdsGranted.inc();
      return {
        holdId: outcome.ids[next++]!,
        eventId,
        qty: request.qty,
        expiresAt,
        paymentToken: request.paymentToken,
      };
    });
  }
}
