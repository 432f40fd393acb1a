// Every SQL statement the service runs on MySQL 8 and MariaDB 10.6+. One function per
// operation; locking functions take the transaction first.
//
// MySQL has no RETURNING on UPDATE (MariaDB has INSERT … RETURNING, MySQL 8 does not, so we
// use neither), so an operation that PostgreSQL does in one statement is a few here: change the
// hold rows, read the affected-row count, then move the same seats in the event's counters.
// That is safe because every caller has locked the event row first (lockEvent), and every
// writer of an event's holds takes that lock: between our statements nobody else can change
// this event's holds or counters. Each statement leaves the counters balanced on its own (the
// events_books_balance CHECK enforces it). Affected-row counts are rows matched, not rows
// changed (mysql2 sets CLIENT_FOUND_ROWS), like PostgreSQL's row counts.
import type { ServerDatabaseOptions } from '../db/breaker.ts';
import { migrateMysql, type MysqlDatabase, type MysqlRunner, openMysql } from '../db/mysql.ts';
import type {
  BookingRow, BookingStatus, EventBooks, EventRow, HoldRow, IdempotencyCompletion, IdempotencyKeyRow,
  LifecycleStore, LockedEvent, NewHold, Snapshot, Store, Tx,
} from './store.ts';
import { HOLD_COLUMNS, type HoldRecord, type SnapshotRecord, toHoldRow, toSnapshot } from './rows.ts';

const runner = (tx: Tx): MysqlRunner => tx as unknown as MysqlRunner;

/** ER_DUP_ENTRY: a unique index refused the row. */
const ER_DUP_ENTRY = 1062;

/**
 * The event's counters, and the seats of its lapsed, unreclaimed holds; `now` is the first
 * parameter. The counters are O(1). The subquery reads only holds that have lapsed since the
 * last reclaim, through holds_by_event_status_expiry, so it stays small however many holds
 * are stored; it is what makes the figures exact at `now`. One statement, one read view.
 */
const SNAPSHOT_COLUMNS = `e.id, e.name, e.total_seats, e.available, e.held, e.booked,
                (select coalesce(sum(h.qty), 0) from holds h force index (holds_by_event_status_expiry)
                  where h.event_id = e.id and h.status = 'active' and h.expires_at <= ?) as lapsed`;

/** Inserts an event with all its seats available; `sql` is the pool or a transaction. */
async function insertEvent(sql: MysqlRunner, name: string, totalSeats: number, now: Date): Promise<EventRow> {
  const { insertId } = await sql.write(
    `insert into events (name, total_seats, available, created_at)
     values (?, ?, ?, ?)`,
    [name, totalSeats, totalSeats, now],
  );
  // datetime(3) stores a Date's milliseconds exactly, so `now` is what was stored.
  return { id: insertId, name, totalSeats, createdAt: now };
}

export async function openMysqlStore(url: string, options: Partial<ServerDatabaseOptions> = {}): Promise<Store> {
  return mysqlStore(await openMysql(url, options));
}

