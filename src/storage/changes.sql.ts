// The change feed's log: changes written once, in the transaction of their effect (the outbox),
// published below a watermark once no smaller position can still commit, read in position
// order, and purged when old. How the watermark is found depends on the engine (end of file).
import type { Change, ChangeType, NewChange } from '../model.ts';
import type { SqlDatabase, Tx } from './sql.ts';

export interface ChangeStore {
  /** Writes changes with one statement, inside the transaction of their effect. */
  recordChanges(tx: Tx, changes: NewChange[], now: Date): Promise<void>;
  /**
   * Moves the publication watermark as far as it safely goes, and returns it: the changes at or
   * below it are committed, and no change can still commit at or below it, so a reader that
   * resumes "after N" misses nothing.
   */
  publishChanges(): Promise<number>;
  /** Published changes after `position`, in position order, at most `limit`; of one event when given. */
  changesAfter(position: number, limit: number, eventId?: number): Promise<Change[]>;
  /** The publication watermark (0 before any change). */
  lastPosition(): Promise<number>;
  /** Deletes up to `limit` published changes written before `before`. */
  purgeChanges(before: Date, limit: number): Promise<number>;
}

interface ChangeRecord {
  position: number;
  event_id: number;
  type: ChangeType;
  hold_id: number | null;
  booking_id: number | null;
  qty: number | null;
  customer: string | null;
  total: number;
  available: number;
  held: number;
  booked: number;
  waiting: number;
  created_at: Date;
}

const toChange = (row: ChangeRecord): Change => ({
  position: Number(row.position),
  eventId: row.event_id,
  type: row.type,
  holdId: row.hold_id,
  bookingId: row.booking_id,
  qty: row.qty,
  customer: row.customer,
  at: row.created_at,
  snapshot: { total: row.total, available: row.available, held: row.held, booked: row.booked, waiting: row.waiting },
});

const COLUMNS =
  'position, event_id, type, hold_id, booking_id, qty, customer, total, available, held, booked, waiting, created_at';

