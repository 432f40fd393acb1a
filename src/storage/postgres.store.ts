// Every SQL statement the service runs on PostgreSQL and PGlite. One function, one statement;
// locking functions take the transaction first. Statements that change holds also move the
// seats in the event's counters, in the same statement, so the books balance after each one
// (the events_books_balance CHECK enforces it).
import { migratePostgres } from '../db/migrate.ts';
import type { PgDatabase, SqlRunner } from '../db/postgres.ts';
import { idempotencyStatements } from './postgres.idempotency.ts';
import type {
  BookingRow, BookingStatus, EventBooks, EventRow, HoldRow, LockedEvent, NewHold, Snapshot, Store, Tx,
} from './store.ts';
import { HOLD_COLUMNS, type HoldRecord, type SnapshotRecord, toHoldRow, toSnapshot } from './rows.ts';

const runner = (tx: Tx): SqlRunner => tx as unknown as SqlRunner;

/** The event's counters, and the seats of its lapsed, unreclaimed holds; `now` is $2. */
const SNAPSHOT_COLUMNS = `e.id, e.name, e.total_seats, e.available, e.held, e.booked,
                (select coalesce(sum(h.qty), 0) from holds h
                  where h.event_id = e.id and h.status = 'active' and h.expires_at <= $2) as lapsed`;

/** Inserts an event with all its seats available; `sql` is the database or a transaction. */
async function insertEvent(sql: SqlRunner, name: string, totalSeats: number, now: Date): Promise<EventRow> {
  const { rows } = await sql.query<{ id: number; created_at: Date }>(
    `insert into events (name, total_seats, available, created_at)
     values ($1, $2, $2, $3)
     returning id, created_at`,
    [name, totalSeats, now],
  );
  const row = rows[0]!;
  return { id: row.id, name, totalSeats, createdAt: row.created_at };
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

    insertEvent: (name, totalSeats, now) => insertEvent(db, name, totalSeats, now),

    async snapshot(eventId, now): Promise<Snapshot | null> {
      // The counters are O(1). The subquery only reads holds that have lapsed since the last
      // reclaim (hold path or sweeper), through the partial index on active holds, so it stays
      // small however many holds are stored; it is what makes the figures exact at `now`.
      const { rows } = await db.query<SnapshotRecord>(
        `select ${SNAPSHOT_COLUMNS}
           from events e
          where e.id = $1`,
        [eventId, now],
      );
      return rows[0] === undefined ? null : toSnapshot(rows[0]);
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
        `select ${HOLD_COLUMNS}
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.id = $1`,
        [holdId],
      );
      return rows[0] === undefined ? null : toHoldRow(rows[0]);
    },

    async recount(eventId, now) {
      const { rows } = await db.query<{ held: number; booked: number }>(
        `select (select coalesce(sum(qty), 0) from holds
                  where event_id = $1 and status = 'active' and expires_at > $2) as held,
                (select coalesce(sum(qty), 0) from bookings
                  where event_id = $1 and status = 'confirmed') as booked`,
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

    // ---- lifecycle: events listed and edited, holds read, released and extended, bookings cancelled

    insertEventTx: (tx, name, totalSeats, now) => insertEvent(runner(tx), name, totalSeats, now),

    async listSnapshots(afterId, limit, now) {
      // Keyset pagination on the primary key: each page costs the same however deep it is.
      const { rows } = await db.query<SnapshotRecord>(
        `select ${SNAPSHOT_COLUMNS}
           from events e
          where e.id > $1
          order by e.id
          limit $3`,
        [afterId, now, limit],
      );
      return rows.map(toSnapshot);
    },

    async lockEventBooks(tx, eventId): Promise<EventBooks | null> {
      const { rows } = await runner(tx).query<EventBooks>(
        `select id, name, total_seats as total, available, held, booked
           from events where id = $1 for update`,
        [eventId],
      );
      return rows[0] ?? null;
    },

    async updateEvent(tx, eventId, name, totalSeats) {
      // available is derived in the same statement, so the books balance whatever the new total.
      await runner(tx).query(
        `update events set name = $2, total_seats = $3, available = $3 - held - booked
          where id = $1`,
        [eventId, name, totalSeats],
      );
    },

    async lockHold(tx, holdId): Promise<HoldRow | null> {
      const { rows } = await runner(tx).query<HoldRecord>(
        `select ${HOLD_COLUMNS}
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.id = $1
            for update of h`,
        [holdId],
      );
      return rows[0] === undefined ? null : toHoldRow(rows[0]);
    },

    async setHoldExpiry(tx, holdId, expiresAt) {
      const { rowCount } = await runner(tx).query(
        `update holds set expires_at = $2 where id = $1 and status = 'active'`,
        [holdId, expiresAt],
      );
      return rowCount > 0;
    },

    async findBooking(bookingId): Promise<BookingRow | null> {
      const { rows } = await db.query<{
        id: number; event_id: number; hold_id: number; qty: number; status: BookingStatus;
        created_at: Date; cancelled_at: Date | null; payment_token_hash: Uint8Array;
      }>(
        `select b.id, b.event_id, b.hold_id, b.qty, b.status, b.created_at, b.cancelled_at,
                h.payment_token_hash
           from bookings b
           join holds h on h.id = b.hold_id
          where b.id = $1`,
        [bookingId],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        id: row.id,
        eventId: row.event_id,
        holdId: row.hold_id,
        qty: row.qty,
        status: row.status,
        createdAt: row.created_at,
        cancelledAt: row.cancelled_at,
        paymentTokenHash: Buffer.from(row.payment_token_hash),
      };
    },

    async cancelBooking(tx, bookingId, now) {
      const { rows } = await runner(tx).query(
        `with cancelled as (
           update bookings set status = 'cancelled', cancelled_at = $2
            where id = $1 and status = 'confirmed'
           returning event_id, qty
         )
         update events set booked = booked - cancelled.qty, available = available + cancelled.qty
           from cancelled
          where events.id = cancelled.event_id
         returning events.id`,
        [bookingId, now],
      );
      return rows.length > 0;
    },

    ...idempotencyStatements(db),
  };
}