export function mysqlStore(db: MysqlDatabase): Store & LifecycleStore {
  return {
    backend: 'mysql',
    transaction: (fn) => db.transaction((tx) => fn(tx as unknown as Tx)),
    migrate: () => migrateMysql(db),
    ping: async () => {
      await db.rows('select 1');
    },
    close: () => db.close(),
    isUniqueViolation: (error) => (error as { errno?: unknown } | null)?.errno === ER_DUP_ENTRY,

    insertEvent: (name, totalSeats, now) => insertEvent(db, name, totalSeats, now),

    async snapshot(eventId, now): Promise<Snapshot | null> {
      const rows = await db.rows<SnapshotRecord>(
        `select ${SNAPSHOT_COLUMNS}
           from events e
          where e.id = ?`,
        [now, eventId],
      );
      return rows[0] === undefined ? null : toSnapshot(rows[0]);
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
        `select ${HOLD_COLUMNS}
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.id = ?`,
        [holdId],
      );
      return rows[0] === undefined ? null : toHoldRow(rows[0]);
    },

    async recount(eventId, now) {
      const rows = await db.rows<{ held: number; booked: number }>(
        `select (select coalesce(sum(qty), 0) from holds
                  where event_id = ? and status = 'active' and expires_at > ?) as held,
                (select coalesce(sum(qty), 0) from bookings
                  where event_id = ? and status = 'confirmed') as booked`,
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

    // ---- lifecycle: events listed and edited, holds read, released and extended, bookings cancelled

    insertEventTx: (tx, name, totalSeats, now) => insertEvent(runner(tx), name, totalSeats, now),

    async listSnapshots(afterId, limit, now) {
      // Keyset pagination on the primary key: each page costs the same however deep it is.
      const rows = await db.rows<SnapshotRecord>(
        `select ${SNAPSHOT_COLUMNS}
           from events e
          where e.id > ?
          order by e.id
          limit ?`,
        [now, afterId, limit],
      );
      return rows.map(toSnapshot);
    },

    async lockEventBooks(tx, eventId): Promise<EventBooks | null> {
      const rows = await runner(tx).rows<EventBooks>(
        `select id, name, total_seats as total, available, held, booked
           from events where id = ? for update`,
        [eventId],
      );
      return rows[0] ?? null;
    },

    async updateEvent(tx, eventId, name, totalSeats) {
      // available is derived in the same statement, so the books balance whatever the new total.
      await runner(tx).write(
        'update events set name = ?, total_seats = ?, available = ? - held - booked where id = ?',
        [name, totalSeats, totalSeats, eventId],
      );
    },

    async lockHold(tx, holdId): Promise<HoldRow | null> {
      // PostgreSQL says `for update of h`; MariaDB has no `of`, so this also locks the hold's
      // booking row, if any. That is within the lock order (event, then its holds and bookings).
      const rows = await runner(tx).rows<HoldRecord>(
        `select ${HOLD_COLUMNS}
           from holds h
           left join bookings b on b.hold_id = h.id
          where h.id = ?
            for update`,
        [holdId],
      );
      return rows[0] === undefined ? null : toHoldRow(rows[0]);
    },

    async setHoldExpiry(tx, holdId, expiresAt) {
      const { affectedRows } = await runner(tx).write(
        "update holds set expires_at = ? where id = ? and status = 'active'",
        [expiresAt, holdId],
      );
      return affectedRows > 0;
    },

    async findBooking(bookingId): Promise<BookingRow | null> {
      const rows = await db.rows<{
        id: number; event_id: number; hold_id: number; qty: number; status: BookingStatus;
        created_at: Date; cancelled_at: Date | null; payment_token_hash: Buffer;
      }>(
        `select b.id, b.event_id, b.hold_id, b.qty, b.status, b.created_at, b.cancelled_at,
                h.payment_token_hash
           from bookings b
           join holds h on h.id = b.hold_id
          where b.id = ?`,
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
        paymentTokenHash: row.payment_token_hash,
      };
    },

    async cancelBooking(tx, bookingId, now) {
      const sql = runner(tx);
      const { affectedRows } = await sql.write(
        `update bookings set status = 'cancelled', cancelled_at = ?
          where id = ? and status = 'confirmed'`,
        [now, bookingId],
      );
      if (affectedRows === 0) return false;
      await sql.write(
        `update events e
           join bookings b on b.event_id = e.id
            set e.booked = e.booked - b.qty, e.available = e.available + b.qty
          where b.id = ?`,
        [bookingId],
      );
      return true;
    },

    ...idempotencyStatements(db),
  };
}

type IdempotencyStatements = Pick<LifecycleStore,
  'claimIdempotencyKey' | 'findIdempotencyKey' | 'lockIdempotencyClaims' | 'completeIdempotencyKeys' | 'releaseIdempotencyKey' |
  'purgeIdempotencyKeys'>;

/** The Idempotency-Key statements. Key rows are only ever locked after any event row. */
function idempotencyStatements(db: MysqlDatabase): IdempotencyStatements {
  return {
    async claimIdempotencyKey(claim) {
      // One statement: a conflicting insert waits for the other claim's row lock, then sees
      // its row. The update takes the row over only when it has expired, or its claim is stale
      // and was made for the same request. Assignments run left to right and later ones see
      // earlier results, so claim_id goes first on the original row and the rest follow it.
      // (No VALUES() or `as new` row alias: MySQL 8.0.20 deprecates the one and MariaDB lacks
      // the other, so the new values are passed again.)
      const { keyHash, requestHash, claimId, now, expiresAt, staleBefore } = claim;
      const { affectedRows } = await db.write(
        `insert into idempotency_keys
                (key_hash, request_hash, claim_id, locked_at, created_at, expires_at)
         values (?, ?, ?, ?, ?, ?)
         on duplicate key update
            claim_id = if(expires_at <= ?
                          or (response_status is null and locked_at <= ? and request_hash = ?),
                          ?, claim_id),
            request_hash = if(claim_id = ?, ?, request_hash),
            locked_at = if(claim_id = ?, ?, locked_at),
            created_at = if(claim_id = ?, ?, created_at),
            expires_at = if(claim_id = ?, ?, expires_at),
            response_status = if(claim_id = ?, null, response_status),
            response_body = if(claim_id = ?, null, response_body)`,
        [
          keyHash, requestHash, claimId, now, now, expiresAt,
          now, staleBefore, requestHash, claimId,
          claimId, requestHash, claimId, now, claimId, now, claimId, expiresAt, claimId, claimId,
        ],
      );
      // 2: an existing row was taken over. 1: a new row, or (CLIENT_FOUND_ROWS) an existing
      // one left as it was; the claim id tells them apart. It cannot change under us: the row
      // now holds a fresh claim, neither stale nor expired.
      if (affectedRows === 2) return true;
      const rows = await db.rows<{ claim_id: string }>(
        'select claim_id from idempotency_keys where key_hash = ?',
        [keyHash],
      );
      return rows[0]?.claim_id === claimId;
    },

    async findIdempotencyKey(keyHash): Promise<IdempotencyKeyRow | null> {
      const rows = await db.rows<{
        request_hash: Buffer; claim_id: string; locked_at: Date; response_status: number | null;
        response_body: Buffer | null; expires_at: Date;
      }>(
        `select request_hash, claim_id, locked_at, response_status, response_body, expires_at
           from idempotency_keys where key_hash = ?`,
        [keyHash],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        keyHash,
        requestHash: row.request_hash,
        claimId: row.claim_id,
        lockedAt: row.locked_at,
        responseStatus: row.response_status,
        responseBody: row.response_body,
        expiresAt: row.expires_at,
      };
    },

    async lockIdempotencyClaims(tx, claims) {
      // Through the primary key only (key_hash in …), for the reason given in completeIdempotencyKeys.
      const rows = await runner(tx).rows<{ claim_id: string }>(
        `select claim_id from idempotency_keys
          where key_hash in (?) and response_status is null
          order by key_hash
            for update`,
        [claims.map((c) => c.keyHash)],
      );
      const ours = new Set(claims.map((c) => c.claimId));
      return new Set(rows.map((row) => row.claim_id).filter((id) => ours.has(id)));
    },

    async completeIdempotencyKeys(tx, completions) {
      // One single-table statement for the batch, the values picked per key by `case`. It
      // reaches its rows through the primary key (key_hash in …) and locks only those. A join
      // to a derived table of the completions is what one would write first, but MySQL and
      // MariaDB then scan and lock every key row, and two batches completing at once deadlock.
      const pick = (value: (c: IdempotencyCompletion) => unknown) => ({
        sql: `case key_hash ${completions.map(() => 'when ? then ?').join(' ')} end`,
        params: completions.flatMap((c) => [c.keyHash, value(c)]),
      });
      const [status, body, claim] = [pick((c) => c.status), pick((c) => c.body), pick((c) => c.claimId)];
      const { affectedRows } = await runner(tx).write(
        `update idempotency_keys
            set response_status = ${status.sql}, response_body = ${body.sql}
          where key_hash in (?) and claim_id = ${claim.sql} and response_status is null`,
        [...status.params, ...body.params, completions.map((c) => c.keyHash), ...claim.params],
      );
      return affectedRows;
    },

    async releaseIdempotencyKey(keyHash, claimId) {
      await db.write(
        `delete from idempotency_keys
          where key_hash = ? and claim_id = ? and response_status is null`,
        [keyHash, claimId],
      );
    },

    async purgeIdempotencyKeys(now, limit) {
      // Bounded and skip-locked, so a purge never waits on a claim or holds many rows at once.
      // MySQL has no `skip locked` on delete, nor a locking subquery on the table it deletes
      // from: pick the rows first, then delete exactly those, in one short transaction.
      return db.transaction(async (tx) => {
        const rows = await tx.rows<{ key_hash: Buffer }>(
          `select key_hash from idempotency_keys
            where expires_at <= ?
            order by expires_at
            limit ?
              for update skip locked`,
          [now, limit],
        );
        if (rows.length === 0) return 0;
        const { affectedRows } = await tx.write('delete from idempotency_keys where key_hash in (?)', [
          rows.map((row) => row.key_hash),
        ]);
        return affectedRows;
      });
    },
  };
}