export function changeStatements(db: SqlDatabase): ChangeStore {
  const watermark =
    db.backend === 'mysql' ? mysqlSequencer(db) : db.backend === 'pglite' ? pgliteWatermark(db) : serverWatermark(db);
  return {
    async recordChanges(tx, changes, now) {
      if (changes.length === 0) return;
      const column = <T>(pick: (change: NewChange) => T) => changes.map(pick);
      if (tx.dialect === 'postgres') {
        // The position (the column's default, nextval) is taken after the transaction has its id:
        // the watermark relies on it (serverWatermark). Every caller has written the change's
        // effect first; pg_current_xact_id() makes sure of it.
        await tx.run(
          `insert into changes (event_id, type, hold_id, booking_id, qty, total, available, held, booked, customer, waiting, created_at)
           select * , $10::timestamptz
             from unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::int[],
                         $6::int[], $7::int[], $8::int[], $9::int[], $11::text[], $12::int[])
            where pg_current_xact_id() is not null`,
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
            column((c) => c.customer ?? null),
            column((c) => c.snapshot.waiting),
          ],
        );
        return;
      }
      await tx.run(
        'insert into changes (event_id, type, hold_id, booking_id, qty, total, available, held, booked, waiting, created_at, customer) values $1',
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
            c.snapshot.waiting,
            now,
            c.customer ?? null,
          ]),
        ],
      );
    },

    async publishChanges() {
      await watermark.advance();
      return watermark.published;
    },

    async changesAfter(position, limit, eventId) {
      // Never past the watermark: a change above it may have a smaller neighbour still to commit.
      const upTo = watermark.published;
      if (position >= upTo) return [];
      const rows =
        eventId === undefined
          ? await db.rows<ChangeRecord>(
              `select ${COLUMNS} from changes where position > $1 and position <= $3 order by position limit $2`,
              [position, limit, upTo],
            )
          : await db.rows<ChangeRecord>(
              `select ${COLUMNS} from changes
                where event_id = $4 and position > $1 and position <= $3 order by position limit $2`,
              [position, limit, upTo, eventId],
            );
      return rows.map(toChange);
    },

    async lastPosition() {
      await watermark.advance();
      return watermark.published;
    },

    async purgeChanges(before, limit) {
      // Bounded, so a purge never holds many rows at once; unpublished changes are never purged.
      const rows = await db.rows<{ id: number }>(
        'select id from changes where created_at < $1 and position <= $3 order by created_at limit $2',
        [before, limit, watermark.published],
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

interface Watermark {
  /** The highest position readers may see. */
  readonly published: number;
  /** Moves `published` as far as it safely can; the new value, or null when it did not move. */
  advance(): Promise<number | null>;
}

/** One advance at a time: callers that arrive while one runs share it. */
function coalesced(run: () => Promise<number | null>): () => Promise<number | null> {
  let running: Promise<number | null> | undefined;
  return () => (running ??= run().finally(() => (running = undefined)));
}

/** The last position the sequence handed out (0 before any). */
const LAST_POSITION_TAKEN = `case when is_called then last_value else last_value - 1 end`;

/**
 * PGlite runs one transaction at a time, and a statement outside it waits for its end: every
 * position the sequence has handed out by the time we read it is committed or rolled back.
 */
function pgliteWatermark(db: SqlDatabase): Watermark {
  let published = 0;
  return {
    get published() {
      return published;
    },
    advance: coalesced(async () => {
      const [row] = await db.rows<{ last: number }>(`select ${LAST_POSITION_TAKEN} as last from changes_position_seq`);
      const last = Number(row?.last ?? 0);
      if (last <= published) return null;
      published = last;
      return published;
    }),
  };
}

/** Marks kept while old transactions run; past this the oldest go (publishing only waits longer). */
const MAX_MARKS = 200;

/**
 * A PostgreSQL server: positions are taken at insert, by transactions that commit in any order
 * across events. Each advance reads, in this order, the last position taken (L) and the ids of
 * this database's transactions in progress (X): a transaction holding a position at or below L
 * took it after its id was assigned (recordChanges), so it has either ended or is in X. Once
 * none of X is in progress any more, every position up to L is final and L is published.
 * The read is one statement; the activity view is read after the sequence, since it depends on
 * it. pg_stat_activity shows every role's transaction ids (not their queries), and only this
 * database's, so a long transaction elsewhere on the server does not hold the feed back.
 */
function serverWatermark(db: SqlDatabase): Watermark {
  let published = 0;
  const marks: Array<{ position: number; xids: string[] }> = [];
  return {
    get published() {
      return published;
    },
    advance: coalesced(async () => {
      const [row] = await db.rows<{ last: number; xids: string[] }>(
        `select s.last,
                array(select a.backend_xid::text
                        from pg_stat_activity a
                       where a.datname = current_database() and a.backend_xid is not null
                         and a.pid <> pg_backend_pid() and s.last is not null) as xids
           from (select ${LAST_POSITION_TAKEN} as last from changes_position_seq) s`,
      );
      if (row === undefined) return null;
      marks.push({ position: Number(row.last), xids: row.xids });
      if (marks.length > MAX_MARKS) marks.shift();
      // A transaction of an older mark that is still running is in every later mark too, so
      // the newest mark whose transactions have all ended releases every mark before it.
      const running = new Set(row.xids);
      for (let i = marks.length - 1; i >= 0; i--) {
        if (marks[i]!.xids.some((xid) => running.has(xid))) continue;
        const position = marks[i]!.position;
        marks.splice(0, i + 1);
        if (position <= published) return null;
        published = position;
        return published;
      }
      return null;
    }),
  };
}

/** Positions numbered per statement, and statements per advance. */
const SEQUENCE_PAGE = 1000;
const SEQUENCE_PAGES = 100;

/**
 * MySQL has no view of other transactions' ids that fits: changes are numbered after they
 * commit, by one sequencer at a time (its counter row locked, skip locked), in the order they
 * became visible. That is a second write of each change, on MySQL only.
 */
function mysqlSequencer(db: SqlDatabase): Watermark {
  let published = 0;
  const numberPage = () =>
    db.transaction(async (tx) => {
      const [counter] = await tx.rows<{ last_position: number }>(
        'select last_position from change_sequence where id = 1 for update skip locked',
      );
      if (counter === undefined) return null;
      // Only committed changes are visible here, and per event they were written in commit
      // order (the event's row lock), so numbering by id keeps each event's order.
      const rows = await tx.rows<{ id: number }>('select id from changes where position is null order by id limit $1', [
        SEQUENCE_PAGE,
      ]);
      const first = Number(counter.last_position) + 1;
      if (rows.length === 0) return first - 1;
      const ids = rows.map((row) => row.id);
      // Ids ascend, so position = first + (rank of id): one statement with a case.
      const params: unknown[] = [ids];
      const cases = ids.map((id, i) => {
        params.push(id, first + i);
        return `when $${params.length - 1} then $${params.length}`;
      });
      await tx.run(`update changes set position = case id ${cases.join(' ')} end where id in ($1)`, params);
      const last = first + ids.length - 1;
      await tx.run('update change_sequence set last_position = $1 where id = 1', [last]);
      return last;
    });
  return {
    get published() {
      return published;
    },
    advance: coalesced(async () => {
      const before = published;
      for (let page = 0; page < SEQUENCE_PAGES; page++) {
        const last = await numberPage();
        // Another sequencer is at it: what it numbers is read on the next advance.
        if (last === null) {
          const [row] = await db.rows<{ last_position: number }>(
            'select last_position from change_sequence where id = 1',
          );
          published = Math.max(published, Number(row?.last_position ?? 0));
          break;
        }
        const moved = last > published;
        published = Math.max(published, last);
        if (!moved) break;
      }
      return published > before ? published : null;
    }),
  };
}
