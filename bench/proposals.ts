// Prototypes of changes proposed for src/ (see docs/performance.md, "What limits it"), kept here
// so the benchmark can measure them against the current code in the same run. Bench-only:
// nothing in the service uses them. Smaller proposals go in bench/proposals/ as patches.
//
//   onetrip   the service's KeyedBatcher, granting each batch with one autocommitted statement
//             instead of BEGIN, lock, reclaim, insert, COMMIT. The event row is then locked for
//             one round trip, not five, none of which waits behind the Node event loop.
// (Three earlier proposals, a PGlite yield per transaction, pooled token entropy and helmet
// built once, were measured here as patches and are in the service since commit 5b352e7.)
import type { Clock } from '../src/clock.ts';
import type { PgDatabase } from '../src/db/postgres.ts';
import { DomainError, notFound } from '../src/errors.ts';
import type { GrantedHold, HoldsConfig } from '../src/holds/holds.service.ts';
import { KeyedBatcher } from '../src/holds/keyed-batcher.ts';
import { newPaymentToken } from '../src/holds/payment-token.ts';
import type { HoldStrategy } from './baselines.ts';

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

/** Turns per-request grant decisions into results, as HoldsService does. */
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

export function oneTripHolds(db: PgDatabase, clock: Clock, config: HoldsConfig): HoldStrategy {
  const batcher = new KeyedBatcher<number, Request, GrantedHold>(async (eventId, requests) => {
    // PGlite answers in microtasks; one turn of the event loop lets the requests that arrived
    // meanwhile join the queue (patch 1 does this for the service's transactions).
    if (db.engine === 'pglite') await new Promise((resolve) => setImmediate(resolve));
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
      const { token, hash } = newPaymentToken();
      return batcher.submit(eventId, { qty, token, hash });
    },
  };
}
