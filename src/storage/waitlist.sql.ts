// The waiting list's statements. Every one that changes entries runs under the event's row lock
// (lockEvent), like every writer of the event's holds, and keeps events.waiting (the seats of
// 'waiting' entries) in step in the same statement (PostgreSQL) or the same transaction (MySQL).
// The seeks read the (event_id, status, id) and (event_id, status, qty, id) indexes: the oldest
// waiting entry, or the oldest of one size, is found without reading the rest of the list.
import type { WaitlistPolicy } from '../model.ts';
import { type SqlDatabase, type Tx, bytes } from './sql.ts';

export type WaitlistStatus = 'waiting' | 'offered' | 'converted' | 'expired' | 'left' | 'removed';
/** How an entry ends: by an offer lapsing, by its customer, by staff, or by a booking. */
export type EntryEnd = 'expired' | 'left' | 'removed' | 'converted';

export interface WaitlistEntry {
  id: number;
  eventId: number;
  customer: string;
  qty: number;
  status: WaitlistStatus;
  secretHash: Buffer;
  holdId: number | null;
  createdAt: Date;
  offeredAt: Date | null;
  endedAt: Date | null;
}

/** A waiting entry as the offer path needs it. */
export interface WaitingEntry {
  id: number;
  customer: string;
  qty: number;
  offerTokenHash: Buffer;
}

/** The event's row as offers need it (event locked). */
export interface WaitlistState {
  available: number;
  waiting: number;
  policy: WaitlistPolicy;
  maxSeatsPerCustomer: number | null;
}

export interface WaitlistStore {
  waitlistState(tx: Tx, eventId: number): Promise<WaitlistState>;
  /** Adds a waiting entry and its seats to events.waiting (event locked); its id. */
  insertEntry(
    tx: Tx,
    entry: { eventId: number; customer: string; qty: number; secretHash: Buffer; offerTokenHash: Buffer },
    now: Date,
  ): Promise<number>;
  findEntry(entryId: number): Promise<WaitlistEntry | null>;
  /** Whether the customer has a waiting or offered entry on the event (a seek on the unique index). */
  hasLiveEntry(tx: Tx, eventId: number, customer: string): Promise<boolean>;
  lockEntry(tx: Tx, entryId: number): Promise<WaitlistEntry | null>;
  /** Waiting entries ahead of this one, plus one: its place in line. */
  entryPosition(eventId: number, entryId: number): Promise<number>;
  /** The oldest `limit` waiting entries after `afterId`, oldest first (event locked). */
  oldestWaiting(tx: Tx, eventId: number, afterId: number, limit: number): Promise<WaitingEntry[]>;
  /**
   * The oldest waiting entry after `afterId` of at most `maxQty` seats: one index seek per size,
   * so its cost depends on maxQty (at most WAITLIST_MAX_QTY), never on the list's length.
   */
  oldestFitting(tx: Tx, eventId: number, afterId: number, maxQty: number): Promise<WaitingEntry | null>;
  /**
   * Makes an offer hold for each entry and marks it 'offered': moves its seats from available to
   * held and out of waiting, and counts them to the customer (event locked). Hold ids in order.
   */
  offerEntries(tx: Tx, eventId: number, entries: WaitingEntry[], now: Date, expiresAt: Date): Promise<number[]>;
  /** Ends waiting entries (their seats leave events.waiting); the ids it ended (event locked). */
  endWaiting(tx: Tx, eventId: number, entryIds: number[], status: EntryEnd, now: Date): Promise<number[]>;
  /** Ends offered entries whose hold has ended or been booked; the ids it ended (event locked). */
  endOffered(tx: Tx, entryIds: number[], status: EntryEnd, now: Date): Promise<number[]>;
  /** Staff's list: entries of an event after `afterId`, by id. */
  listEntries(eventId: number, afterId: number, limit: number): Promise<WaitlistEntry[]>;
}

interface EntryRecord {
  id: number;
  event_id: number;
  customer: string;
  qty: number;
  status: WaitlistStatus;
  secret_hash: Uint8Array;
  hold_id: number | null;
  created_at: Date;
  offered_at: Date | null;
  ended_at: Date | null;
}

const ENTRY_COLUMNS = 'id, event_id, customer, qty, status, secret_hash, hold_id, created_at, offered_at, ended_at';

const toEntry = (row: EntryRecord): WaitlistEntry => ({
  id: Number(row.id),
  eventId: Number(row.event_id),
  customer: row.customer,
  qty: row.qty,
  status: row.status,
  secretHash: bytes(row.secret_hash),
  holdId: row.hold_id === null ? null : Number(row.hold_id),
  createdAt: row.created_at,
  offeredAt: row.offered_at,
  endedAt: row.ended_at,
});

interface WaitingRecord {
  id: number;
  customer: string;
  qty: number;
  offer_token_hash: Uint8Array;
}

