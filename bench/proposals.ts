// Prototypes of three changes proposed for src/ (see docs/performance.md, "What limits it"), kept
// here so the benchmark can measure them against the current code in the same run. Bench-only:
// nothing in the service uses them.
//
//   deferred  the service's batched grant, unchanged, behind a batcher that starts a key's
//             first batch on setImmediate instead of synchronously. On PGlite every query
//             resolves in microtasks, so a batch started synchronously runs to its commit
//             before the event loop reads the next request: every batch holds one request.
//   onetrip   the deferred batcher, granting each batch with one autocommitted statement
//             instead of BEGIN, lock, reclaim, insert, COMMIT. The event row is then locked for
//             one round trip, not five, none of which waits behind the Node event loop.
//   proposed  onetrip, with payment tokens cut from a pooled buffer of random bytes (as Node's
//             own randomUUID does) instead of one crypto.randomBytes call per hold, which
//             profiling shows costs ~7 us on an idle core and ~25 us under load here.
import { randomFillSync } from 'node:crypto';
import type { Clock } from '../src/clock.ts';
import type { PgDatabase } from '../src/db/postgres.ts';
import { DomainError, notFound } from '../src/errors.ts';
import { type GrantedHold, type HoldsConfig, allocate } from '../src/holds/holds.service.ts';
import { hashToken, newPaymentToken } from '../src/holds/payment-token.ts';
import type { Store } from '../src/storage/store.ts';
import type { HoldStrategy } from './baselines.ts';

type Runner<K, I, O> = (key: K, items: I[]) => Promise<Array<O | Error>>;

interface Waiter<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

/** src/holds/keyed-batcher.ts with one change, marked below. */
export class DeferredBatcher<K, I, O> {
  private readonly queues = new Map<K, Array<Waiter<I, O>>>();

  constructor(private readonly run: Runner<K, I, O>, private readonly maxBatch: number,
    private readonly maxQueue: number) {}

  submit(key: K, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const waiter = { item, resolve, reject };
      const queue = this.queues.get(key);
      if (queue !== undefined) {
        if (queue.length >= this.maxQueue) {
          reject(new DomainError('overloaded', 'too many requests are waiting for this event; retry shortly'));
        } else {
          queue.push(waiter);
        }
        return;
      }
      const fresh = [waiter];
      this.queues.set(key, fresh);
      // THE CHANGE: start after the requests already read in this event-loop turn have
      // joined the queue. setImmediate is not a timer: it runs once the current I/O phase
      // is done, so a request arriving alone still goes at once.
      setImmediate(() => void this.drain(key, fresh));
    });
  }

  private async drain(key: K, queue: Array<Waiter<I, O>>): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, this.maxBatch);
      try {
        const results = await this.run(key, batch.map((waiter) => waiter.item));
        batch.forEach((waiter, i) => {
          const result = results[i];
          if (result instanceof Error) waiter.reject(result);
          else waiter.resolve(result as O);
        });
      } catch (error) {
        for (const waiter of batch) waiter.reject(error);
      }
    }
    this.queues.delete(key);
  }
}

interface Request {
  qty: number;
  token: string;
  hash: Buffer;
}

const refusal = (left: number, qty: number) =>
  new DomainError('insufficient_seats', `only ${left} of the ${qty} seats asked for are available`, {
    available: left,
    requested: qty,
  });

/** Turns per-request grant decisions into results, as HoldsService.grantBatch does. */
function results(eventId: number, requests: Request[], available: number, granted: boolean[], ids: number[],
  expiresAt: Date): Array<GrantedHold | Error> {
  let next = 0;
  let left = available;
  return requests.map((request, i) => {
    if (!granted[i]) return refusal(left, request.qty);
    left -= request.qty;
    return { holdId: ids[next++]!, eventId, qty: request.qty, expiresAt, paymentToken: request.token };
  });
}

/** The service's grant (HoldsService.grantBatch, same store calls), behind the deferred batcher. */
export function deferredHolds(store: Store, clock: Clock, config: HoldsConfig): HoldStrategy {
  const batcher = new DeferredBatcher<number, Request, GrantedHold>(async (eventId, requests) => {
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + config.holdTtlSeconds * 1000);
    const outcome = await store.transaction(async (tx) => {
      const event = await store.lockEvent(tx, eventId);
      if (event === null) return null;
      const reclaimed = await store.reclaimLapsedHolds(tx, eventId, now);
      const available = event.available + reclaimed.seats;
      const granted = allocate(available, requests.map((request) => request.qty));
      const winners = requests.filter((_, i) => granted[i]).map((r) => ({ qty: r.qty, paymentTokenHash: r.hash }));
      const ids = winners.length > 0 ? await store.insertHolds(tx, eventId, winners, now, expiresAt) : [];
      return { available, granted, ids };
    });
    if (outcome === null) return requests.map(() => notFound('event', eventId));
    return results(eventId, requests, outcome.available, outcome.granted, outcome.ids, expiresAt);
  }, config.holdBatchMax, config.holdQueueMax);
  return {
    createHold(eventId, qty) {
      const { token, hash } = newPaymentToken();
      return batcher.submit(eventId, { qty, token, hash });
    },
  };
}

