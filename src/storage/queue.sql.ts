// The waiting room's rows (migration 0009): one event_queues row per event with a queue (the
// counters: tickets handed out, the next free position, how far admission has got), its
// tickets, and the log of admission's steps. Joins and ticks lock the event_queues row, never
// the event's: the queue never waits on a hold batch, nor a hold batch on it.
import type { QueueSettings } from '../model.ts';
import type { SqlDatabase, Tx } from './sql.ts';

export interface QueueRow {
  eventId: number;
  /** Tickets handed out: the last ticket_no. */
  joined: number;
  /** The position the next joiner after the opening gets. */
  nextPosition: number;
  /** Every position up to this one is admitted. */
  admittedThrough: number;
  /** Admissions earned and not yet made, a fraction of one carried to the next tick. */
  credit: number;
  tickedAt: Date | null;
  /** The pre-queue has been given its positions. */
  shuffled: boolean;
  paused: boolean;
  seed: string;
}

/** An event's queue as every process keeps it in memory (admission/queue.service.ts). */
export interface QueueStateRow extends Omit<QueueRow, 'seed' | 'credit'> {
  settings: QueueSettings;
  saleOpensAt: Date;
  customerRequired: boolean;
  maxSeatsPerCustomer: number | null;
  /** The event's available seats exact now (lapsed holds counted back). */
  available: number;
}

export interface TicketRow {
  ticketNo: number;
  customer: string | null;
  prequeue: boolean;
  position: number | null;
}

export interface QueueStore {
  /** Creates the event's queue row if it has none (event locked). */
  ensureQueue(tx: Tx, eventId: number, seed: string): Promise<void>;
  /** The queue row, locked; null when the event has none. With skipLocked, null also when another transaction has it. */
  lockQueue(tx: Tx, eventId: number, skipLocked?: boolean): Promise<QueueRow | null>;
  /** Sets the counters a join or a tick moves (queue locked). */
  saveQueue(tx: Tx, row: Omit<QueueRow, 'seed'>): Promise<void>;
  /** Tickets already held by these customers (queue locked). */
  ticketsOfCustomers(tx: Tx, eventId: number, customers: string[]): Promise<TicketRow[]>;
  insertTickets(tx: Tx, eventId: number, tickets: TicketRow[], now: Date): Promise<void>;
  /**
   * PostgreSQL's common case of a join batch in one statement (see joinOpenQueue); null when
   * it does not apply and the batch takes the full path.
   */
  joinOpenQueue?(eventId: number, customers: Array<string | null>, now: Date): Promise<TicketRow[] | null>;
  /** The pre-queue's tickets, by ticket_no (queue locked). */
  prequeueTicketNos(tx: Tx, eventId: number): Promise<number[]>;
  assignPositions(
    tx: Tx,
    eventId: number,
    positions: ReadonlyArray<readonly [ticketNo: number, position: number]>,
  ): Promise<void>;
  /** Records that admission reached `through` at `at` (queue locked). */
  insertAdvance(tx: Tx, eventId: number, through: number, at: Date): Promise<void>;
  /** Pauses or resumes; a resume restarts the rate's clock (ticked_at) at `now`. */
  setPaused(eventId: number, paused: boolean, now: Date): Promise<boolean>;
  /** When the ticket at this place joined; null when no ticket has it (queue locked). */
  joinedAtOfPosition(tx: Tx, eventId: number, position: number): Promise<Date | null>;
  /** Every queued event's state, exact at `now`: one statement, whatever the number of buyers. */
  queueStates(now: Date, eventId?: number): Promise<QueueStateRow[]>;
  /** Admission's steps past `afterThrough`, in order. */
  advances(eventId: number, afterThrough: number): Promise<Array<{ through: number; at: Date }>>;
  /** The positions drawn for the pre-queue: ticket_no to position. */
  prequeuePositions(eventId: number): Promise<Map<number, number>>;
}

