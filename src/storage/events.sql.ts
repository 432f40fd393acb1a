// Events: created, read as exact snapshots, locked by every writer, edited.
import type {
  CustomerSeats,
  EventBooks,
  EventLimits,
  EventRow,
  LockedEvent,
  Snapshot,
  WaitlistPolicy,
} from '../model.ts';
import { type Sql, type SqlDatabase, type Tx, theRow } from './sql.ts';

export interface EventStore {
  insertEvent(tx: Tx, name: string, totalSeats: number, limits: EventLimits, now: Date): Promise<EventRow>;
  /** Exact at `now`: lapsed holds count as available even before they are reclaimed. */
  snapshot(eventId: number, now: Date): Promise<Snapshot | null>;
  /** Snapshots (exact at `now`) of events with id > afterId, by id, at most `limit`. */
  listSnapshots(afterId: number, limit: number, now: Date): Promise<Snapshot[]>;
  /** Locks the event row until the transaction ends; null when there is no such event. */
  lockEvent(tx: Tx, eventId: number): Promise<LockedEvent | null>;
  /** Like lockEvent, but null at once if another transaction holds the lock. */
  lockEventSkipLocked(tx: Tx, eventId: number): Promise<LockedEvent | null>;
  /** lockEvent that also returns the stored counters and name. */
  lockEventBooks(tx: Tx, eventId: number): Promise<EventBooks | null>;
  /**
   * The event's snapshot exact at `now`, read inside a transaction after its writes: what a
   * change written in it carries.
   */
  snapshotIn(tx: Tx, eventId: number, now: Date): Promise<Snapshot | null>;
  /** Sets name, total_seats and limits, and recomputes available = total - held - booked (event locked). */
  updateEvent(tx: Tx, eventId: number, name: string, totalSeats: number, limits: EventLimits): Promise<void>;
  /**
   * One customer's seats exact at `now`: held in active holds not yet lapsed, booked in
   * confirmed bookings. Reads that customer's rows only (an index on event and customer).
   */
  customerSeats(eventId: number, customer: string, now: Date): Promise<CustomerSeats>;
}

interface LimitColumns {
  max_seats_per_customer: number | null;
  max_seats_per_hold: number | null;
  customer_required: boolean | number;
  sale_opens_at: Date | null;
  queue_admit_per_minute: number | null;
  queue_admission_ttl_seconds: number | null;
  queue_prequeue_opens_at: Date | null;
  waitlist_policy: WaitlistPolicy;
}

const LIMIT_COLUMNS =
  'max_seats_per_customer, max_seats_per_hold, customer_required, sale_opens_at, ' +
  'queue_admit_per_minute, queue_admission_ttl_seconds, queue_prequeue_opens_at, waitlist_policy';

/** The values of LIMIT_COLUMNS, in order. */
const limitValues = (limits: EventLimits): unknown[] => [
  limits.maxSeatsPerCustomer,
  limits.maxSeatsPerHold,
  limits.customerRequired,
  limits.saleOpensAt,
  limits.queue?.admitPerMinute ?? null,
  limits.queue?.admissionTtlSeconds ?? null,
  limits.queue?.prequeueOpensAt ?? null,
  limits.waitlistPolicy,
];

// MySQL's boolean is a tinyint: 0 or 1.
export const toLimits = (row: LimitColumns): EventLimits => ({
  maxSeatsPerCustomer: row.max_seats_per_customer,
  maxSeatsPerHold: row.max_seats_per_hold,
  customerRequired: Boolean(row.customer_required),
  saleOpensAt: row.sale_opens_at,
  queue:
    row.queue_admit_per_minute === null
      ? null
      : {
          admitPerMinute: row.queue_admit_per_minute,
          admissionTtlSeconds: row.queue_admission_ttl_seconds!,
          prequeueOpensAt: row.queue_prequeue_opens_at,
        },
  waitlistPolicy: row.waitlist_policy,
});

interface SnapshotRecord extends LimitColumns {
  id: number;
  name: string;
  total_seats: number;
  available: number;
  held: number;
  booked: number;
  waiting: number;
  lapsed: number;
}

/** The snapshot exact at the query's `now`: lapsed holds no longer count as held. */
const toSnapshot = (row: SnapshotRecord): Snapshot => ({
  eventId: row.id,
  name: row.name,
  total: row.total_seats,
  available: row.available + row.lapsed,
  held: row.held - row.lapsed,
  booked: row.booked,
  waiting: row.waiting,
  limits: toLimits(row),
});

