// Every SQL statement the service runs on MySQL 8 and MariaDB 10.6+. One function per
// operation; locking functions take the transaction first.
//
// MySQL has no RETURNING on UPDATE (MariaDB has INSERT … RETURNING, MySQL 8 does not, so we
// use neither), so an operation that PostgreSQL does in one statement is a few here: change the
// hold rows, read the affected-row count, then move the same seats in the event's counters.
// That is safe because every caller has locked the event row first (lockEvent), and every
// writer of an event's holds takes that lock: between our statements nobody else can change
// this event's holds or counters. Each statement leaves the counters balanced on its own (the
// events_books_balance CHECK enforces it).
import { migrateMysql, type MysqlDatabase, type MysqlRunner, openMysql } from '../db/mysql.ts';
import type { EventRow, HoldRow, HoldStatus, LockedEvent, NewHold, Snapshot, Store, Tx } from './store.ts';

const runner = (tx: Tx): MysqlRunner => tx as unknown as MysqlRunner;

/** ER_DUP_ENTRY: a unique index refused the row. */
const ER_DUP_ENTRY = 1062;

interface HoldRecord {
  id: number;
  event_id: number;
  qty: number;
  status: HoldStatus;
  payment_token_hash: Buffer;
  created_at: Date;
  expires_at: Date;
  booking_id: number | null;
}

export async function openMysqlStore(url: string, poolSize: number): Promise<Store> {
  return mysqlStore(await openMysql(url, poolSize));
}