interface QueueRecord {
  event_id: number;
  joined: number;
  next_position: number;
  admitted_through: number;
  credit: number;
  ticked_at: Date | null;
  shuffled: boolean | number;
  paused: boolean | number;
  seed: string;
}

const toQueueRow = (row: QueueRecord): QueueRow => ({
  eventId: Number(row.event_id),
  joined: Number(row.joined),
  nextPosition: Number(row.next_position),
  admittedThrough: Number(row.admitted_through),
  credit: Number(row.credit),
  tickedAt: row.ticked_at,
  shuffled: Boolean(row.shuffled),
  paused: Boolean(row.paused),
  seed: row.seed,
});

/**
 * The tickets these customers ($2) already hold on event $1 (PostgreSQL), one probe of the
 * unique (event_id, customer) index per customer. Written as `customer = any($2)`, a prepared
 * statement's generic plan, made while the table was young and its statistics said a handful of
 * rows, scanned every ticket of the event instead: 20-70 ms per join batch once the sale had a
 * few thousand tickets (auto_explain), so joins ran at 0.4x of holds.
 */
const HELD_TICKETS = `select t.ticket_no, t.customer, t.prequeue, t.position
           from unnest($2::text[]) as a (customer)
           cross join lateral (select ticket_no, customer, prequeue, position from queue_tickets
                                where event_id = $1 and customer = a.customer) t`;

/** Rows per statement when many tickets change at once (a pre-queue's shuffle). */
const ROWS_PER_STATEMENT = 5000;

