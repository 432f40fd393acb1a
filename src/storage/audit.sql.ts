// The books recounted from the rows themselves, with SUMs: never on a hot path and not part of
// the service. Tests and the benchmark use it to check that the counters every writer keeps
// agree with the holds and bookings they count.
import { type Sql, theRow } from './sql.ts';

/** An event's held seats (active, unexpired at `now`) and booked seats (confirmed), summed from rows. */
export async function recount(sql: Sql, eventId: number, now: Date): Promise<{ held: number; booked: number }> {
  const row = theRow(
    await sql.rows<{ held: number; booked: number }>(
      `select (select coalesce(sum(qty), 0) from holds
              where event_id = $1 and status = 'active' and expires_at > $2) as held,
            (select coalesce(sum(qty), 0) from bookings
              where event_id = $1 and status = 'confirmed') as booked`,
      [eventId, now],
    ),
  );
  return { held: Number(row.held), booked: Number(row.booked) };
}
