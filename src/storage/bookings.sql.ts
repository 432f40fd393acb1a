// Bookings: a hold made permanent (the statement that decides a sale), read, and cancelled.
// As in holds.sql.ts, each change moves the same seats in the event's counters, in one
// statement on PostgreSQL and under the event's row lock in a few on MySQL.
import type { BookingRow, BookingStatus, HoldRow } from '../model.ts';
import { type SqlDatabase, type Tx, bytes } from './sql.ts';

export interface BookingStore {
  /** Books an active hold unexpired at `now`; null when it is no longer bookable (event locked). */
  bookHold(tx: Tx, hold: HoldRow, now: Date): Promise<number | null>;
  findBooking(bookingId: number): Promise<BookingRow | null>;
  /** Confirmed -> cancelled, moving its seats from booked to available; false if not confirmed (event locked). */
  cancelBooking(tx: Tx, bookingId: number, now: Date): Promise<boolean>;
}

interface BookingRecord {
  id: number;
  event_id: number;
  hold_id: number;
  qty: number;
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
        `select b.id, b.event_id, b.hold_id, b.qty, b.status, b.created_at, b.cancelled_at, h.payment_token_hash
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
        status: row.status,
        createdAt: row.created_at,
        cancelledAt: row.cancelled_at,
        paymentTokenHash: bytes(row.payment_token_hash),
      };
    },
  };
}

type DialectBookings = Pick<BookingStore, 'bookHold' | 'cancelBooking'>;

const postgresBookings: DialectBookings = {
  async bookHold(tx, hold, now) {
    const [row] = await tx.rows<{ id: number }>(
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
    return row?.id ?? null;
  },

  async cancelBooking(tx, bookingId, now) {
    const rows = await tx.rows(
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
};

const mysqlBookings: DialectBookings = {
  async bookHold(tx, hold, now) {
    const { affected } = await tx.run(
      "update holds set status = 'booked' where id = $1 and status = 'active' and expires_at > $2",
      [hold.id, now],
    );
    if (affected === 0) return null;
    const { insertId } = await tx.run(
      'insert into bookings (event_id, hold_id, qty, created_at) values ($1, $2, $3, $4)',
      [hold.eventId, hold.id, hold.qty, now],
    );
    await tx.run('update events set held = held - $2, booked = booked + $2 where id = $1', [hold.eventId, hold.qty]);
    return insertId;
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
    return true;
  },
};
