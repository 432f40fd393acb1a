// The change feed's log: changes written in the transaction of their effect (the outbox), then
// numbered by the sequencer after they commit, read in position order, and purged when old.
import type { Change, ChangeType, NewChange } from '../model.ts';
import type { SqlDatabase, Tx } from './sql.ts';

export interface ChangeStore {
  /** Writes changes with one statement, inside the transaction of their effect. */
  recordChanges(tx: Tx, changes: NewChange[], now: Date): Promise<void>;
  /**
   * Numbers committed changes that have no position yet, in the order they were written, up to
   * `limit`; returns the highest position now assigned, or null if there was nothing to number
   * (or another sequencer is at it: only one runs at a time).
   */
  sequenceChanges(limit: number): Promise<number | null>;
  /** Changes after `position`, in position order, at most `limit`; of one event when given. */
  changesAfter(position: number, limit: number, eventId?: number): Promise<Change[]>;
  /** The highest position assigned so far (0 before any). */
  lastPosition(): Promise<number>;
  /** Deletes up to `limit` numbered changes written before `before`. */
  purgeChanges(before: Date, limit: number): Promise<number>;
}

interface ChangeRecord {
  position: number;
  event_id: number;
  type: ChangeType;
  hold_id: number | null;
  booking_id: number | null;
  qty: number | null;
  total: number;
  available: number;
  held: number;
  booked: number;
  created_at: Date;
}

const toChange = (row: ChangeRecord): Change => ({
  position: Number(row.position),
  eventId: row.event_id,
  type: row.type,
  holdId: row.hold_id,
  bookingId: row.booking_id,
  qty: row.qty,
  at: row.created_at,
  snapshot: { total: row.total, available: row.available, held: row.held, booked: row.booked },
});

const COLUMNS = 'position, event_id, type, hold_id, booking_id, qty, total, available, held, booked, created_at';

export function changeStatements(db: SqlDatabase): ChangeStore {
  return {
    async recordChanges(tx, changes, now) {
      if (changes.length === 0) return;
      const column = <T>(pick: (change: NewChange) => T) => changes.map(pick);
      if (tx.dialect === 'postgres') {
        await tx.run(
          `insert into changes (event_id, type, hold_id, booking_id, qty, total, available, held, booked, created_at)
           select * , $10::timestamptz
             from unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::int[],
                         $6::int[], $7::int[], $8::int[], $9::int[])`,
          [
            column((c) => c.eventId),
            column((c) => c.type),
            column((c) => c.holdId ?? null),
            column((c) => c.bookingId ?? null),
            column((c) => c.qty ?? null),
            column((c) => c.snapshot.total),
            column((c) => c.snapshot.available),
            column((c) => c.snapshot.held),
            column((c) => c.snapshot.booked),
            now,
          ],
        );
        return;
      }
      await tx.run(
        'insert into changes (event_id, type, hold_id, booking_id, qty, total, available, held, booked, created_at) values $1',
        [
          changes.map((c) => [
            c.eventId,
            c.type,
            c.holdId ?? null,
            c.bookingId ?? null,
            c.qty ?? null,
            c.snapshot.total,
            c.snapshot.available,
            c.snapshot.held,
            c.snapshot.booked,
            now,
          ]),
        ],
      );
    },

    async sequenceChanges(limit) {
      return db.transaction(async (tx) => {
        // One sequencer at a time, and none waits: a busy one will number these too.
        const [counter] = await tx.rows<{ last_position: number }>(
          'select last_position from change_sequence where id = 1 for update skip locked',
        );
        if (counter === undefined) return null;
        // Only committed changes are visible here, and per event they were written in commit
        // order (the event's row lock), so numbering by id keeps each event's order.
        const rows = await tx.rows<{ id: number }>(
          'select id from changes where position is null order by id limit $1',
          [limit],
        );
        if (rows.length === 0) return null;
        const first = Number(counter.last_position) + 1;
        const ids = rows.map((row) => row.id);
        if (tx.dialect === 'postgres') {
          await tx.run(
            `update changes c set position = $2 + n.ord - 1
               from unnest($1::bigint[]) with ordinality as n (id, ord)
              where c.id = n.id`,
            [ids, first],
          );
        } else {
          // Ids ascend, so position = first + (rank of id): one statement with a case.
          const params: unknown[] = [ids];
          const cases = ids.map((id, i) => {
            params.push(id, first + i);
            return `when $${params.length - 1} then $${params.length}`;
          });
          await tx.run(`update changes set position = case id ${cases.join(' ')} end where id in ($1)`, params);
        }
        const last = first + ids.length - 1;
        await tx.run('update change_sequence set last_position = $1 where id = 1', [last]);
        return last;
      });
    },

    async changesAfter(position, limit, eventId) {
      const rows =
        eventId === undefined
          ? await db.rows<ChangeRecord>(
              `select ${COLUMNS} from changes where position > $1 order by position limit $2`,
              [position, limit],
            )
          : await db.rows<ChangeRecord>(
              `select ${COLUMNS} from changes where event_id = $3 and position > $1 order by position limit $2`,
              [position, limit, eventId],
            );
      return rows.map(toChange);
    },

    async lastPosition() {
      const [row] = await db.rows<{ last_position: number }>('select last_position from change_sequence where id = 1');
      return Number(row?.last_position ?? 0);
    },

    async purgeChanges(before, limit) {
      // Bounded, so a purge never holds many rows at once; unnumbered changes are never purged.
      const rows = await db.rows<{ id: number }>(
        'select id from changes where created_at < $1 and position is not null order by created_at limit $2',
        [before, limit],
      );
      if (rows.length === 0) return 0;
      const ids = rows.map((row) => row.id);
      const { affected } = await db.run(
        db.dialect === 'postgres'
          ? 'delete from changes where id = any($1::bigint[])'
          : 'delete from changes where id in ($1)',
        [ids],
      );
      return affected;
    },
  };
}
