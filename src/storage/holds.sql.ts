// Holds: the statements that decide whether a seat is sold (reclaim, grant) and the hold's
// lifecycle. Every statement that changes holds moves the same seats in the event's counters,
// so the books balance after each one (the events_books_balance CHECK enforces it).
//
// PostgreSQL does each of these in one statement with data-modifying CTEs. MySQL has no
// RETURNING on UPDATE (and MySQL 8 none on INSERT), so there an operation is a few statements:
// change the hold rows, read the affected-row count, move the same seats in the counters. That is
// safe because every caller holds the event's row lock (lockEvent), which every writer of an
// event's holds takes first: between our statements nobody else can touch them.
import type { HoldRow, HoldStatus, BookingStatus, NewHold } from '../model.ts';
import { type Sql, type SqlDatabase, type Tx, bytes } from './sql.ts';

export interface HoldStore {
  /**
   * The fast grant, PostgreSQL servers only (undefined elsewhere): the whole batch in ONE
   * autocommitted statement when every request fits and no lapsed hold is waiting to be
   * reclaimed; ids in input order, or null when it does not apply and the caller must run the
   * full transaction (lock, reclaim, allocate, insert).
   */
  grantAllFitting?(
    eventId: number,
    holds: NewHold[],
    now: Date,
    expiresAt: Date,
    /** Write a hold.granted change per hold, in the same statement (the change feed). */
    withChanges: boolean,
  ): Promise<number[] | null>;
  /** Marks the event's lapsed holds 'expired' and moves their seats back (event locked). */
  reclaimLapsedHolds(tx: Tx, eventId: number, now: Date): Promise<Reclaimed>;
  /** Inserts granted holds and moves their seats from available to held; ids in input order (event locked). */
  insertHolds(tx: Tx, eventId: number, holds: NewHold[], now: Date, expiresAt: Date): Promise<number[]>;
  /** Ends an active hold now ('expired' or 'released'); false when it was not active (event locked). */
  endHold(tx: Tx, hold: HoldRow, status: 'expired' | 'released', now: Date): Promise<boolean>;
  findHold(holdId: number): Promise<HoldRow | null>;
  /** findHold under the transaction, row-locking the hold (its event locked first). */
  lockHold(tx: Tx, holdId: number): Promise<HoldRow | null>;
  /** Moves an active hold's deadline; false when the hold is not active. Counters unchanged. */
  setHoldExpiry(tx: Tx, holdId: number, expiresAt: Date): Promise<boolean>;
  /** Events that have lapsed, unreclaimed holds at `now`, oldest first. */
  eventsWithLapsedHolds(now: Date, limit: number): Promise<number[]>;
  /**
   * The seats counted against each of these customers' allowance (active holds, lapsed ones
   * included until reclaimed, plus confirmed bookings), as kept in customer_seats; 0 for one
   * with none (event locked, lapsed holds reclaimed: then exact).
   */
  seatsOfCustomers(tx: Tx, eventId: number, customers: string[]): Promise<Map<string, number>>;
}

/** What a reclaim did: the holds it expired (id order) and the seats it moved back. */
export interface Reclaimed {
  /** entry_id: the waiting-list entry of an offer; null for a public hold. */
  holds: Array<{ id: number; qty: number; customer: string | null; entry_id: number | null }>;
  seats: number;
}

interface HoldRecord {
  id: number;
  event_id: number;
  qty: number;
  customer: string | null;
  status: HoldStatus;
  payment_token_hash: Uint8Array;
  created_at: Date;
  expires_at: Date;
  booking_id: number | null;
  booking_status: BookingStatus | null;
  waitlist_entry_id: number | null;
}

/** A hold and its booking, if any. PostgreSQL can lock the hold alone (`of h`); MySQL locks both. */
const holdQuery = (sql: Sql, lock: boolean) => `
  select h.id, h.event_id, h.qty, h.customer, h.status, h.payment_token_hash, h.created_at, h.expires_at,
         h.waitlist_entry_id, b.id as booking_id, b.status as booking_status
    from holds h
    left join bookings b on b.hold_id = h.id
   where h.id = $1
   ${lock ? (sql.dialect === 'postgres' ? 'for update of h' : 'for update') : ''}`;

const toHoldRow = (row: HoldRecord): HoldRow => ({
  id: row.id,
  eventId: row.event_id,
  qty: row.qty,
  customer: row.customer,
  status: row.status,
  paymentTokenHash: bytes(row.payment_token_hash),
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  bookingId: row.booking_id,
  bookingStatus: row.booking_status,
  waitlistEntryId: row.waitlist_entry_id === null ? null : Number(row.waitlist_entry_id),
});

