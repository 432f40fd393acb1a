// Events: created, read as exact snapshots, locked by every writer, edited.
import type { EventBooks, EventRow, LockedEvent, Snapshot } from '../model.ts';
import type { Sql, SqlDatabase, Tx } from './sql.ts';

export interface EventStore {
  insertEvent(tx: Tx, name: string, totalSeats: number, now: Date): Promise<EventRow>;
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
  /** Sets name and total_seats and recomputes available = total - held - booked (event locked). */
  updateEvent(tx: Tx, eventId: number, name: string, totalSeats: number): Promise<void>;
}

interface SnapshotRecord {
  id: number;
  name: string;
  total_seats: number;
  available: number;
  held: number;
  booked: number;
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
});

/**
 * The event's counters, and the seats of its lapsed, unreclaimed holds; `now` is $1. The
 * counters are O(1). The subquery reads only the holds that lapsed since the last reclaim (hold
 * path or sweeper), through the index on active holds by event and expiry, so it stays small
 * however many holds are stored; it is what makes the figures exact at `now`. MySQL is told the
 * index, which it otherwise passes over for the status index when few holds have lapsed.
 */
const snapshotColumns = (sql: Sql) => `e.id, e.name, e.total_seats, e.available, e.held, e.booked,
        (select coalesce(sum(h.qty), 0)
           from holds h ${sql.dialect === 'mysql' ? 'force index (holds_by_event_status_expiry)' : ''}
          where h.event_id = e.id and h.status = 'active' and h.expires_at <= $1) as lapsed`;

export function eventStatements(db: SqlDatabase): EventStore {
  return {
    async insertEvent(tx, name, totalSeats, now) {
      if (tx.dialect === 'mysql') {
        const { insertId } = await tx.run(
          'insert into events (name, total_seats, available, created_at) values ($1, $2, $2, $3)',
          [name, totalSeats, now],
        );
        return { id: insertId, name, totalSeats, createdAt: now };
      }
      const [row] = await tx.rows<{ id: number }>(
        'insert into events (name, total_seats, available, created_at) values ($1, $2, $2, $3) returning id',
        [name, totalSeats, now],
      );
      return { id: row!.id, name, totalSeats, createdAt: now };
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
      const [row] = await tx.rows<LockedEvent>('select id, available from events where id = $1 for update', [eventId]);
      return row ?? null;
    },

    async lockEventSkipLocked(tx, eventId) {
      // skip locked: PostgreSQL 9.5, MySQL 8.0.1, MariaDB 10.6.
      const [row] = await tx.rows<LockedEvent>(
        'select id, available from events where id = $1 for update skip locked',
        [eventId],
      );
      return row ?? null;
    },

    async lockEventBooks(tx, eventId) {
      const [row] = await tx.rows<EventBooks>(
        'select id, name, total_seats as total, available, held, booked from events where id = $1 for update',
        [eventId],
      );
      return row ?? null;
    },

    async updateEvent(tx, eventId, name, totalSeats) {
      // available is derived in the same statement, so the books balance whatever the new total.
      await tx.run('update events set name = $2, total_seats = $3, available = $3 - held - booked where id = $1', [
        eventId,
        name,
        totalSeats,
      ]);
    },
  };
}
