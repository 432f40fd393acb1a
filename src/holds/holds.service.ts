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
import type { Counters, EventLimits, NewChange, NewHold } from '../model.ts';
import { type Outbox, reclaimChanges } from '../changes/outbox.ts';
import type { Store } from '../storage/store.ts';
import { expireOffers, offerFreedSeats } from '../waitlist/offers.ts';
import { KeyedBatcher } from './keyed-batcher.ts';
import { newPaymentToken } from './payment-token.ts';

export interface HoldGrantConfig {
  holdTtlSeconds: number;
  waitlistOfferTtlSeconds: number;
  holdBatchMax: number;
  holdQueueMax: number;
}

export interface GrantedHold {
  holdId: number;
  eventId: number;
  qty: number;
  customer: string | null;
  expiresAt: Date;
  paymentToken: string;
}

interface HoldRequest extends NewHold {
  paymentToken: string;
  recorder: Recorder<GrantedHold> | undefined;
}

/** What a batch's decisions are made against, read under the event's lock after the reclaim. */
export interface GrantState {
  eventId: number;
  now: Date;
  limits: EventLimits;
  available: number;
  /** Seats already counted against each customer of the batch (customer_seats). */
  customerSeats: Map<string, number>;
}

/**
 * First come, first served, each request on its own: a request that cannot be granted is
 * refused without blocking smaller ones behind it. In order, a request must carry a customer
 * if the event requires one, stay within max_seats_per_hold, keep its customer within
 * max_seats_per_customer (counting what the batch granted them before it), and fit.
 * Null for a request granted, else its refusal.
 */
export function decideHolds(
  requests: ReadonlyArray<{ qty: number; customer: string | null; admissionTicket?: number | null }>,
  state: GrantState,
): Array<DomainError | null> {
  const { limits } = state;
  const seats = new Map(state.customerSeats);
  let left = state.available;
  return requests.map(({ qty, customer, admissionTicket }) => {
    if (limits.saleOpensAt !== null && state.now < limits.saleOpensAt) {
      return new DomainError('sale_not_open', `the sale opens at ${limits.saleOpensAt.toISOString()}`, {
        sale_opens_at: limits.saleOpensAt.toISOString(),
      });
    }
    // The token itself (signature, event, expiry, customer) was checked at the edge, before
    // the request was queued: here only whether the event, as locked now, needs one.
    if (limits.queue !== null && (admissionTicket ?? null) === null) {
      return new DomainError(
        'admission_required',
        `this event sells through its queue: join it at POST /events/${state.eventId}/queue, wait for your turn, ` +
          'and send the admission token you are then given in the Admission-Token header',
        { queue: `/events/${state.eventId}/queue` },
      );
    }
    if (customer === null && limits.customerRequired) {
      return new DomainError('customer_required', 'this event sells only to a named customer: give hold.customer');
    }
    if (limits.maxSeatsPerHold !== null && qty > limits.maxSeatsPerHold) {
      return new DomainError(
        'hold_too_large',
        `one hold of this event takes at most ${limits.maxSeatsPerHold} seats (max_seats_per_hold)`,
        { limit: limits.maxSeatsPerHold, requested: qty },
      );
    }
    const inUse = customer === null ? 0 : (seats.get(customer) ?? 0);
    if (customer !== null && limits.maxSeatsPerCustomer !== null && inUse + qty > limits.maxSeatsPerCustomer) {
      return new DomainError(
        'customer_limit_reached',
        `this customer already has ${inUse} of the ${limits.maxSeatsPerCustomer} seats one customer may hold or book`,
        { limit: limits.maxSeatsPerCustomer, in_use: inUse, requested: qty },
      );
    }
    if (qty > left) {
      return new DomainError('insufficient_seats', `only ${left} of the ${qty} seats asked for are available`, {
        available: left,
        requested: qty,
      });
    }
    left -= qty;
    if (customer !== null) seats.set(customer, inUse + qty);
    return null;
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

  /**
   * `customer` normalised already (customer.ts); null for an anonymous hold. `admissionTicket`:
   * the ticket of the admission token the request carried, checked already (QueueService); null
   * without one.
   */
  createHold(
    eventId: number,
    qty: number,
    customer: string | null,
    admissionTicket: number | null,
    recorder?: Recorder<GrantedHold>,
  ): Promise<GrantedHold> {
    const { token, hash } = newPaymentToken();
    return this.batcher.submit(eventId, {
      qty,
      customer,
      admissionTicket,
      paymentToken: token,
      paymentTokenHash: hash,
      recorder,
    });
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
      // The reclaim's changes first, then the offers its seats make, then the grants.
      const { changes: expired, after } = reclaimChanges(event, reclaimed.holds);
      await this.outbox.record(tx, expired, now);
      const waitlist = { store: this.store, outbox: this.outbox, offerTtlSeconds: this.config.waitlistOfferTtlSeconds };
      await expireOffers(waitlist, tx, eventId, reclaimed.holds, now);
      const offers = await offerFreedSeats(waitlist, tx, eventId, event.waiting, now);
      const waiting = offers?.waiting ?? event.waiting;
      const available = offers?.available ?? after.available;
      const customers = [...new Set(live.flatMap((request) => (request.customer === null ? [] : [request.customer])))];
      const refusals = decideHolds(live, {
        eventId,
        now,
        limits: event.limits,
        // While anyone waits, every free seat belongs to the waiting list.
        available: waiting > 0 ? 0 : available,
        customerSeats:
          event.limits.maxSeatsPerCustomer === null
            ? new Map<string, number>()
            : await this.store.seatsOfCustomers(tx, eventId, customers),
      });
      const winners = live.filter((_, i) => refusals[i] === null);
      const ids = winners.length > 0 ? await this.store.insertHolds(tx, eventId, winners, now, expiresAt) : [];
      const start = { ...after, available, held: after.held + (after.available - available), waiting };
      await this.outbox.record(tx, grantChanges(eventId, start, winners, ids), now);
      const decided = outcomesOf(eventId, live, refusals, ids, expiresAt);
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
      customer: request.customer,
      expiresAt,
      paymentToken: request.paymentToken,
    }));
  }
}

/** The hold.granted changes of a batch, each with the event's snapshot just after it. */
function grantChanges(eventId: number, start: Counters, winners: NewHold[], ids: number[]): NewChange[] {
  let counters = start;
  return winners.map((hold, i) => {
    counters = { ...counters, available: counters.available - hold.qty, held: counters.held + hold.qty };
    return {
      eventId,
      type: 'hold.granted',
      holdId: ids[i]!,
      qty: hold.qty,
      customer: hold.customer,
      snapshot: counters,
    };
  });
}

/** Each request's outcome: its hold, or its refusal. */
function outcomesOf(
  eventId: number,
  requests: HoldRequest[],
  refusals: Array<DomainError | null>,
  /** Ids of the granted holds, in request order. */
  ids: number[],
  expiresAt: Date,
): Array<Outcome<GrantedHold>> {
  let next = 0;
  return requests.map((request, i) => {
    const refusal = refusals[i];
    if (refusal !== null && refusal !== undefined) return refusal;
    return {
      holdId: ids[next++]!,
      eventId,
      qty: request.qty,
      customer: request.customer,
      expiresAt,
      paymentToken: request.paymentToken,
    };
  });
}