export function holdStatements(db: SqlDatabase): HoldStore {
  const dialect = db.dialect === 'postgres' ? postgresHolds : mysqlHolds;
  return {
    ...dialect,
    // Not on PGlite: it answers in microtasks, and only a transaction's turn of the event loop
    // lets a batch fill there (db/pglite.ts).
    ...(db.backend === 'postgres' ? { grantAllFitting: (...args) => grantAllFitting(db, ...args) } : {}),

    async findHold(holdId) {
      const [row] = await db.rows<HoldRecord>(holdQuery(db, false), [holdId]);
      return row === undefined ? null : toHoldRow(row);
    },

    async lockHold(tx, holdId) {
      const [row] = await tx.rows<HoldRecord>(holdQuery(tx, true), [holdId]);
      return row === undefined ? null : toHoldRow(row);
    },

    async setHoldExpiry(tx, holdId, expiresAt) {
      const { affected } = await tx.run("update holds set expires_at = $2 where id = $1 and status = 'active'", [
        holdId,
        expiresAt,
      ]);
      return affected > 0;
    },

    async eventsWithLapsedHolds(now, limit) {
      const rows = await db.rows<{ event_id: number }>(
        `select event_id from holds
          where status = 'active' and expires_at <= $1
          group by event_id
          order by min(expires_at)
          limit $2`,
        [now, limit],
      );
      return rows.map((row) => row.event_id);
    },

    async seatsOfCustomers(tx, eventId, customers) {
      const seats = new Map<string, number>();
      if (customers.length === 0) return seats;
      const rows = await tx.rows<{ customer: string; seats: number }>(
        `select customer, seats from customer_seats
          where event_id = $1 and ${tx.dialect === 'postgres' ? 'customer = any($2::text[])' : 'customer in ($2)'}`,
        [eventId, customers],
      );
      for (const row of rows) seats.set(row.customer, Number(row.seats));
      return seats;
    },
  };
}

/** What the fast grant's statement raises when a customer would go over the event's limit. */
const OVER_LIMIT = { code: '23514', constraint: 'customer_seats_within_limit' };
/** Below any count, so that an over-limit batch fails the check whatever the stored count. */
const OVER = -1_000_000_000;

/**
 * One round trip instead of five (begin, lock, reclaim, insert, commit). The update takes the
 * event's row lock and moves the seats only if they are all there (re-checked on the locked row
 * after any wait), every hold is within the event's max_seats_per_hold, none lacks a customer
 * the event requires, and no active hold of the event has lapsed (so there is nothing to reclaim
 * first, and the customers' counts are exact; a stale answer here can only be "yes", which
 * merely sends the batch to the full path), the sale has opened, and on an event with a queue
 * every request carries an admission token (checked at the edge: holds.routes.ts). The insert
 * runs only if the update did.
 *
 * Customers' allowances are counted in the same statement, after the event's lock (its CTE is
 * read first): each customer's seats in the batch are added to customer_seats by an upsert,
 * which works on the row's latest version, not the statement's snapshot. A customer who would
 * go over max_seats_per_customer gets a count of OVER instead, which fails the table's check and
 * so undoes the whole statement: the batch then goes to the full path, which refuses in order.
 * All of it commits, or none.
 */