export function queueStatements(db: SqlDatabase): QueueStore {
  const mysql = db.dialect === 'mysql';
  return {
    ...(mysql ? {} : { joinOpenQueue: (...args) => joinOpenQueue(db, ...args) }),

    async ensureQueue(tx, eventId, seed) {
      await tx.run(
        mysql
          ? 'insert ignore into event_queues (event_id, seed) values ($1, $2)'
          : 'insert into event_queues (event_id, seed) values ($1, $2) on conflict do nothing',
        [eventId, seed],
      );
    },

    async lockQueue(tx, eventId, skipLocked = false) {
      const [row] = await tx.rows<QueueRecord>(
        `select event_id, joined, next_position, admitted_through, credit, ticked_at, shuffled, paused, seed
           from event_queues where event_id = $1 for update ${skipLocked ? 'skip locked' : ''}`,
        [eventId],
      );
      return row === undefined ? null : toQueueRow(row);
    },

    async saveQueue(tx, row) {
      await tx.run(
        `update event_queues
            set joined = $2, next_position = $3, admitted_through = $4, credit = $5, ticked_at = $6, shuffled = $7
          where event_id = $1`,
        [row.eventId, row.joined, row.nextPosition, row.admittedThrough, row.credit, row.tickedAt, row.shuffled],
      );
    },

    async ticketsOfCustomers(tx, eventId, customers) {
      if (customers.length === 0) return [];
      const rows = await tx.rows<{
        ticket_no: number;
        customer: string;
        prequeue: boolean | number;
        position: number | null;
      }>(
        mysql
          ? 'select ticket_no, customer, prequeue, position from queue_tickets where event_id = $1 and customer in ($2)'
          : HELD_TICKETS,
        [eventId, customers],
      );
      return rows.map((row) => ({
        ticketNo: Number(row.ticket_no),
        customer: row.customer,
        prequeue: Boolean(row.prequeue),
        position: row.position === null ? null : Number(row.position),
      }));
    },

    async insertTickets(tx, eventId, tickets, now) {
      if (tickets.length === 0) return;
      if (mysql) {
        await tx.run(
          'insert into queue_tickets (event_id, ticket_no, customer, joined_at, prequeue, position) values $1',
          [tickets.map((t) => [eventId, t.ticketNo, t.customer, now, t.prequeue, t.position])],
        );
        return;
      }
      await tx.run(
        `insert into queue_tickets (event_id, ticket_no, customer, joined_at, prequeue, position)
         select $1, t.ticket_no, t.customer, $2, t.prequeue, t.position
           from unnest($3::bigint[], $4::text[], $5::boolean[], $6::bigint[]) as t (ticket_no, customer, prequeue, position)`,
        [
          eventId,
          now,
          tickets.map((t) => t.ticketNo),
          tickets.map((t) => t.customer),
          tickets.map((t) => t.prequeue),
          tickets.map((t) => t.position),
        ],
      );
    },

    async prequeueTicketNos(tx, eventId) {
      const rows = await tx.rows<{ ticket_no: number }>(
        'select ticket_no from queue_tickets where event_id = $1 and prequeue order by ticket_no',
        [eventId],
      );
      return rows.map((row) => Number(row.ticket_no));
    },

    async assignPositions(tx, eventId, positions) {
      for (let start = 0; start < positions.length; start += ROWS_PER_STATEMENT) {
        const chunk = positions.slice(start, start + ROWS_PER_STATEMENT);
        if (mysql) {
          // Every row exists: the insert only ever takes its update branch.
          await tx.run(
            `insert into queue_tickets (event_id, ticket_no, joined_at, prequeue, position) values $1
             on duplicate key update position = values(position)`,
            [chunk.map(([ticketNo, position]) => [eventId, ticketNo, new Date(0), true, position])],
          );
        } else {
          await tx.run(
            `update queue_tickets q set position = t.position
               from unnest($2::bigint[], $3::bigint[]) as t (ticket_no, position)
              where q.event_id = $1 and q.ticket_no = t.ticket_no`,
            [eventId, chunk.map(([ticketNo]) => ticketNo), chunk.map(([, position]) => position)],
          );
        }
      }
    },

    async insertAdvance(tx, eventId, through, at) {
      await tx.run('insert into queue_advances (event_id, through, at) values ($1, $2, $3)', [eventId, through, at]);
    },

    async setPaused(eventId, paused, now) {
      const { affected } = await db.run(
        `update event_queues set paused = $2, ticked_at = case when $2 then ticked_at else $3 end where event_id = $1`,
        [eventId, paused, now],
      );
      return affected > 0;
    },

    async joinedAtOfPosition(tx, eventId, position) {
      const [row] = await tx.rows<{ joined_at: Date }>(
        'select joined_at from queue_tickets where event_id = $1 and position = $2',
        [eventId, position],
      );
      return row?.joined_at ?? null;
    },

    async queueStates(now, eventId) {
      const rows = await db.rows<
        Omit<QueueRecord, 'seed' | 'credit'> & {
          sale_opens_at: Date;
          queue_admit_per_minute: number;
          queue_admission_ttl_seconds: number;
          queue_prequeue_opens_at: Date | null;
          customer_required: boolean | number;
          max_seats_per_customer: number | null;
          available: number;
        }
      >(
        `select q.event_id, q.joined, q.next_position, q.admitted_through, q.ticked_at, q.shuffled, q.paused,
                e.sale_opens_at, e.queue_admit_per_minute, e.queue_admission_ttl_seconds, e.queue_prequeue_opens_at,
                e.customer_required, e.max_seats_per_customer,
                e.available + (select coalesce(sum(h.qty), 0)
                                 from holds h ${mysql ? 'force index (holds_by_event_status_expiry)' : ''}
                                where h.event_id = e.id and h.status = 'active' and h.expires_at <= $1) as available
           from event_queues q join events e on e.id = q.event_id
          where e.queue_admit_per_minute is not null ${eventId === undefined ? '' : 'and q.event_id = $2'}`,
        eventId === undefined ? [now] : [now, eventId],
      );
      return rows.map((row) => ({
        ...toQueueRow({ ...row, seed: '', credit: 0 }),
        settings: {
          admitPerMinute: row.queue_admit_per_minute,
          admissionTtlSeconds: row.queue_admission_ttl_seconds,
          prequeueOpensAt: row.queue_prequeue_opens_at,
        },
        saleOpensAt: row.sale_opens_at,
        customerRequired: Boolean(row.customer_required),
        maxSeatsPerCustomer: row.max_seats_per_customer,
        available: Number(row.available),
      }));
    },

    async advances(eventId, afterThrough) {
      const rows = await db.rows<{ through: number; at: Date }>(
        'select through, at from queue_advances where event_id = $1 and through > $2 order by through',
        [eventId, afterThrough],
      );
      return rows.map((row) => ({ through: Number(row.through), at: row.at }));
    },

    async prequeuePositions(eventId) {
      const rows = await db.rows<{ ticket_no: number; position: number }>(
        'select ticket_no, position from queue_tickets where event_id = $1 and prequeue and position is not null',
        [eventId],
      );
      return new Map(rows.map((row) => [Number(row.ticket_no), Number(row.position)]));
    },
  };
}

