// One sweep that expires HOLDS lapsed holds of one sold-out event, with ENTRIES waiting-list
// entries of one seat each (every freed seat becomes an offer in the sweep's transaction), and the
// same sweep with nobody waiting; the time per freed seat of each. On an in-memory PGlite of its
// own: no shared database is touched.
//
//   node --import tsx bench/waitlist-sweep.ts [--holds 10000] [--entries 10000] [--rounds 3]
import { parseArgs } from 'node:util';
import { ManualClock } from '../src/clock.ts';
import { Outbox } from '../src/changes/outbox.ts';
import { openPgliteStore } from '../src/storage/open.ts';
import type { Store } from '../src/storage/store.ts';
import { sweepOnce } from '../src/worker/sweeper.ts';

const { values } = parseArgs({
  options: {
    holds: { type: 'string', default: '10000' },
    entries: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
  },
});
const HOLDS = Number(values.holds);
const ENTRIES = Number(values.entries);
const ROUNDS = Number(values.rounds);

/** A sold-out event of HOLDS seats, each in a one-seat hold lapsing at `lapse`, and `entries` waiting. */
async function setUp(store: Store, entries: number, now: Date, lapse: Date): Promise<number> {
  const sql = store.sql;
  const [event] = await sql.rows<{ id: number }>(
    `insert into events (name, total_seats, available, held, created_at, waiting)
     values ('waitlist bench', $1, 0, $1, $2, $3) returning id`,
    [HOLDS, now, entries],
  );
  const eventId = Number(event!.id);
  await sql.run(
    `insert into holds (event_id, qty, payment_token_hash, created_at, expires_at)
     select $1::bigint, 1, sha256(('hold-' || $1::text || '-' || g)::bytea), $2, $3 from generate_series(1, $4) g`,
    [eventId, now, lapse, HOLDS],
  );
  await sql.run(
    `insert into waitlist_entries (event_id, customer, qty, secret_hash, offer_token_hash, created_at)
     select $1::bigint, 'c' || g, 1, sha256(('s-' || $1::text || '-' || g)::bytea), sha256(('o-' || $1::text || '-' || g)::bytea), $2
       from generate_series(1, $3) g`,
    [eventId, now, entries],
  );
  return eventId;
}

async function oneSweep(entries: number): Promise<{ ms: number; expired: number; offered: number }> {
  const store = await openPgliteStore(undefined);
  await store.migrate();
  const clock = new ManualClock();
  const eventId = await setUp(store, entries, clock.now(), new Date(clock.now().getTime() + 60_000));
  clock.advanceSeconds(61);
  const outbox = new Outbox(store, true);
  const started = process.hrtime.bigint();
  const expired = await sweepOnce(store, clock, outbox, 900);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const [row] = await store.sql.rows<{ n: number | string }>(
    "select count(*) as n from holds where event_id = $1 and waitlist_entry_id is not null and status = 'active'",
    [eventId],
  );
  await store.close();
  return { ms, expired, offered: Number(row!.n) };
}

for (let round = 1; round <= ROUNDS; round++) {
  for (const entries of [0, ENTRIES]) {
    const { ms, expired, offered } = await oneSweep(entries);
    console.log(
      JSON.stringify({
        round,
        entries,
        expired,
        offered,
        ms: Math.round(ms),
        us_per_freed_seat: Math.round((ms * 1000) / Math.max(expired, 1)),
      }),
    );
  }
}