async function grantAllFitting(
  db: SqlDatabase,
  eventId: number,
  holds: NewHold[],
  now: Date,
  expiresAt: Date,
  withChanges: boolean,
): Promise<number[] | null> {
  const hashes = holds.map((hold) => hold.paymentTokenHash.toString('hex'));
  const seats = holds.reduce((sum, hold) => sum + hold.qty, 0);
  const largest = holds.reduce((max, hold) => Math.max(max, hold.qty), 0);
  const everyCustomer = holds.every((hold) => hold.customer !== null);
  // The changes carry the snapshot after each hold: the event's counters after the whole
  // batch, plus the seats of the holds granted after it (higher ids).
  let rows: Array<{ id: number; hash: string }>;
  try {
    rows = await db.writeRows<{ id: number; hash: string }>(
      `with event as (
         update events set available = available - $6, held = held + $6
          where id = $1 and available >= $6
            and (max_seats_per_hold is null or max_seats_per_hold >= $9)
            and (not customer_required or $10::boolean)
            and (sale_opens_at is null or sale_opens_at <= $4)
            and (queue_admit_per_minute is null or $11::boolean)
            -- While anyone waits, every free seat belongs to the waiting list (waitlist/offers.ts).
            and waiting = 0
            and not exists (select 1 from holds
                             where event_id = $1 and status = 'active' and expires_at <= $4)
         returning id, total_seats, available, held, booked, max_seats_per_customer as most
       ), granted as (
         insert into holds (event_id, qty, payment_token_hash, created_at, expires_at, customer, admission_ticket)
         select event.id, t.qty, decode(t.hash, 'hex'), $4, $5, t.customer, t.ticket
           from event, unnest($2::int[], $3::text[], $8::text[], $12::bigint[]) as t (qty, hash, customer, ticket)
         returning id, qty, customer, encode(payment_token_hash, 'hex') as hash
       ), counted as (
         insert into customer_seats as c (event_id, customer, seats)
         select e.id, g.customer, case when e.most is null or sum(g.qty) <= e.most then sum(g.qty) else ${OVER} end
           from event e, granted g
          where g.customer is not null
          group by e.id, e.most, g.customer
         on conflict (event_id, customer) do update
            set seats = case when excluded.seats >= 0
                              and ((select most from event) is null
                                   or c.seats + excluded.seats <= (select most from event))
                             then c.seats + excluded.seats else ${OVER} end
       ), logged as (
         insert into changes (event_id, type, hold_id, qty, customer, total, available, held, booked, created_at)
         select $1, 'hold.granted', g.id, g.qty, g.customer,
                e.total_seats, e.available + g.later, e.held - g.later, e.booked, $4
           from event e,
                (select id, qty, customer,
                        coalesce(sum(qty) over (order by id rows between 1 following and unbounded following), 0) as later
                   from granted) g
          where $7::boolean
       )
       select id, hash from granted`,
      [
        eventId,
        holds.map((hold) => hold.qty),
        hashes,
        now,
        expiresAt,
        seats,
        withChanges,
        holds.map((hold) => hold.customer),
        largest,
        everyCustomer,
        holds.every((hold) => hold.admissionTicket !== null),
        holds.map((hold) => hold.admissionTicket),
      ],
    );
  } catch (error) {
    const { code, constraint } = (error ?? {}) as { code?: unknown; constraint?: unknown };
    if (code === OVER_LIMIT.code && constraint === OVER_LIMIT.constraint) return null;
    throw error;
  }
  if (rows.length === 0) return null;
  const idByHash = new Map(rows.map((row) => [row.hash, row.id]));
  return hashes.map((hash) => idByHash.get(hash)!);
}

type DialectHolds = Pick<HoldStore, 'reclaimLapsedHolds' | 'insertHolds' | 'endHold'>;

const postgresHolds: DialectHolds = {
  async reclaimLapsedHolds(tx, eventId, now) {
    const rows = await tx.rows<Reclaimed['holds'][number]>(
      `with lapsed as (
         update holds set status = 'expired'
          where event_id = $1 and status = 'active' and expires_at <= $2
         returning id, qty, customer, waitlist_entry_id as entry_id
       ), moved as (
         update events set held = held - s.seats, available = available + s.seats
           from (select coalesce(sum(qty), 0)::int as seats from lapsed) s
          where events.id = $1 and s.seats > 0
       ), returned as (
         update customer_seats c set seats = c.seats - l.seats
           from (select customer, sum(qty)::int as seats from lapsed where customer is not null group by customer) l
          where c.event_id = $1 and c.customer = l.customer
       )
       select id, qty, customer, entry_id from lapsed order by id`,
      [eventId, now],
    );
    return { holds: rows, seats: rows.reduce((sum, row) => sum + row.qty, 0) };
  },

  async insertHolds(tx, eventId, holds, now, expiresAt) {
    // The grant: one statement inserts the batch's winners and moves their seats. Arrays travel
    // as parameters (bytea as hex text), so the statement is the same for any batch size.
    const hashes = holds.map((hold) => hold.paymentTokenHash.toString('hex'));
    // The limits were checked by the caller under the event's lock: customers' counts only add.
    const rows = await tx.rows<{ id: number; hash: string }>(
      `with granted as (
         insert into holds (event_id, qty, payment_token_hash, created_at, expires_at, customer, admission_ticket)
         select $1, t.qty, decode(t.hash, 'hex'), $4, $5, t.customer, t.ticket
           from unnest($2::int[], $3::text[], $6::text[], $7::bigint[]) as t (qty, hash, customer, ticket)
         returning id, qty, customer, encode(payment_token_hash, 'hex') as hash
       ), moved as (
         update events set available = available - s.seats, held = held + s.seats
           from (select sum(q)::int as seats from unnest($2::int[]) as q) s
          where events.id = $1
       ), counted as (
         insert into customer_seats as c (event_id, customer, seats)
         select $1, customer, sum(qty) from granted where customer is not null group by customer
         on conflict (event_id, customer) do update set seats = c.seats + excluded.seats
       )
       select id, hash from granted`,
      [
        eventId,
        holds.map((hold) => hold.qty),
        hashes,
        now,
        expiresAt,
        holds.map((hold) => hold.customer),
        holds.map((hold) => hold.admissionTicket),
      ],
    );
    // Tokens are unique, so they map each new id back to its request whatever the row order.
    const idByHash = new Map(rows.map((row) => [row.hash, row.id]));
    return hashes.map((hash) => idByHash.get(hash)!);
  },

  async endHold(tx, hold, status, now) {
    const rows = await tx.rows(
      `with ended as (
         update holds set status = $2, expires_at = least(expires_at, $3)
          where id = $1 and status = 'active'
         returning event_id, qty, customer
       ), returned as (
         update customer_seats c set seats = c.seats - ended.qty
           from ended
          where c.event_id = ended.event_id and c.customer = ended.customer
       )
       update events set held = held - ended.qty, available = available + ended.qty
         from ended
        where events.id = ended.event_id
       returning events.id`,
      [hold.id, status, now],
    );
    return rows.length > 0;
  },
};

