// Bulk-stores holds before a measurement, so the benchmark can show how the cost of a hold
// grows (or does not) with the holds already stored. One set-based statement per table,
// generate_series for the rows, counters moved in the same transaction so the books balance.
// PostgreSQL dialect only (PostgreSQL and PGlite).
import { randomBytes } from 'node:crypto';
import type { Sql, SqlDatabase } from '../src/storage/sql.ts';

/**
 * active  every stored hold is active and unexpired, on the hot event (a flash sale in flight)
 * mixed   on the hot event, a third each active, booked (with its booking row) and expired
 * other   the mixed third-by-third split, on a separate event
 */
export type PreloadMix = 'active' | 'mixed' | 'other';
export const PRELOAD_MIXES: readonly PreloadMix[] = ['active', 'mixed', 'other'];

export interface PreloadResult {
  eventId: number;
  active: number;
  booked: number;
  expired: number;
  seconds: number;
}

/** `db` must allow long statements: a million rows take far longer than the service's timeout. */
export async function preloadHolds(
  db: SqlDatabase,
  hotEventId: number,
  count: number,
  mix: PreloadMix,
  now: Date,
): Promise<PreloadResult> {
  const started = Date.now();
  const seed = randomBytes(8).toString('hex');
  if (db.dialect !== 'postgres') throw new Error('preload runs on PostgreSQL and PGlite only');
  const result = await db.transaction(async (tx) => {
    let eventId = hotEventId;
    if (mix === 'other') {
      const [filler] = await tx.rows<{ id: number }>(
        `insert into events (name, total_seats, available, created_at)
         values ('bench filler', 0, 0, $1) returning id`,
        [now],
      );
      eventId = filler!.id;
    }
    const [stored] = await tx.rows<{ active: number; booked: number; expired: number }>(
      `with stored as (
         insert into holds (event_id, qty, status, payment_token_hash, created_at, expires_at)
         select $1, 1, s.status, sha256(convert_to($2 || ':' || s.g, 'UTF8')), $4::timestamptz - interval '10 minutes',
                case s.status when 'active' then $4::timestamptz + interval '1 day'
                              else $4::timestamptz - interval '5 minutes' end
           from (select g, case when $5 or g % 3 = 0 then 'active'
                                when g % 3 = 1 then 'booked' else 'expired' end as status
                   from generate_series(1, $3::int) g) s
         returning id, event_id, qty, status
       ), booked as (
         insert into bookings (event_id, hold_id, qty, created_at)
         select event_id, id, qty, $4 from stored where status = 'booked'
         returning qty
       )
       select (select count(*) from stored where status = 'active')::int as active,
              (select count(*) from booked)::int as booked,
              (select count(*) from stored where status = 'expired')::int as expired`,
      [eventId, seed, count, now, mix === 'active'],
    );
    // The stored seats are added to the event's size, so the run keeps all the seats it was
    // created with (and a million stored holds fit an event the API caps at a million seats).
    await tx.run(
      `update events set total_seats = total_seats + $2 + $3, held = held + $2, booked = booked + $3
        where id = $1`,
      [eventId, stored!.active, stored!.booked],
    );
    return { eventId, ...stored! };
  });
  // Fresh statistics and a checkpoint now, so neither lands in the middle of the measurement.
  for (const statement of ['vacuum analyze holds', 'vacuum analyze bookings', 'checkpoint']) {
    await db.run(statement).catch(() => {});
  }
  return { ...result, seconds: (Date.now() - started) / 1000 };
}

/** How many active, unexpired hold rows an event has (the books check counts them); both dialects. */
export async function countActiveHolds(sql: Sql, eventId: number, now: Date): Promise<number> {
  const [row] = await sql.rows<{ n: number | string }>(
    `select count(*) as n from holds where event_id = $1 and status = 'active' and expires_at > $2`,
    [eventId, now],
  );
  return Number(row!.n);
}