/**
 * The event's counters, and the seats of its lapsed, unreclaimed holds; `now` is $1. The
 * counters are O(1). The subquery reads only the holds that lapsed since the last reclaim (hold
 * path or sweeper), through the index on active holds by event and expiry, so it stays small
 * however many holds are stored; it is what makes the figures exact at `now`. MySQL is told the
 * index, which it otherwise passes over for the status index when few holds have lapsed.
 */
const snapshotColumns = (sql: Sql) => `e.id, e.name, e.total_seats, e.available, e.held, e.booked, e.waiting,
        e.max_seats_per_customer, e.max_seats_per_hold, e.customer_required, e.sale_opens_at,
        e.queue_admit_per_minute, e.queue_admission_ttl_seconds, e.queue_prequeue_opens_at, e.waitlist_policy,
        (select coalesce(sum(h.qty), 0)
           from holds h ${sql.dialect === 'mysql' ? 'force index (holds_by_event_status_expiry)' : ''}
          where h.event_id = e.id and h.status = 'active' and h.expires_at <= $1) as lapsed`;

export function eventStatements(db: SqlDatabase): EventStore {
  return {
    async insertEvent(tx, name, totalSeats, limits, now) {
      const insert = `insert into events (name, total_seats, available, created_at, ${LIMIT_COLUMNS})
                      values ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`;
      const params = [name, totalSeats, now, ...limitValues(limits)];
      if (tx.dialect === 'mysql') {
        const { insertId } = await tx.run(insert, params);
        return { id: insertId, name, totalSeats, createdAt: now, limits };
      }
      const { id } = theRow(await tx.rows<{ id: number }>(`${insert} returning id`, params));
      return { id, name, totalSeats, createdAt: now, limits };
    },

    async snapshot(eventId, now) {
      const [row] = await db.rows<SnapshotRecord>(`select ${snapshotColumns(db)} from events e where e.id = $2`, [
        now,
        eventId,
      ]);
      return row === undefined ? null : toSnapshot(row);
    },

    async snapshotIn(tx, eventId, now) {
      const [row] = await tx.rows<SnapshotRecord>(`select ${snapshotColumns(tx)} from events e where e.id = $2`, [
        now,
        eventId,
      ]);
      return row === undefined ? null : toSnapshot(row);
    },

    async listSnapshots(afterId, limit, now) {
      // Keyset pagination on the primary key: each page costs the same however deep it is.
      const rows = await db.rows<SnapshotRecord>(
        `select ${snapshotColumns(db)} from events e where e.id > $2 order by e.id limit $3`,
        [now, afterId, limit],
      );
      return rows.map(toSnapshot);
    },

    async lockEvent(tx, eventId) {
      const [row] = await tx.rows<LockedEvent>('select id, available, waiting from events where id = $1 for update', [
        eventId,
      ]);
      return row ?? null;
    },

    async lockEventSkipLocked(tx, eventId) {
      // skip locked: PostgreSQL 9.5, MySQL 8.0.1, MariaDB 10.6.
      const [row] = await tx.rows<LockedEvent>(
        'select id, available, waiting from events where id = $1 for update skip locked',
        [eventId],
      );
      return row ?? null;
    },

    async lockEventBooks(tx, eventId) {
      const [row] = await tx.rows<Omit<EventBooks, 'limits'> & LimitColumns>(
        `select id, name, total_seats as total, available, held, booked, waiting, ${LIMIT_COLUMNS}
           from events where id = $1 for update`,
        [eventId],
      );
      if (row === undefined) return null;
      const { id, name, total, available, held, booked, waiting } = row;
      return { id, name, total, available, held, booked, waiting, limits: toLimits(row) };
    },

    async updateEvent(tx, eventId, name, totalSeats, limits) {
      // available is derived in the same statement, so the books balance whatever the new total.
      await tx.run(
        `update events set name = $2, total_seats = $3, available = $3 - held - booked,
                max_seats_per_customer = $4, max_seats_per_hold = $5, customer_required = $6, sale_opens_at = $7,
                queue_admit_per_minute = $8, queue_admission_ttl_seconds = $9, queue_prequeue_opens_at = $10,
                waitlist_policy = $11
          where id = $1`,
        [eventId, name, totalSeats, ...limitValues(limits)],
      );
    },

    async customerSeats(eventId, customer, now) {
      const [row] = await db.rows<{ held: number | null; booked: number | null }>(
        `select (select sum(qty) from holds
                  where event_id = $1 and customer = $2 and status = 'active' and expires_at > $3) as held,
                (select sum(b.qty) from bookings b join holds h on h.id = b.hold_id
                  where h.event_id = $1 and h.customer = $2 and b.status = 'confirmed') as booked`,
        [eventId, customer, now],
      );
      return { customer, held: Number(row?.held ?? 0), booked: Number(row?.booked ?? 0) };
    },
  };
}
