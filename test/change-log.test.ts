// The change log's cursor contract, on every backend, with writers that commit out of order: a
// reader that resumes "after N" never misses a change and never sees one twice, and each event's
// changes come in the order they committed. On PostgreSQL a change is written once and
// published below a watermark (storage/changes.sql.ts); these tests hold a writer open across
// it, and run a storm of concurrent writers against a reader that polls throughout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Change, NO_LIMITS, type NewChange } from '../src/model.ts';
import type { Store } from '../src/storage/store.ts';
import { allPublished, backends } from './support/helpers.ts';

/** Writers in the storm, transactions per writer, and events they share. */
const WRITERS = 8;
const TRANSACTIONS_PER_WRITER = 40;
const EVENTS = 3;
/** The longest a storm transaction stays open after writing its change. */
const MAX_OPEN_MS = 15;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A reader that keeps a cursor, as an integrator does. */
class Reader {
  cursor = 0;
  readonly seen: Change[] = [];
  constructor(private readonly store: Store) {}
  async poll(): Promise<void> {
    await this.store.publishChanges();
    for (;;) {
      const page = await this.store.changesAfter(this.cursor, 100);
      if (page.length === 0) return;
      this.seen.push(...page);
      this.cursor = page[page.length - 1]!.position;
    }
  }
}

/**
 * One writer's transaction, as every service writes: the event's row first (its lock), then
 * the change with the event's snapshot after it. `held` counts the event's changes in commit
 * order, so a reader can check each event's order.
 */
async function writeOne(store: Store, eventId: number, openMs: number): Promise<void> {
  await store.transaction(async (tx) => {
    const [row] = await tx.rows<{ total_seats: number; available: number; held: number; booked: number }>(
      tx.dialect === 'postgres'
        ? 'update events set available = available - 1, held = held + 1 where id = $1 returning total_seats, available, held, booked'
        : 'select total_seats, available, held, booked from events where id = $1 for update',
      [eventId],
    );
    let counters = row!;
    if (tx.dialect === 'mysql') {
      await tx.run('update events set available = available - 1, held = held + 1 where id = $1', [eventId]);
      counters = { ...counters, available: counters.available - 1, held: counters.held + 1 };
    }
    const change: NewChange = {
      eventId,
      type: 'hold.granted',
      qty: 1,
      snapshot: {
        total: counters.total_seats,
        available: counters.available,
        held: counters.held,
        booked: counters.booked,
        waiting: 0,
      },
    };
    await store.recordChanges(tx, [change], new Date());
    if (openMs > 0) await sleep(openMs);
  });
}

for (const backend of backends()) {
  describe(`the change log's cursor on ${backend.name}`, () => {
    let store: Store;
    let drop: () => Promise<void>;
    const events: number[] = [];
    before(async () => {
      ({ store, drop } = await backend.open());
      for (let i = 0; i < EVENTS; i++) {
        const event = await store.transaction((tx) =>
          store.insertEvent(tx, `log ${i}`, 1_000_000, NO_LIMITS, new Date()),
        );
        events.push(event.id);
      }
    });
    after(async () => {
      await store?.close();
      await drop?.();
    });

    test(
      'a writer that stays open across the watermark: what committed after it is read after it, nothing is lost',
      { skip: backend.name === 'pglite' ? 'PGlite runs one transaction at a time' : false },
      async () => {
        const reader = new Reader(store);
        await allPublished(store);
        await reader.poll();
        const start = reader.cursor;
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let wrote!: () => void;
        const written = new Promise<void>((resolve) => (wrote = resolve));
        // The slow writer takes its position first and stays open.
        const slow = store.transaction(async (tx) => {
          await tx.run('update events set held = held + 1, available = available - 1 where id = $1', [events[0]]);
          await store.recordChanges(
            tx,
            [
              {
                eventId: events[0]!,
                type: 'hold.granted',
                qty: 1,
                snapshot: { total: 0, available: 0, held: 0, booked: 0, waiting: 0 },
              },
            ],
            new Date(),
          );
          wrote();
          await gate;
        });
        await written;
        // A fast writer on another event commits a change after it.
        await writeOne(store, events[1]!, 0);
        await reader.poll();
        await reader.poll();
        const before = reader.seen.filter((c) => c.position > start);
        release();
        await slow;
        await allPublished(store);
        await reader.poll();
        const all = reader.seen.filter((c) => c.position > start);
        assert.deepEqual(
          all.map((c) => c.eventId).sort(),
          [events[0], events[1]].sort(),
          'both changes were read, once each',
        );
        assert.equal(new Set(all.map((c) => c.position)).size, all.length, 'no change read twice');
        if (backend.name === 'postgres') {
          assert.deepEqual(before, [], 'the fast change waited below the open writer');
          assert.ok(all[0]!.eventId === events[0] && all[1]!.eventId === events[1], 'in position order');
        }
      },
    );

    test('a storm of concurrent writers, some slow to commit, against a polling reader: every change once, each event in commit order', async () => {
      await allPublished(store);
      const reader = new Reader(store);
      await reader.poll();
      const start = reader.cursor;
      let writing = true;
      const polling = (async () => {
        while (writing) {
          await reader.poll();
          await sleep(2);
        }
      })();
      // A deterministic mix, so that a failure replays: writer w, transaction t.
      const openMs = (w: number, t: number) => ((w * 7 + t * 13) % 5 === 0 ? ((w + t) % MAX_OPEN_MS) + 1 : 0);
      const errors: unknown[] = [];
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let t = 0; t < TRANSACTIONS_PER_WRITER; t++) {
            await writeOne(store, events[(w + t) % EVENTS]!, backend.name === 'pglite' ? 0 : openMs(w, t)).catch(
              (error: unknown) => errors.push(error),
            );
          }
        }),
      );
      writing = false;
      await polling;
      assert.deepEqual(errors, []);
      await allPublished(store);
      await reader.poll();

      const read = reader.seen.filter((c) => c.position > start);
      const [row] = await store.sql.rows<{ n: number }>('select count(*) as n from changes where position > $1', [
        start,
      ]);
      assert.equal(read.length, WRITERS * TRANSACTIONS_PER_WRITER, 'every committed change was read');
      assert.equal(Number(row!.n), read.length);
      for (let i = 1; i < read.length; i++) {
        assert.ok(read[i]!.position > read[i - 1]!.position, 'positions only increase: nothing twice, nothing back');
      }
      for (const eventId of events) {
        const held = read.filter((c) => c.eventId === eventId).map((c) => c.snapshot.held);
        for (let i = 1; i < held.length; i++) {
          assert.equal(held[i], held[i - 1]! + 1, `event ${eventId}'s changes in commit order`);
        }
      }
    });
  });
}
