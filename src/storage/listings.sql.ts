// Listings: an event's holds and bookings a page at a time, for the operator console and the
// bookings export. Read-only, outside any transaction, and never on the hot path: keyset pages
// on (event_id, id) (migration 0005), so each page costs the same however deep it is.
//
// Statements are written once for both dialects. The filters and the direction are picked from
// the fixed fragments below, never built from input, and a listing binds the same parameters
// whichever fragments it picks: PostgreSQL refuses a parameter a statement does not use.
import type { BookingStatus, HoldStatus, ListOrder, ListPage, ListedBooking, ListedHold } from '../model.ts';
import type { SqlDatabase } from './sql.ts';

export interface ListingStore {
  /** The event's holds in id order, optionally of one status as of `now` and of one customer. */
  listHolds(
    eventId: number,
    filter: { status?: HoldStatus; customer?: string },
    page: ListPage,
    now: Date,
  ): Promise<ListedHold[]>;
  /** The event's bookings in id order, optionally of one status and of one customer (its hold's). */
  listBookings(
    eventId: number,
    filter: { status?: BookingStatus; customer?: string },
    page: ListPage,
  ): Promise<ListedBooking[]>;
}

/** Of one customer ($n), or of any when $n is null; PostgreSQL must be told its type. */
const customerFilter = (db: SqlDatabase, n: number) =>
  db.dialect === 'postgres'
    ? `and ($${n}::text is null or h.customer = $${n}::text)`
    : `and ($${n} is null or h.customer = $${n})`;

// An active hold past its deadline is expired to its reader before the sweeper marks it; $4 is now.
const HOLD_FILTERS: Record<HoldStatus | 'any', string> = {
  any: '',
  active: "and h.status = 'active' and h.expires_at > $4",
  expired: "and (h.status = 'expired' or (h.status = 'active' and h.expires_at <= $4))",
  booked: "and h.status = 'booked'",
  released: "and h.status = 'released'",
};

const BOOKING_FILTERS: Record<BookingStatus | 'any', string> = {
  any: '',
  confirmed: "and b.status = 'confirmed'",
  cancelled: "and b.status = 'cancelled'",
};

/** The keyset condition on `column` ($2) and the order that goes with it. */
const keyset = (column: string, order: ListOrder) =>
  order === 'asc'
    ? { after: `${column} > $2`, orderBy: `order by ${column}` }
    : { after: `${column} < $2`, orderBy: `order by ${column} desc` };

/** $2: where the page starts; a descending listing with no cursor starts above every id. */
const start = (page: ListPage) => page.afterId ?? (page.order === 'asc' ? 0 : Number.MAX_SAFE_INTEGER);

interface HoldRecord {
  id: number;
  event_id: number;
  qty: number;
  customer: string | null;
  status: HoldStatus;
  created_at: Date;
  expires_at: Date;
  booking_id: number | null;
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
}

export function listingStatements(db: SqlDatabase): ListingStore {
  return {
    async listHolds(eventId, { status, customer }, page, now) {
      const { after, orderBy } = keyset('h.id', page.order);
      const rows = await db.rows<HoldRecord>(
        `select h.id, h.event_id, h.qty, h.customer,
                case when h.status = 'active' and h.expires_at <= $4 then 'expired' else h.status end as status,
                h.created_at, h.expires_at, b.id as booking_id
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.event_id = $1 and ${after} ${HOLD_FILTERS[status ?? 'any']} ${customerFilter(db, 5)}
          ${orderBy}
          limit $3`,
        [eventId, start(page), page.limit, now, customer ?? null],
      );
      return rows.map((row) => ({
        id: row.id,
        eventId: row.event_id,
        qty: row.qty,
        customer: row.customer,
        status: row.status,
        createdAt: row.created_at,
        expiresAt: row.expires_at,
        bookingId: row.booking_id,
      }));
    },

    async listBookings(eventId, { status, customer }, page) {
      const { after, orderBy } = keyset('b.id', page.order);
      const rows = await db.rows<BookingRecord>(
        `select b.id, b.event_id, b.hold_id, b.qty, h.customer, b.status, b.created_at, b.cancelled_at
           from bookings b
           join holds h on h.id = b.hold_id
          where b.event_id = $1 and ${after} ${BOOKING_FILTERS[status ?? 'any']} ${customerFilter(db, 4)}
          ${orderBy}
          limit $3`,
        [eventId, start(page), page.limit, customer ?? null],
      );
      return rows.map((row) => ({
        id: row.id,
        eventId: row.event_id,
        holdId: row.hold_id,
        qty: row.qty,
        customer: row.customer,
        status: row.status,
        createdAt: row.created_at,
        cancelledAt: row.cancelled_at,
      }));
    },
  };
}