const toWaiting = (row: WaitingRecord): WaitingEntry => ({
  id: Number(row.id),
  customer: row.customer,
  qty: row.qty,
  offerTokenHash: bytes(row.offer_token_hash),
});

const WAITING_COLUMNS = 'id, customer, qty, offer_token_hash';

export function waitlistStatements(db: SqlDatabase): WaitlistStore {
  return {
    async waitlistState(tx, eventId) {
      const [row] = await tx.rows<{
        available: number;
        waiting: number;
        waitlist_policy: WaitlistPolicy;
        max_seats_per_customer: number | null;
      }>('select available, waiting, waitlist_policy, max_seats_per_customer from events where id = $1', [eventId]);
      if (row === undefined) throw new Error(`event ${eventId} was locked a moment ago and is gone`);
      return {
        available: row.available,
        waiting: row.waiting,
        policy: row.waitlist_policy,
        maxSeatsPerCustomer: row.max_seats_per_customer,
      };
    },

    async insertEntry(tx, entry, now) {
      const insert = `insert into waitlist_entries (event_id, customer, qty, secret_hash, offer_token_hash, created_at)
                      values ($1, $2, $3, $4, $5, $6)`;
      const params = [entry.eventId, entry.customer, entry.qty, entry.secretHash, entry.offerTokenHash, now];
      let id: number;
      if (tx.dialect === 'mysql') {
        id = (await tx.run(insert, params)).insertId;
      } else {
        const [row] = await tx.rows<{ id: number }>(`${insert} returning id`, params);
        id = Number(row!.id);
      }
      await tx.run('update events set waiting = waiting + $2 where id = $1', [entry.eventId, entry.qty]);
      return id;
    },

    async findEntry(entryId) {
      const [row] = await db.rows<EntryRecord>(`select ${ENTRY_COLUMNS} from waitlist_entries where id = $1`, [
        entryId,
      ]);
      return row === undefined ? null : toEntry(row);
    },

    async hasLiveEntry(tx, eventId, customer) {
      // MySQL seeks its generated live_customer column; PostgreSQL its partial unique index.
      const live = tx.dialect === 'mysql' ? 'live_customer = $2' : "customer = $2 and status in ('waiting', 'offered')";
      const rows = await tx.rows(`select 1 as live from waitlist_entries where event_id = $1 and ${live}`, [
        eventId,
        customer,
      ]);
      return rows.length > 0;
    },

    async lockEntry(tx, entryId) {
      const [row] = await tx.rows<EntryRecord>(
        `select ${ENTRY_COLUMNS} from waitlist_entries where id = $1 for update`,
        [entryId],
      );
      return row === undefined ? null : toEntry(row);
    },

    async entryPosition(eventId, entryId) {
      const [row] = await db.rows<{ n: number | string }>(
        "select count(*) as n from waitlist_entries where event_id = $1 and status = 'waiting' and id < $2",
        [eventId, entryId],
      );
      return Number(row?.n ?? 0) + 1;
    },

    async oldestWaiting(tx, eventId, afterId, limit) {
      const rows = await tx.rows<WaitingRecord>(
        `select ${WAITING_COLUMNS} from waitlist_entries
          where event_id = $1 and status = 'waiting' and id > $2
          order by id
          limit ${Math.max(1, Math.floor(limit))}`,
        [eventId, afterId],
      );
      return rows.map(toWaiting);
    },

    async oldestFitting(tx, eventId, afterId, maxQty) {
      if (maxQty < 1) return null;
      // One seek per size on (event_id, status, qty, id), the oldest of them wins.
      const seeks = Array.from(
        { length: maxQty },
        (_, i) =>
          `(select ${WAITING_COLUMNS} from waitlist_entries
             where event_id = $1 and status = 'waiting' and qty = ${i + 1} and id > $2
             order by id limit 1)`,
      );
      const [row] = await tx.rows<WaitingRecord>(
        `select ${WAITING_COLUMNS} from (${seeks.join(' union all ')}) s order by id limit 1`,
        [eventId, afterId],
      );
      return row === undefined ? null : toWaiting(row);
    },

    offerEntries: db.dialect === 'postgres' ? postgresOffer : mysqlOffer,

    async endWaiting(tx, eventId, entryIds, status, now) {
      if (entryIds.length === 0) return [];
      const rows = await tx.rows<{ id: number; qty: number }>(
        `select id, qty from waitlist_entries where id in (${placeholders(entryIds, 2)}) and event_id = $1 and status = 'waiting'`,
        [eventId, ...entryIds],
      );
      if (rows.length === 0) return [];
      const ids = rows.map((row) => Number(row.id));
      await tx.run(
        `update waitlist_entries set status = $1, ended_at = $2 where id in (${placeholders(ids, 3)}) and status = 'waiting'`,
        [status, now, ...ids],
      );
      const seats = rows.reduce((sum, row) => sum + row.qty, 0);
      await tx.run('update events set waiting = waiting - $2 where id = $1', [eventId, seats]);
      return ids;
    },

    async endOffered(tx, entryIds, status, now) {
      if (entryIds.length === 0) return [];
      const rows = await tx.rows<{ id: number }>(
        `select id from waitlist_entries where id in (${placeholders(entryIds, 1)}) and status = 'offered'`,
        entryIds,
      );
      if (rows.length === 0) return [];
      const ids = rows.map((row) => Number(row.id));
      await tx.run(
        `update waitlist_entries set status = $1, ended_at = $2 where id in (${placeholders(ids, 3)}) and status = 'offered'`,
        [status, now, ...ids],
      );
      return ids;
    },

    async listEntries(eventId, afterId, limit) {
      const rows = await db.rows<EntryRecord>(
        `select ${ENTRY_COLUMNS} from waitlist_entries where event_id = $1 and id > $2 order by id limit $3`,
        [eventId, afterId, limit],
      );
      return rows.map(toEntry);
    },
  };
}

