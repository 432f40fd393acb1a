// Every SQL statement the service runs on PostgreSQL and PGlite. One function, one statement;
// locking functions take the transaction first. Statements that change holds also move the
// seats in the event's counters, in the same statement, so the books balance after each one
// (the events_books_balance CHECK enforces it).
import { migratePostgres } from '../db/migrate.ts';
import type { PgDatabase, SqlRunner } from '../db/postgres.ts';
import type { EventRow, HoldRow, HoldStatus, LockedEvent, NewHold, Snapshot, Store, Tx } from './store.ts';

const runner = (tx: Tx): SqlRunner => tx as unknown as SqlRunner;

interface HoldRecord {
  id: number;
  event_id: number;
  qty: number;
  status: HoldStatus;
  payment_token_hash: Uint8Array;
  created_at: Date;
  expires_at: Date;
  booking_id: number | null;
}

export function postgresStore(db: PgDatabase): Store {
  return {
    backend: db.engine,
    transaction: (fn) => db.transaction((tx) => fn(tx as unknown as Tx)),
    migrate: () => migratePostgres(db),
    ping: async () => {
      await db.query('select 1');
    },
    close: () => db.close(),
    isUniqueViolation: (error) => (error as { code?: unknown } | null)?.code === '23505',

    async insertEvent(name, totalSeats, now): Promise<EventRow> {
      const { rows } = await db.query<{ id: number; created_at: Date }>(
        `insert into events (name, total_seats, available, created_at)
         values ($1, $2, $2, $3)
         returning id, created_at`,
        [name, totalSeats, now],
      );
      const row = rows[0]!;
      return { id: row.id, name, totalSeats, createdAt: row.created_at };
    },

    async snapshot(eventId, now): Promise<Snapshot | null> {
      // The counters are O(1). The subquery only reads holds that have lapsed since the last
      // reclaim (hold path or sweeper), through the partial index on active holds, so it stays
      // small however many holds are stored; it is what makes the figures exact at `now`.
      const { rows } = await db.query<{
        id: number; name: string; total_seats: number; available: number; held: number;
        booked: number; lapsed: number;
      }>(
        `select e.id, e.name, e.total_seats, e.available, e.held, e.booked,
                (select coalesce(sum(h.qty), 0) from holds h
                  where h.event_id = e.id and h.status = 'active' and h.expires_at <= $2) as lapsed
           from events e
          where e.id = $1`,
        [eventId, now],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        eventId: row.id,
        name: row.name,
        total: row.total_seats,
        available: row.available + row.lapsed,
        held: row.held - row.lapsed,
        booked: row.booked,
      };
    },

    async lockEvent(tx, eventId): Promise<LockedEvent | null> {
      const { rows } = await runner(tx).query<LockedEvent>(
        'select id, available from events where id = $1 for update',
        [eventId],
      );
      return rows[0] ?? null;
    },

    async lockEventSkipLocked(tx, eventId): Promise<LockedEvent | null> {
      const { rows } = await runner(tx).query<LockedEvent>(
        'select id, available from events where id = $1 for update skip locked',
        [eventId],
      );
      return rows[0] ?? null;
    },

    async reclaimLapsedHolds(tx, eventId, now) {
      const { rows } = await runner(tx).query<{ holds: number; seats: number }>(
        `with lapsed as (
           update holds set status = 'expired'
            where event_id = $1 and status = 'active' and expires_at <= $2
           returning qty
         ), moved as (
           select count(*)::int as holds, coalesce(sum(qty), 0)::int as seats from lapsed
         )
         update events set held = held - moved.seats, available = available + moved.seats
           from moved
          where events.id = $1 and moved.seats > 0
         returning moved.holds, moved.seats`,
        [eventId, now],
      );
      return rows[0] ?? { holds: 0, seats: 0 };
    },

    async insertHolds(tx, eventId, holds: NewHold[], now, expiresAt) {
      const hashes = holds.map((hold) => hold.paymentTokenHash.toString('hex'));
      const { rows } = await runner(tx).query<{ id: number; hash: string }>(
        `with granted as (
           insert into holds (event_id, qty, payment_token_hash, created_at, expires_at)
           select $1, t.qty, decode(t.hash, 'hex'), $4, $5
             from unnest($2::int[], $3::text[]) as t (qty, hash)
           returning id, encode(payment_token_hash, 'hex') as hash
         ), moved as (
           update events set available = available - s.seats, held = held + s.seats
             from (select sum(q)::int as seats from unnest($2::int[]) as q) s
            where events.id = $1
         )
         select id, hash from granted`,
        [eventId, holds.map((hold) => hold.qty), hashes, now, expiresAt],
      );
      // Tokens are unique, so they map each new id back to its request whatever the row order.
      const idByHash = new Map(rows.map((row) => [row.hash, row.id]));
      return hashes.map((hash) => idByHash.get(hash)!);
    },

    async bookHold(tx, hold, now) {
      const { rows } = await runner(tx).query<{ id: number }>(
        `with booked_hold as (
           update holds set status = 'booked'
            where id = $1 and status = 'active' and expires_at > $2
           returning id, event_id, qty
         ), booking as (
           insert into bookings (event_id, hold_id, qty, created_at)
           select event_id, id, qty, $2 from booked_hold
           returning id, event_id, qty
         ), moved as (
           update events set held = held - booking.qty, booked = booked + booking.qty
             from booking
            where events.id = booking.event_id
         )
         select id from booking`,
        [hold.id, now],
      );
      return rows[0]?.id ?? null;
    },

    async endHold(tx, hold, status, now) {
      const { rows } = await runner(tx).query(
        `with ended as (
           update holds set status = $2, expires_at = least(expires_at, $3)
            where id = $1 and status = 'active'
           returning event_id, qty
         )
         update events set held = held - ended.qty, available = available + ended.qty
           from ended
          where events.id = ended.event_id
         returning events.id`,
        [hold.id, status, now],
      );
      return rows.length > 0;
    },

    async findHold(holdId): Promise<HoldRow | null> {
      const { rows } = await db.query<HoldRecord>(
        `select h.id, h.event_id, h.qty, h.status, h.payment_token_hash, h.created_at,
                h.expires_at, b.id as booking_id
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.id = $1`,
        [holdId],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        id: row.id,
        eventId: row.event_id,
        qty: row.qty,
        status: row.status,
        paymentTokenHash: Buffer.from(row.payment_token_hash),
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        bookingId: row.booking_id,
      };
    },

    async recount(eventId, now) {
      const { rows } = await db.query<{ held: number; booked: number }>(
        `select (select coalesce(sum(qty), 0) from holds
                  where event_id = $1 and status = 'active' and expires_at > $2) as held,
                (select coalesce(sum(qty), 0) from bookings where event_id = $1) as booked`,
        [eventId, now],
      );
      return rows[0]!;
    },

    async eventsWithLapsedHolds(now, limit) {
      const { rows } = await db.query<{ event_id: number }>(
        `select event_id from holds
          where status = 'active' and expires_at <= $1
          group by event_id
          order by min(expires_at)
          limit $2`,
        [now, limit],
      );
      return rows.map((row) => row.event_id);
    },
  };
}