export function mysqlStore(db: MysqlDatabase): Store {
  return {
    backend: 'mysql',
    transaction: (fn) => db.transaction((tx) => fn(tx as unknown as Tx)),
    migrate: () => migrateMysql(db),
    ping: async () => {
      await db.rows('select 1');
    },
    close: () => db.close(),
    isUniqueViolation: (error) => (error as { errno?: unknown } | null)?.errno === ER_DUP_ENTRY,

    async insertEvent(name, totalSeats, now): Promise<EventRow> {
      const { insertId } = await db.write(
        `insert into events (name, total_seats, available, created_at)
         values (?, ?, ?, ?)`,
        [name, totalSeats, totalSeats, now],
      );
      // datetime(3) stores a Date's milliseconds exactly, so `now` is what was stored.
      return { id: insertId, name, totalSeats, createdAt: now };
    },

    async snapshot(eventId, now): Promise<Snapshot | null> {
      // The counters are O(1). The subquery only reads holds that have lapsed since the last
      // reclaim, through holds_by_event_status_expiry, so it stays small however many holds
      // are stored; it is what makes the figures exact at `now`. One statement, one read view.
      const rows = await db.rows<{
        id: number; name: string; total_seats: number; available: number; held: number;
        booked: number; lapsed: number;
      }>(
        `select e.id, e.name, e.total_seats, e.available, e.held, e.booked,
                (select coalesce(sum(h.qty), 0) from holds h force index (holds_by_event_status_expiry)
                  where h.event_id = e.id and h.status = 'active' and h.expires_at <= ?) as lapsed
           from events e
          where e.id = ?`,
        [now, eventId],
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
      const rows = await runner(tx).rows<LockedEvent>(
        'select id, available from events where id = ? for update',
        [eventId],
      );
      return rows[0] ?? null;
    },

    async lockEventSkipLocked(tx, eventId): Promise<LockedEvent | null> {
      // skip locked: MySQL 8.0.1+, MariaDB 10.6+.
      const rows = await runner(tx).rows<LockedEvent>(
        'select id, available from events where id = ? for update skip locked',
        [eventId],
      );
      return rows[0] ?? null;
    },

    async reclaimLapsedHolds(tx, eventId, now) {
      const sql = runner(tx);
      // Count first, under the event lock: usually nothing has lapsed and this is the only
      // statement. The same predicate then marks exactly the rows counted, since no other
      // writer can touch this event's holds until we commit.
      // Both statements force the per-event index. Left to itself the optimizer may range over
      // holds_by_status_expiry instead, whose range covers every event's lapsed holds, and the
      // locking scan then waits on rows another event's transaction has locked: two events
      // reclaiming at once deadlock. On the per-event index a scan touches only this event.
      const [lapsed] = (await sql.rows<{ holds: number; seats: number }>(
        `select count(*) as holds, coalesce(sum(qty), 0) as seats
           from holds force index (holds_by_event_status_expiry)
          where event_id = ? and status = 'active' and expires_at <= ?
          for update`,
        [eventId, now],
      )) as [{ holds: number; seats: number }];
      if (lapsed.holds === 0) return { holds: 0, seats: 0 };
      await sql.write(
        `update holds force index (holds_by_event_status_expiry) set status = 'expired'
          where event_id = ? and status = 'active' and expires_at <= ?`,
        [eventId, now],
      );
      await sql.write(
        'update events set held = held - ?, available = available + ? where id = ?',
        [lapsed.seats, lapsed.seats, eventId],
      );
      return { holds: lapsed.holds, seats: lapsed.seats };
    },

    async insertHolds(tx, eventId, holds: NewHold[], now, expiresAt) {
      const sql = runner(tx);
      await sql.write(
        `insert into holds (event_id, qty, payment_token_hash, created_at, expires_at)
         values ?`,
        [holds.map((hold) => [eventId, hold.qty, hold.paymentTokenHash, now, expiresAt])],
      );
      const seats = holds.reduce((sum, hold) => sum + hold.qty, 0);
      await sql.write(
        'update events set available = available - ?, held = held + ? where id = ?',
        [seats, seats, eventId],
      );
      // A multi-row insert's ids need not be consecutive (innodb_autoinc_lock_mode 2, the
      // MySQL 8 default); tokens are unique, so they map each new id back to its request.
      const rows = await sql.rows<{ id: number; payment_token_hash: Buffer }>(
        'select id, payment_token_hash from holds where payment_token_hash in (?)',
        [holds.map((hold) => hold.paymentTokenHash)],
      );
      const idByHash = new Map(rows.map((row) => [row.payment_token_hash.toString('hex'), row.id]));
      return holds.map((hold) => idByHash.get(hold.paymentTokenHash.toString('hex'))!);
    },

    async bookHold(tx, hold, now) {
      const sql = runner(tx);
      const { affectedRows } = await sql.write(
        `update holds set status = 'booked'
          where id = ? and status = 'active' and expires_at > ?`,
        [hold.id, now],
      );
      if (affectedRows === 0) return null;
      const { insertId } = await sql.write(
        `insert into bookings (event_id, hold_id, qty, created_at)
         values (?, ?, ?, ?)`,
        [hold.eventId, hold.id, hold.qty, now],
      );
      await sql.write(
        'update events set held = held - ?, booked = booked + ? where id = ?',
        [hold.qty, hold.qty, hold.eventId],
      );
      return insertId;
    },

    async endHold(tx, hold, status, now) {
      const sql = runner(tx);
      const { affectedRows } = await sql.write(
        `update holds set status = ?, expires_at = least(expires_at, cast(? as datetime(3)))
          where id = ? and status = 'active'`,
        [status, now, hold.id],
      );
      if (affectedRows === 0) return false;
      await sql.write(
        'update events set held = held - ?, available = available + ? where id = ?',
        [hold.qty, hold.qty, hold.eventId],
      );
      return true;
    },

    async findHold(holdId): Promise<HoldRow | null> {
      const rows = await db.rows<HoldRecord>(
        `select h.id, h.event_id, h.qty, h.status, h.payment_token_hash, h.created_at,
                h.expires_at, b.id as booking_id
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.id = ?`,
        [holdId],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        id: row.id,
        eventId: row.event_id,
        qty: row.qty,
        status: row.status,
        paymentTokenHash: row.payment_token_hash,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        bookingId: row.booking_id,
      };
    },

    async recount(eventId, now) {
      const rows = await db.rows<{ held: number; booked: number }>(
        `select (select coalesce(sum(qty), 0) from holds
                  where event_id = ? and status = 'active' and expires_at > ?) as held,
                (select coalesce(sum(qty), 0) from bookings where event_id = ?) as booked`,
        [eventId, now, eventId],
      );
      return rows[0]!;
    },

    async eventsWithLapsedHolds(now, limit) {
      const rows = await db.rows<{ event_id: number }>(
        `select event_id from holds
          where status = 'active' and expires_at <= ?
          group by event_id
          order by min(expires_at)
          limit ?`,
        [now, limit],
      );
      return rows.map((row) => row.event_id);
    },
  };
}