/** `$from, $from+1, ...` for each value: lists that read the same on both dialects. */
const placeholders = (values: unknown[], from: number): string => values.map((_, i) => `$${from + i}`).join(', ');

async function postgresOffer(
  tx: Tx,
  eventId: number,
  entries: WaitingEntry[],
  now: Date,
  expiresAt: Date,
): Promise<number[]> {
  if (entries.length === 0) return [];
  // One statement: the holds, the entries, the counters and the customers' counts.
  const rows = await tx.rows<{ id: number; entry_id: number }>(
    `with made as (
       insert into holds (event_id, qty, payment_token_hash, created_at, expires_at, customer, waitlist_entry_id)
       select $1, t.qty, decode(t.hash, 'hex'), $4, $5, t.customer, t.entry_id
         from unnest($2::bigint[], $3::int[], $6::text[], $7::text[]) as t (entry_id, qty, hash, customer)
       returning id, qty, customer, waitlist_entry_id as entry_id
     ), offered as (
       update waitlist_entries w set status = 'offered', hold_id = made.id, offered_at = $4
         from made
        where w.id = made.entry_id and w.status = 'waiting'
     ), moved as (
       update events set available = available - s.seats, held = held + s.seats, waiting = waiting - s.seats
         from (select sum(qty)::int as seats from made) s
        where events.id = $1
     ), counted as (
       insert into customer_seats as c (event_id, customer, seats)
       select $1, customer, sum(qty) from made group by customer
       on conflict (event_id, customer) do update set seats = c.seats + excluded.seats
     )
     select id, entry_id from made`,
    [
      eventId,
      entries.map((e) => e.id),
      entries.map((e) => e.qty),
      now,
      expiresAt,
      entries.map((e) => e.offerTokenHash.toString('hex')),
      entries.map((e) => e.customer),
    ],
  );
  const byEntry = new Map(rows.map((row) => [Number(row.entry_id), Number(row.id)]));
  return entries.map((e) => byEntry.get(e.id)!);
}

async function mysqlOffer(
  tx: Tx,
  eventId: number,
  entries: WaitingEntry[],
  now: Date,
  expiresAt: Date,
): Promise<number[]> {
  if (entries.length === 0) return [];
  await tx.run(
    'insert into holds (event_id, qty, payment_token_hash, created_at, expires_at, customer, waitlist_entry_id) values $1',
    [entries.map((e) => [eventId, e.qty, e.offerTokenHash, now, expiresAt, e.customer, e.id])],
  );
  const rows = await tx.rows<{ id: number; entry_id: number }>(
    `select id, waitlist_entry_id as entry_id from holds where waitlist_entry_id in (${placeholders(entries, 1)})`,
    entries.map((e) => e.id),
  );
  const byEntry = new Map(rows.map((row) => [Number(row.entry_id), Number(row.id)]));
  await tx.run(
    `update waitlist_entries w join holds h on h.waitlist_entry_id = w.id
        set w.status = 'offered', w.hold_id = h.id, w.offered_at = $1
      where w.id in (${placeholders(entries, 2)}) and w.status = 'waiting'`,
    [now, ...entries.map((e) => e.id)],
  );
  const seats = entries.reduce((sum, e) => sum + e.qty, 0);
  await tx.run('update events set available = available - $2, held = held + $2, waiting = waiting - $2 where id = $1', [
    eventId,
    seats,
  ]);
  const perCustomer = new Map<string, number>();
  for (const e of entries) perCustomer.set(e.customer, (perCustomer.get(e.customer) ?? 0) + e.qty);
  await tx.run(
    'insert into customer_seats (event_id, customer, seats) values $1 on duplicate key update seats = seats + values(seats)',
    [[...perCustomer].map(([customer, n]) => [eventId, customer, n])],
  );
  return entries.map((e) => byEntry.get(e.id)!);
}
