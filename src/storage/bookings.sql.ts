// Bookings: a hold made permanent (the statement that decides a sale), read, and cancelled.
// As in holds.sql.ts, each change moves the same seats in the event's counters, in one
// statement on PostgreSQL and under the event's row lock in a few on MySQL.
import type { BookingRow, BookingStatus, HoldRow } from '../model.ts';
import { type SqlDatabase, type Tx, bytes } from './sql.ts';

export interface BookRequest {
  hold: HoldRow;
  /** When the request was checked: the hold must still be unexpired at this instant. */
  now: Date;
}

export interface BookingStore {
  /**
   * Books each active hold unexpired at its request's `now`, all of one event (locked); per
   * request, in order, its new booking id, or null when the hold is no longer bookable (a hold
   * asked for twice is booked by the first request and null for the rest).
   */
  bookHolds(tx: Tx, eventId: number, requests: BookRequest[]): Promise<Array<number | null>>;
  findBooking(bookingId: number): Promise<BookingRow | null>;
  /** Confirmed -> cancelled, moving its seats from booked to available; false if not confirmed (event locked). */
  cancelBooking(tx: Tx, bookingId: number, now: Date): Promise<boolean>;
}

interface BookingRecord {
  id: number;
  event_id: number;
  hold_id: number;
  qty: number;
  customer: string | null;
  status: BookingStatus;
  created_at: Date;
  cancelled_at: Date | null;
  payment_token_hash: Uint8Array;
}

export function bookingStatements(db: SqlDatabase): BookingStore {
  return {
    ...(db.dialect === 'postgres' ? postgresBookings : mysqlBookings),

    async findBooking(bookingId) {
      const [row] = await db.rows<BookingRecord>(
        `select b.id, b.event_id, b.hold_id, b.qty, h.customer, b.status, b.created_at, b.cancelled_at, h.payment_token_hash
           from bookings b
           join holds h on h.id = b.hold_id
          where b.id = $1`,
        [bookingId],
      );
      if (row === undefined) return null;
      return {
        id: row.id,
        eventId: row.event_id,
        holdId: row.hold_id,
        qty: row.qty,
        customer: row.customer,
        status: row.status,
        createdAt: row.created_at,
        cancelledAt: row.cancelled_at,
        paymentTokenHash: bytes(row.payment_token_hash),
      };
    },
  };
}

type DialectBookings = Pick<BookingStore, 'bookHolds' | 'cancelBooking'>;

const postgresBookings: DialectBookings = {
  async bookHolds(tx, eventId, requests) {
    // The sale: one statement books every hold of the batch and moves their seats, whatever
    // the batch's size. A hold asked for twice is booked once (distinct on, first request).
    const rows = await tx.rows<{ id: number; hold_id: number }>(
      `with wanted as (
         select distinct on (w.hold_id) w.hold_id, w.at
           from unnest($2::bigint[], $3::timestamptz[]) with ordinality as w (hold_id, at, ord)
          order by w.hold_id, w.ord
       ), booked_holds as (
         update holds h set status = 'booked'
           from wanted w
          where h.id = w.hold_id and h.event_id = $1 and h.status = 'active' and h.expires_at > w.at
         returning h.id, h.qty, w.at
       ), made as (
         insert into bookings (event_id, hold_id, qty, created_at)
         select $1, id, qty, at from booked_holds
         returning id, hold_id, qty
       ), moved as (
         update events set held = held - s.seats, booked = booked + s.seats
           from (select coalesce(sum(qty), 0)::int as seats from made) s
          where events.id = $1 and s.seats > 0
       )
       select id, hold_id from made`,
      [eventId, requests.map((r) => r.hold.id), requests.map((r) => r.now)],
    );
    const byHold = new Map(rows.map((row) => [row.hold_id, row.id]));
    return requests.map((r) => {
      const id = byHold.get(r.hold.id);
      byHold.delete(r.hold.id); // a second request for the same hold finds it booked
      return id ?? null;
    });
  },

  async cancelBooking(tx, bookingId, now) {
    const rows = await tx.rows(
      `with cancelled as (
         update bookings set status = 'cancelled', cancelled_at = $2
          where id = $1 and status = 'confirmed'
         returning event_id, hold_id, qty
       ), returned as (
         -- The seats go back to the customer's allowance too.
         update customer_seats c set seats = c.seats - x.qty
           from cancelled x join holds h on h.id = x.hold_id
          where c.event_id = x.event_id and c.customer = h.customer
       )
       update events set booked = booked - cancelled.qty, available = available + cancelled.qty
         from cancelled
        where events.id = cancelled.event_id
       returning events.id`,
      [bookingId, now],
    );
    return rows.length > 0;
  },
};

const mysqlBookings: DialectBookings = {
  async bookHolds(tx, eventId, requests) {
    // Without RETURNING, each booking's id comes from its own insert: a few statements per
    // booking, all in the batch's one transaction under the event's lock.
    const ids: Array<number | null> = [];
    for (const { hold, now } of requests) {
      const { affected } = await tx.run(
        "update holds set status = 'booked' where id = $1 and status = 'active' and expires_at > $2",
        [hold.id, now],
      );
      if (affected === 0) {
        ids.push(null);
        continue;
      }
      const { insertId } = await tx.run(
        'insert into bookings (event_id, hold_id, qty, created_at) values ($1, $2, $3, $4)',
        [eventId, hold.id, hold.qty, now],
      );
      await tx.run('update events set held = held - $2, booked = booked + $2 where id = $1', [eventId, hold.qty]);
      ids.push(insertId);
    }
    return ids;
  },

  async cancelBooking(tx, bookingId, now) {
    const { affected } = await tx.run(
      "update bookings set status = 'cancelled', cancelled_at = $2 where id = $1 and status = 'confirmed'",
      [bookingId, now],
    );
    if (affected === 0) return false;
    await tx.run(
      `update events e
         join bookings b on b.event_id = e.id
          set e.booked = e.booked - b.qty, e.available = e.available + b.qty
        where b.id = $1`,
      [bookingId],
    );
    await tx.run(
      `update customer_seats c
         join holds h on h.event_id = c.event_id and h.customer = c.customer
         join bookings b on b.hold_id = h.id
          set c.seats = c.seats - b.qty
        where b.id = $1`,
      [bookingId],
    );
    return true;
  },
};