/**
 * One statement grants a whole batch: lock the event row, reclaim its lapsed holds, decide each
 * request first come first served (a recursive CTE carries the seats left, so a request that
 * does not fit is refused without blocking smaller ones behind it, exactly like allocate()),
 * insert the winners and move the seats, all in one autocommitted round trip. The holds scan
 * takes the event id from the locked row, so the event row is locked before any hold row,
 * keeping the service's one lock order.
 */
export const GRANT_BATCH_SQL = `
with recursive
  req as (
    select r.n, r.qty, r.hash
      from unnest($2::int[], $3::text[]) with ordinality as r (qty, hash, n)
  ),
  ev as (
    select id, available from events where id = $1 for update
  ),
  lapsed as (
    update holds set status = 'expired'
     where event_id = (select id from ev) and status = 'active' and expires_at <= $4
    returning qty
  ),
  start as (
    select ev.available + (select coalesce(sum(qty), 0) from lapsed)::int as available from ev
  ),
  alloc (n, left_after, granted) as (
    select 0::bigint, available, false from start
    union all
    select req.n,
           case when req.qty <= alloc.left_after then alloc.left_after - req.qty else alloc.left_after end,
           req.qty <= alloc.left_after
      from alloc join req on req.n = alloc.n + 1
  ),
  granted as (
    insert into holds (event_id, qty, payment_token_hash, created_at, expires_at)
    select $1, req.qty, decode(req.hash, 'hex'), $4, $5
      from req join alloc using (n)
     where alloc.granted
     order by req.n
    returning id, qty, payment_token_hash
  ),
  moved as (
    update events
       set available = available + l.seats - g.seats, held = held - l.seats + g.seats
      from (select coalesce(sum(qty), 0)::int as seats from lapsed) l,
           (select coalesce(sum(qty), 0)::int as seats from granted) g
     where events.id = (select id from ev)
  )
select (select available from start) as available,
       (select array_agg(n order by n) from alloc where granted) as granted_n,
       (select array_agg(id) from granted) as ids,
       (select array_agg(encode(payment_token_hash, 'hex')) from granted) as hashes`;

type TokenSource = () => { token: string; hash: Buffer };

/** Same tokens as newPaymentToken (24 CSPRNG bytes, base64url), drawn from a pool. */
const TOKEN_BYTES = 24;
const TOKENS_PER_FILL = 256;
let pool = Buffer.alloc(0);
let offset = 0;
export function pooledPaymentToken(): { token: string; hash: Buffer } {
  if (offset + TOKEN_BYTES > pool.length) {
    // A fresh buffer each time: a slice handed out is never overwritten or reused.
    pool = randomFillSync(Buffer.allocUnsafe(TOKEN_BYTES * TOKENS_PER_FILL));
    offset = 0;
  }
  const token = pool.toString('base64url', offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return { token, hash: hashToken(token) };
}

export function oneTripHolds(db: PgDatabase, clock: Clock, config: HoldsConfig,
  tokens: TokenSource = newPaymentToken): HoldStrategy {
  const batcher = new DeferredBatcher<number, Request, GrantedHold>(async (eventId, requests) => {
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + config.holdTtlSeconds * 1000);
    const { rows } = await db.query<{ available: number | null; granted_n: number[] | null; ids: number[] | null;
      hashes: string[] | null }>(GRANT_BATCH_SQL,
      [eventId, requests.map((r) => r.qty), requests.map((r) => r.hash.toString('hex')), now, expiresAt]);
    const row = rows[0]!;
    if (row.available === null) return requests.map(() => notFound('event', eventId));
    const grantedAt = new Set((row.granted_n ?? []).map(Number));
    const granted = requests.map((_, i) => grantedAt.has(i + 1));
    const idByHash = new Map((row.hashes ?? []).map((hash, i) => [hash, Number(row.ids![i])]));
    const ids = requests.filter((_, i) => granted[i]).map((r) => idByHash.get(r.hash.toString('hex'))!);
    return results(eventId, requests, row.available, granted, ids, expiresAt);
  }, config.holdBatchMax, config.holdQueueMax);
  return {
    createHold(eventId, qty) {
      const { token, hash } = tokens();
      return batcher.submit(eventId, { qty, token, hash });
    },
  };
}