/**
 * A join batch on a queue whose sale is open and whose pre-queue is drawn, in one round trip
 * instead of seven (begin, lock, settings, customers' tickets, insert, update, commit), so the
 * queue row's lock is held for one statement. `customers` are distinct names, and null once per
 * anonymous join, in join order. The update takes the queue's row lock and numbers the new
 * tickets after the locked row's counters; the tickets the customers already hold are read from
 * the statement's snapshot, which may predate a join committed by another process while this one
 * waited for the lock: that customer's second ticket then breaks the unique (event_id,
 * customer) key and the batch takes the full path, which reads after the lock. Null also when
 * the queue is not open, not drawn, gone, or refuses anonymous joins that the batch has.
 */
async function joinOpenQueue(
  db: SqlDatabase,
  eventId: number,
  customers: Array<string | null>,
  now: Date,
): Promise<TicketRow[] | null> {
  let rows: Array<{
    ticket_no: number | string;
    customer: string | null;
    prequeue: boolean;
    position: number | string | null;
  }>;
  try {
    rows = await db.writeRows(
      `with asked as (
         select customer, ord from unnest($2::text[]) with ordinality as r (customer, ord)
       ), held as (
         ${HELD_TICKETS}
       ), fresh as (
         select a.customer, row_number() over (order by a.ord) as n
           from asked a
          where a.customer is null or not exists (select 1 from held h where h.customer = a.customer)
       ), queue as (
         update event_queues
            set joined = joined + (select count(*) from fresh),
                next_position = next_position + (select count(*) from fresh)
          where event_id = $1 and shuffled
            and exists (select 1 from events e
                         where e.id = $1 and e.queue_admit_per_minute is not null and e.sale_opens_at <= $3
                           and (e.queue_prequeue_opens_at is null or e.queue_prequeue_opens_at <= $3)
                           and (not e.customer_required or $4::boolean))
         returning joined - (select count(*) from fresh) as joined_before,
                   next_position - (select count(*) from fresh) as position_before
       ), added as (
         insert into queue_tickets (event_id, ticket_no, customer, joined_at, prequeue, position)
         select $1, q.joined_before + f.n, f.customer, $3, false, q.position_before + f.n - 1
           from queue q, fresh f
         returning ticket_no, customer, prequeue, position
       )
       select ticket_no, customer, prequeue, position from added
       union all
       select h.ticket_no, h.customer, h.prequeue, h.position from held h, queue`,
      [eventId, customers, now, customers.every((customer) => customer !== null)],
    );
  } catch (error) {
    if (db.isUniqueViolation(error)) return null;
    throw error;
  }
  if (rows.length === 0) return null;
  return rows.map((row) => ({
    ticketNo: Number(row.ticket_no),
    customer: row.customer,
    prequeue: row.prequeue,
    position: row.position === null ? null : Number(row.position),
  }));
}