const mysqlHolds: DialectHolds = {
  async reclaimLapsedHolds(tx, eventId, now) {
    // Read first, under the event lock: usually nothing has lapsed and this is the only
    // statement. The same rows are then marked by id.
    // The read forces the per-event index. Left to itself the optimizer may range over
    // holds_by_status_expiry instead, whose range covers every event's lapsed holds, and the
    // locking scan then waits on rows another event's transaction has locked: two events
    // reclaiming at once deadlock. On the per-event index a scan touches only this event.
    const holds = await tx.rows<Reclaimed['holds'][number]>(
      `select id, qty, customer, waitlist_entry_id as entry_id
         from holds force index (holds_by_event_status_expiry)
        where event_id = $1 and status = 'active' and expires_at <= $2
        order by id
        for update`,
      [eventId, now],
    );
    if (holds.length === 0) return { holds, seats: 0 };
    const seats = holds.reduce((sum, hold) => sum + hold.qty, 0);
    await tx.run("update holds set status = 'expired' where id in ($1)", [holds.map((hold) => hold.id)]);
    await tx.run('update events set held = held - $2, available = available + $2 where id = $1', [eventId, seats]);
    await mysqlReturnSeats(tx, eventId, holds);
    return { holds, seats };
  },

  async insertHolds(tx, eventId, holds, now, expiresAt) {
    await tx.run(
      'insert into holds (event_id, qty, payment_token_hash, created_at, expires_at, customer, admission_ticket) values $1',
      [
        holds.map((hold) => [
          eventId,
          hold.qty,
          hold.paymentTokenHash,
          now,
          expiresAt,
          hold.customer,
          hold.admissionTicket,
        ]),
      ],
    );
    const seats = holds.reduce((sum, hold) => sum + hold.qty, 0);
    await tx.run('update events set available = available - $2, held = held + $2 where id = $1', [eventId, seats]);
    const perCustomer = seatsPerCustomer(holds);
    if (perCustomer.size > 0) {
      await tx.run(
        'insert into customer_seats (event_id, customer, seats) values $1 on duplicate key update seats = seats + values(seats)',
        [[...perCustomer].map(([customer, n]) => [eventId, customer, n])],
      );
    }
    // A multi-row insert's ids need not be consecutive (innodb_autoinc_lock_mode 2, the MySQL 8
    // default); tokens are unique, so they map each new id back to its request.
    const rows = await tx.rows<{ id: number; payment_token_hash: Buffer }>(
      'select id, payment_token_hash from holds where payment_token_hash in ($1)',
      [holds.map((hold) => hold.paymentTokenHash)],
    );
    const idByHash = new Map(rows.map((row) => [row.payment_token_hash.toString('hex'), row.id]));
    return holds.map((hold) => idByHash.get(hold.paymentTokenHash.toString('hex'))!);
  },

  async endHold(tx, hold, status, now) {
    const { affected } = await tx.run(
      `update holds set status = $2, expires_at = least(expires_at, cast($3 as datetime(3)))
        where id = $1 and status = 'active'`,
      [hold.id, status, now],
    );
    if (affected === 0) return false;
    await tx.run('update events set held = held - $2, available = available + $2 where id = $1', [
      hold.eventId,
      hold.qty,
    ]);
    await mysqlReturnSeats(tx, hold.eventId, [hold]);
    return true;
  },
};

/** Seats per customer among these holds; anonymous ones left out. */
function seatsPerCustomer(holds: ReadonlyArray<{ qty: number; customer: string | null }>): Map<string, number> {
  const seats = new Map<string, number>();
  for (const hold of holds) {
    if (hold.customer !== null) seats.set(hold.customer, (seats.get(hold.customer) ?? 0) + hold.qty);
  }
  return seats;
}

/** Gives ended holds' seats back to their customers' allowances (event locked). */
async function mysqlReturnSeats(
  tx: Tx,
  eventId: number,
  holds: ReadonlyArray<{ qty: number; customer: string | null }>,
): Promise<void> {
  for (const [customer, seats] of seatsPerCustomer(holds)) {
    await tx.run('update customer_seats set seats = seats - $3 where event_id = $1 and customer = $2', [
      eventId,
      customer,
      seats,
    ]);
  }
}
