// Row shapes both SQL backends read, and their mapping to the Store's types. Only the SQL
// differs per backend; what a row means does not.
import type { BookingStatus, HoldRow, HoldStatus, Snapshot } from './store.ts';

export interface HoldRecord {
  id: number;
  event_id: number;
  qty: number;
  status: HoldStatus;
  /** bytea (a Uint8Array in PGlite, a Buffer in pg) or binary(32) in MySQL. */
  payment_token_hash: Uint8Array;
  created_at: Date;
  expires_at: Date;
  booking_id: number | null;
  booking_status: BookingStatus | null;
}

/** The columns of a HoldRecord, from `holds h left join bookings b on b.hold_id = h.id`. */
export const HOLD_COLUMNS = `h.id, h.event_id, h.qty, h.status, h.payment_token_hash, h.created_at,
                h.expires_at, b.id as booking_id, b.status as booking_status`;

export function toHoldRow(row: HoldRecord): HoldRow {
  return {
    id: row.id,
    eventId: row.event_id,
    qty: row.qty,
    status: row.status,
    paymentTokenHash: Buffer.from(row.payment_token_hash),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    bookingId: row.booking_id,
    bookingStatus: row.booking_status,
  };
}

/** An event's counters, plus `lapsed`: seats of its active holds already past expires_at. */
export interface SnapshotRecord {
  id: number; name: string; total_seats: number; available: number; held: number; booked: number; lapsed: number;
}

/** The snapshot exact at the query's `now`: lapsed holds no longer count as held. */
export function toSnapshot(row: SnapshotRecord): Snapshot {
  return {
    eventId: row.id,
    name: row.name,
    total: row.total_seats,
    available: row.available + row.lapsed,
    held: row.held - row.lapsed,
    booked: row.booked,
  };
}
