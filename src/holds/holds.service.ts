// The rules of holds. POST /holds requests for one event are coalesced by a KeyedBatcher and
// granted together: one transaction locks the event row, reclaims lapsed holds, decides every
// request in arrival order, and inserts the winners with one statement.
// A request may carry an Idempotency-Key recorder; the batch stores every keyed request's own
// outcome, granted or refused, with one more statement in the same transaction.
import type { Clock } from '../clock.ts';
import { DomainError, notFound } from '../errors.ts';
import { keyTakenOver } from '../idempotency/idempotency.service.ts';
import { type Outcome, type Recorder, lockClaims, recordOutcomes } from '../idempotency/recorder.ts';
import type { Metrics } from '../metrics.ts';
import type { Counters, EventBooks, NewChange, NewHold } from '../model.ts';
import { type Outbox, reclaimChanges } from '../changes/outbox.ts';
import type { Reclaimed } from '../storage/holds.sql.ts';
import type { Store } from '../storage/store.ts';
import { KeyedBatcher } from './keyed-batcher.ts';
import { newPaymentToken } from './payment-token.ts';

export interface HoldGrantConfig {
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
  recorder: Recorder<GrantedHold> | undefined;
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
    private readonly config: HoldGrantConfig,
    private readonly outbox: Outbox,
    private readonly metrics?: Metrics,
  ) {
    this.batcher = new KeyedBatcher(
      (eventId, requests) => this.grantBatch(eventId, requests),
      config.holdBatchMax,
      config.holdQueueMax,
    );
  }

  createHold(eventId: number, qty: number, recorder?: Recorder<GrantedHold>): Promise<GrantedHold> {
    const { token, hash } = newPaymentToken();
    return this.batcher.submit(eventId, { qty, paymentToken: token, paymentTokenHash: hash, recorder });
  }

  private async grantBatch(eventId: number, requests: HoldRequest[]): Promise<Array<GrantedHold | Error>> {
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.config.holdTtlSeconds * 1000);
    const fast = await this.grantFast(eventId, requests, now, expiresAt);
    if (fast !== null) return fast;
    const outcomes = await this.store.transaction(async (tx) => {
      const event = await this.store.lockEventBooks(tx, eventId);
      if (event === null) return null;
      // A request whose key a retry took over is left out, so it cannot fail its batchmates.
      const owned = await lockClaims(
        tx,
        requests.map((request) => request.recorder),
      );
      const live = requests.filter((_, i) => owned[i]);
      const reclaimed = await this.store.reclaimLapsedHolds(tx, eventId, now);
      const available = event.available + reclaimed.seats;
      const granted = allocate(
        available,
        live.map((request) => request.qty),
      );
      const winners = live.filter((_, i) => granted[i]);
      const ids = winners.length > 0 ? await this.store.insertHolds(tx, eventId, winners, now, expiresAt) : [];
      await this.outbox.record(tx, batchChanges(event, reclaimed.holds, winners, ids), now);
      const decided = decide(eventId, live, { available, granted, ids, expiresAt });
      await recordOutcomes(
        tx,
        live.map((request, i) => [request.recorder, decided[i]!] as const),
      );
      let next = 0;
      return requests.map((_, i) => (owned[i] ? decided[next++]! : keyTakenOver()));
    });
    this.outbox.committed();
    this.metrics?.holdBatchSize.observe(requests.length);
    if (outcomes === null) return requests.map(() => notFound('event', eventId));
    const refused = outcomes.filter((outcome) => outcome instanceof DomainError).length;
    this.metrics?.holdsRefused.inc(refused);
    this.metrics?.holdsGranted.inc(outcomes.length - refused);
    return outcomes;
  }

  /**
   * The common case of a flash sale, in one statement: every request fits, none carries an
   * Idempotency-Key (whose response must be stored in the same transaction), nothing to reclaim.
   * Null when it does not apply.
   */
  private async grantFast(
    eventId: number,
    requests: HoldRequest[],
    now: Date,
    expiresAt: Date,
  ): Promise<GrantedHold[] | null> {
    if (this.store.grantAllFitting === undefined || requests.some((request) => request.recorder !== undefined))
      return null;
    const ids = await this.store.grantAllFitting(eventId, requests, now, expiresAt, this.outbox.enabled);
    if (ids === null) return null;
    this.outbox.committed();
    this.metrics?.holdBatchSize.observe(requests.length);
    this.metrics?.holdsGranted.inc(requests.length);
    return requests.map((request, i) => ({
      holdId: ids[i]!,
      eventId,
      qty: request.qty,
      expiresAt,
      paymentToken: request.paymentToken,
    }));
  }
}

/**
 * A batch's changes, each with the event's snapshot just after it: the lapsed holds it
 * reclaimed, then the holds it granted, in order. After the reclaim no active hold of the event
 * has lapsed, so the stored counters are the exact snapshot.
 */
function batchChanges(
  event: EventBooks,
  reclaimed: Reclaimed['holds'],
  winners: NewHold[],
  ids: number[],
): NewChange[] {
  const { changes, after } = reclaimChanges(event, reclaimed);
  let counters: Counters = after;
  winners.forEach((hold, i) => {
    counters = { ...counters, available: counters.available - hold.qty, held: counters.held + hold.qty };
    changes.push({ eventId: event.id, type: 'hold.granted', holdId: ids[i]!, qty: hold.qty, snapshot: counters });
  });
  return changes;
}

interface BatchDecision {
  available: number;
  granted: boolean[];
  /** Ids of the granted holds, in request order. */
  ids: number[];
  expiresAt: Date;
}

/** Each request's outcome: its hold, or the refusal naming the seats left at its turn. */
function decide(eventId: number, requests: HoldRequest[], batch: BatchDecision): Array<Outcome<GrantedHold>> {
  let next = 0;
  let left = batch.available;
  return requests.map((request, i) => {
    if (!batch.granted[i]) {
      return new DomainError('insufficient_seats', `only ${left} of the ${request.qty} seats asked for are available`, {
        available: left,
        requested: request.qty,
      });
    }
    left -= request.qty;
    return {
      holdId: batch.ids[next++]!,
      eventId,
      qty: request.qty,
      expiresAt: batch.expiresAt,
      paymentToken: request.paymentToken,
    };
  });
}
