// The two ways of granting holds that the service's batched path is measured against.
// Bench-only: the service always runs HoldsService; bench/server.ts takes over POST /holds with
// one of these (see there). Both keep the event's counters in step with the rows (the schema's
// events_books_balance CHECK demands it), so the benchmark checks their books like the service's.
//
// PostgreSQL dialect only (PostgreSQL and PGlite): the statements are the ones the published
// figures measured, one round trip each. Neither reclaims lapsed holds: the benchmark runs its
// servers with a TTL far longer than a run, so no hold lapses while they are measured.
import type { Clock } from '../src/clock.ts';
import { DomainError, notFound } from '../src/errors.ts';
import type { GrantedHold } from '../src/holds/holds.service.ts';
import { newPaymentToken } from '../src/holds/payment-token.ts';
import type { Sql, SqlDatabase } from '../src/storage/sql.ts';

/** batched is the service's own path; single and design are the baselines below. */
export const STRATEGIES = ['batched', 'single', 'design'] as const;
export type Strategy = (typeof STRATEGIES)[number];
export type Baseline = Exclude<Strategy, 'batched'>;

export interface HoldStrategy {
  createHold(eventId: number, qty: number): Promise<GrantedHold>;
}

interface Settings {
  holdTtlSeconds: number;
}

const insufficient = (available: number, qty: number) =>
  new DomainError('insufficient_seats', `only ${available} of the ${qty} seats asked for are available`, {
    available,
    requested: qty,
  });

/** Inserts one hold and moves its seats from available to held, in one statement. */
async function insertHold(tx: Sql, eventId: number, qty: number, hash: Buffer, now: Date, expiresAt: Date) {
  const [row] = await tx.rows<{ id: number }>(
    `with hold as (
       insert into holds (event_id, qty, payment_token_hash, created_at, expires_at)
       values ($1, $2, $3, $4, $5)
       returning id
     ), moved as (
       update events set available = available - $2, held = held + $2 where id = $1
     )
     select id from hold`,
    [eventId, qty, hash, now, expiresAt],
  );
  return row!.id;
}

/**
 * The design's approach (seed-design.md, "Concurrency & idempotency"): in one transaction lock
 * the event row, SUM the active unexpired holds and the bookings, compare, insert the hold. Each
 * statement is its own round trip, as an ORM issues them. The counter update folded into the
 * insert is not in the design; it is one primary-key update, kept so the books check applies.
 */
export function designHolds(db: SqlDatabase, clock: Clock, settings: Settings): HoldStrategy {
  return {
    async createHold(eventId, qty) {
      const { token, hash } = newPaymentToken();
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + settings.holdTtlSeconds * 1000);
      const holdId = await db.transaction(async (tx) => {
        const [event] = await tx.rows<{ total_seats: number }>(
          'select total_seats from events where id = $1 for update',
          [eventId],
        );
        if (event === undefined) return null;
        const [held] = await tx.rows<{ seats: number }>(
          `select coalesce(sum(qty), 0) as seats from holds
            where event_id = $1 and status = 'active' and expires_at > $2`,
          [eventId, now],
        );
        const [booked] = await tx.rows<{ seats: number }>(
          'select coalesce(sum(qty), 0) as seats from bookings where event_id = $1',
          [eventId],
        );
        const available = Math.max(Number(event.total_seats) - Number(held!.seats) - Number(booked!.seats), 0);
        if (qty > available) throw insufficient(available, qty);
        return insertHold(tx, eventId, qty, hash, now, expiresAt);
      });
      if (holdId === null) throw notFound('event', eventId);
      return { holdId, eventId, qty, expiresAt, paymentToken: token };
    },
  };
}

/**
 * The unbatched counter: one conditional update decides the grant, then the hold is inserted,
 * one transaction per request. The update holds the event row's lock until commit, so grants
 * for one event are serialised behind each commit's WAL flush.
 */
export function singleStatementHolds(db: SqlDatabase, clock: Clock, settings: Settings): HoldStrategy {
  return {
    async createHold(eventId, qty) {
      const { token, hash } = newPaymentToken();
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + settings.holdTtlSeconds * 1000);
      const holdId = await db.transaction(async (tx) => {
        const moved = await tx.rows(
          `update events set available = available - $2, held = held + $2
            where id = $1 and available >= $2
           returning id`,
          [eventId, qty],
        );
        if (moved.length === 0) {
          const [event] = await tx.rows<{ available: number }>('select available from events where id = $1', [eventId]);
          if (event === undefined) return null;
          throw insufficient(Number(event.available), qty);
        }
        const [hold] = await tx.rows<{ id: number }>(
          `insert into holds (event_id, qty, payment_token_hash, created_at, expires_at)
           values ($1, $2, $3, $4, $5)
           returning id`,
          [eventId, qty, hash, now, expiresAt],
        );
        return hold!.id;
      });
      if (holdId === null) throw notFound('event', eventId);
      return { holdId, eventId, qty, expiresAt, paymentToken: token };
    },
  };
}

/** The baseline for a strategy, on a PostgreSQL-dialect database. */
export function baselineHolds(strategy: Baseline, db: SqlDatabase, clock: Clock, settings: Settings): HoldStrategy {
  if (db.dialect !== 'postgres') throw new Error(`the ${strategy} baseline runs on PostgreSQL and PGlite only`);
  return strategy === 'single' ? singleStatementHolds(db, clock, settings) : designHolds(db, clock, settings);
}
