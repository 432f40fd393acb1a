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

/**
 * Customers whose kept count (customer_seats) disagrees with their rows: seats in active holds
 * (lapsed ones too, until reclaimed, as the count keeps them) plus confirmed bookings. Empty
 * when every allowance is exact.
 */
export async function customerMismatches(
  sql: Sql,
  eventId: number,
): Promise<Array<{ customer: string; kept: number; rows: number }>> {
  const fromRows = await sql.rows<{ customer: string; seats: number | string }>(
    `select customer, sum(seats) as seats from (
       select h.customer, h.qty as seats
         from holds h
        where h.event_id = $1 and h.customer is not null and h.status = 'active'
       union all
       select h.customer, b.qty as seats
         from bookings b join holds h on h.id = b.hold_id
        where b.event_id = $1 and h.customer is not null and b.status = 'confirmed'
     ) s group by customer`,
    [eventId],
  );
  const kept = await sql.rows<{ customer: string; seats: number | string }>(
    'select customer, seats from customer_seats where event_id = $1',
    [eventId],
  );
  const expected = new Map(fromRows.map((row) => [row.customer, Number(row.seats)]));
  const actual = new Map(kept.map((row) => [row.customer, Number(row.seats)]));
  return [...new Set([...expected.keys(), ...actual.keys()])]
    .map((customer) => ({ customer, kept: actual.get(customer) ?? 0, rows: expected.get(customer) ?? 0 }))
    .filter(({ kept: k, rows }) => k !== rows);
}
