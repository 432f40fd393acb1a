// What only the MySQL backend has to prove: its migrations under concurrent starts, exact
// UTC millisecond timestamps, numbers (not strings) from BIGINT and SUM, the CHECK and unique
// constraints actually enforced, the Idempotency-Key statements (which MySQL writes as
// insert … on duplicate key update, without RETURNING), and no deadlocks when many events'
// hold batches, bookings, expiries and sweepers run at once (the reason its sessions use
// READ COMMITTED).
// Runs only when TEST_MYSQL_URL is set; the whole shared suite also runs on MySQL.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import { type App, buildApp } from '../src/app.ts';
import { loadMigrations } from '../src/db/migrate.ts';
import { recount as recountRows } from '../src/storage/audit.sql.ts';
import { openMysqlStore } from '../src/storage/open.ts';
import type { Store } from '../src/storage/store.ts';
import { Outbox } from '../src/changes/outbox.ts';
import { sweepOnce } from '../src/worker/sweeper.ts';
import { type Harness, backends, book, books, createEvent, harness, hold, testConfig } from './support/helpers.ts';

const HOLD_TTL_SECONDS = 120;
/** ER_CHECK_CONSTRAINT_VIOLATED on MySQL 8, ER_CONSTRAINT_FAILED on MariaDB. */
const CHECK_VIOLATION_ERRNOS = [3819, 4025];

const withUrlDatabase = (url: string, database: string) => {
  const next = new URL(url);
  next.pathname = `/${database}`;
  return next.toString();
};

for (const backend of backends().filter((b) => b.name === 'mysql')) {
  const serverUrl = process.env.TEST_MYSQL_URL!;

  describe('mysql backend', () => {
    let h: Harness & { close: () => Promise<void> };
    /** A raw connection to the suite's database, outside the store, in a non-UTC session. */
    let raw: mysql.Connection;
    before(async () => {
      h = await harness(backend);
      raw = await mysql.createConnection({ uri: h.url! });
      await raw.query("set session time_zone = '+05:30'");
    });
    after(async () => {
      await raw.end();
      await h.close();
    });

    test('several processes migrating one empty database at once apply each migration once', async () => {
      const name = `bo_test_migrate_${process.pid}_${Date.now()}`;
      const admin = await mysql.createConnection({ uri: serverUrl });
      await admin.query(`create database ${name}`);
      const stores: Store[] = [];
      try {
        for (let i = 0; i < 4; i++)
          stores.push(await openMysqlStore(withUrlDatabase(serverUrl, name), { poolSize: 2 }));
        const applied = await Promise.all(stores.map((store) => store.migrate()));
        const all = loadMigrations('mysql').map((migration) => migration.name);
        assert.deepEqual(applied.flat().sort(), all, 'each migration applied by exactly one of them');
        assert.deepEqual(await stores[0]!.migrate(), []);
        const [rows] = await admin.query<mysql.RowDataPacket[]>(
          `select version from ${name}.schema_migrations order by version`,
        );
        assert.deepEqual(
          rows.map((row) => row.version),
          loadMigrations('mysql').map((migration) => migration.version),
        );
      } finally {
        await Promise.all(stores.map((store) => store.close()));
        await admin.query(`drop database if exists ${name}`);
        await admin.end();
      }
    });

    test('timestamps are stored in UTC and read back to the millisecond', async () => {
      h.clock.advanceSeconds(0.123);
      const now = h.clock.now();
      const eventId = await createEvent(h.app, 5);
      const res = await hold(h.app, eventId, 1);
      const holdId: number = res.json().hold_id;
      const stored = (await h.store.findHold(holdId))!;
      assert.equal(stored.createdAt.toISOString(), now.toISOString());
      assert.equal(stored.expiresAt.getTime(), now.getTime() + HOLD_TTL_SECONDS * 1000);
      assert.equal(res.json().expires_at, stored.expiresAt.toISOString());
      // The column holds the UTC wall time, whatever the reading session's time zone.
      const [rows] = await raw.query<mysql.RowDataPacket[]>(
        "select date_format(created_at, '%Y-%m-%dT%H:%i:%s.%f') as created from holds where id = ?",
        [holdId],
      );
      assert.equal(rows[0]!.created, `${now.toISOString().slice(0, 23)}000`);
    });

    test('ids, counters and sums come back as JavaScript numbers', async () => {
      const eventId = await createEvent(h.app, 7);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 3)).json();
      assert.equal(typeof hold_id, 'number');
      const booked = (await book(h.app, hold_id, payment_token)).json();
      assert.equal(typeof booked.booking_id, 'number');
      const snap = (await h.store.snapshot(eventId, h.clock.now()))!;
      const recount = await recountRows(h.store.sql, eventId, h.clock.now());
      for (const value of [
        snap.eventId,
        snap.total,
        snap.available,
        snap.held,
        snap.booked,
        recount.held,
        recount.booked,
      ]) {
        assert.equal(typeof value, 'number');
      }
      assert.deepEqual(recount, { held: 0, booked: 3 });
    });

    test('event names keep any Unicode, four-byte characters included (utf8mb4, not utf8)', async () => {
      const name = 'Fête 🎵 Концерт 演唱会';
      const eventId = await createEvent(h.app, 3, name);
      assert.equal((await h.store.snapshot(eventId, h.clock.now()))!.name, name);
    });

    test('the CHECK constraints are enforced: the books cannot be unbalanced or negative', async () => {
      const eventId = await createEvent(h.app, 4);
      const refused = (error: unknown) => CHECK_VIOLATION_ERRNOS.includes((error as { errno: number }).errno);
      await assert.rejects(raw.query('update events set available = available - 1 where id = ?', [eventId]), refused);
      await assert.rejects(
        raw.query('update events set available = available - 5, held = held + 5 where id = ?', [eventId]),
        refused,
      );
      const { hold_id } = (await hold(h.app, eventId, 1)).json();
      await assert.rejects(raw.query("update holds set status = 'lost' where id = ?", [hold_id]), refused);
      await assert.rejects(raw.query('update holds set qty = 0 where id = ?', [hold_id]), refused);
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });

    test('a second booking of one hold is ER_DUP_ENTRY, which the store calls a unique violation', async () => {
      const eventId = await createEvent(h.app, 2);
      const { hold_id, payment_token } = (await hold(h.app, eventId, 1)).json();
      assert.equal((await book(h.app, hold_id, payment_token)).statusCode, 201);
      const error = await raw
        .query('insert into bookings (event_id, hold_id, qty, created_at) values (?, ?, 1, now(3))', [eventId, hold_id])
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      assert.ok(error !== undefined, 'the unique index refused the second booking');
      assert.equal(h.store.isUniqueViolation(error), true);
      assert.equal(h.store.isUniqueViolation(new Error('other')), false);
    });
  });

  describe('mysql: Idempotency-Key statements', () => {
    let h: Harness & { close: () => Promise<void> };
    let store: Store;
    let raw: mysql.Connection;
    before(async () => {
      h = await harness(backend);
      store = h.store;
      raw = await mysql.createConnection({ uri: h.url! });
    });
    after(async () => {
      await raw.end();
      await h.close();
    });

    const T0 = Date.UTC(2030, 0, 1);
    const at = (seconds: number) => new Date(T0 + seconds * 1000);
    /** A claim made at `seconds`, living 60 s, presumed dead 10 s after it was locked. */
    const claimAt = (keyHash: Buffer, requestHash: Buffer, seconds: number, claimId = randomUUID()) => ({
      keyHash,
      requestHash,
      claimId,
      now: at(seconds),
      expiresAt: at(seconds + 60),
      staleBefore: at(seconds - 10),
    });
    const complete = (keyHash: Buffer, claimId: string, status = 201) =>
      store.transaction((tx) =>
        store.completeIdempotencyKeys(tx, [{ keyHash, claimId, status, body: Buffer.from('sealed') }]),
      );

    test('a key is claimed once; an in-flight claim is kept until it is stale, then only the same request takes it', async () => {
      const key = randomBytes(32);
      const request = randomBytes(32);
      const first = claimAt(key, request, 0);
      assert.equal(await store.claimIdempotencyKey(first), true);
      assert.equal(await store.claimIdempotencyKey(claimAt(key, request, 5)), false, 'in flight, not stale');
      assert.equal(await store.claimIdempotencyKey(claimAt(key, randomBytes(32), 11)), false, 'stale, other request');
      const row = (await store.findIdempotencyKey(key))!;
      assert.deepEqual([row.claimId, row.responseStatus, row.responseBody], [first.claimId, null, null]);
      assert.equal(row.requestHash.equals(request), true);

      const takeover = claimAt(key, request, 11);
      assert.equal(await store.claimIdempotencyKey(takeover), true, 'stale, same request');
      const after = (await store.findIdempotencyKey(key))!;
      assert.deepEqual([after.claimId, after.lockedAt, after.expiresAt], [takeover.claimId, at(11), at(71)]);
      assert.equal(await complete(key, first.claimId), 0, 'the old claim can no longer complete');
      assert.equal(await complete(key, takeover.claimId), 1);
    });

    test('a completed key is replayed until it expires; then any request claims it afresh', async () => {
      const key = randomBytes(32);
      const first = claimAt(key, randomBytes(32), 0);
      assert.equal(await store.claimIdempotencyKey(first), true);
      assert.equal(await complete(key, first.claimId, 201), 1);
      assert.equal(
        await store.claimIdempotencyKey(claimAt(key, first.requestHash, 30)),
        false,
        'completed, not expired',
      );
      const done = (await store.findIdempotencyKey(key))!;
      assert.deepEqual([done.responseStatus, done.responseBody?.toString()], [201, 'sealed']);

      const fresh = claimAt(key, randomBytes(32), 60);
      assert.equal(await store.claimIdempotencyKey(fresh), true, 'expired');
      const row = (await store.findIdempotencyKey(key))!;
      assert.deepEqual([row.claimId, row.responseStatus, row.responseBody], [fresh.claimId, null, null]);
      assert.equal(row.requestHash.equals(fresh.requestHash), true);
    });

    test('many concurrent claims of one new key: exactly one wins', async () => {
      const key = randomBytes(32);
      const request = randomBytes(32);
      const results = await Promise.all(
        Array.from({ length: 20 }, () => store.claimIdempotencyKey(claimAt(key, request, 0))),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    test('completing a batch stores only the claims still owned; release frees only its own in-flight key', async () => {
      const [a, b] = [randomBytes(32), randomBytes(32)];
      const [claimA, claimB] = [claimAt(a, randomBytes(32), 0), claimAt(b, randomBytes(32), 0)];
      assert.equal(await store.claimIdempotencyKey(claimA), true);
      assert.equal(await store.claimIdempotencyKey(claimB), true);
      const stored = await store.transaction((tx) =>
        store.completeIdempotencyKeys(tx, [
          { keyHash: a, claimId: claimA.claimId, status: 200, body: Buffer.from('A') },
          { keyHash: b, claimId: randomUUID(), status: 200, body: Buffer.from('B') },
        ]),
      );
      assert.equal(stored, 1);
      await store.releaseIdempotencyKey(a, claimA.claimId);
      assert.notEqual(await store.findIdempotencyKey(a), null, 'a completed key is not released');
      await store.releaseIdempotencyKey(b, randomUUID());
      assert.notEqual(await store.findIdempotencyKey(b), null, 'another claim cannot release it');
      await store.releaseIdempotencyKey(b, claimB.claimId);
      assert.equal(await store.findIdempotencyKey(b), null);
    });

    test('completing a batch locks only its own key rows: a row another transaction holds does not block it', async () => {
      const busy = randomBytes(32);
      assert.equal(await store.claimIdempotencyKey(claimAt(busy, randomBytes(32), 0)), true);
      const claims = Array.from({ length: 3 }, () => claimAt(randomBytes(32), randomBytes(32), 0));
      for (const claim of claims) assert.equal(await store.claimIdempotencyKey(claim), true);
      await raw.beginTransaction();
      try {
        await raw.query('select key_hash from idempotency_keys where key_hash = ? for update', [busy]);
        const stored = store.transaction((tx) =>
          store.completeIdempotencyKeys(
            tx,
            claims.map((claim) => ({
              keyHash: claim.keyHash,
              claimId: claim.claimId,
              status: 201,
              body: Buffer.from('sealed'),
            })),
          ),
        );
        const blocked = new Promise<'blocked'>((resolve) => setTimeout(() => resolve('blocked'), 3000).unref());
        assert.equal(await Promise.race([stored, blocked]), claims.length);
      } finally {
        await raw.rollback();
      }
    });

    test('purge deletes expired keys only, a bounded number at a time, skipping rows another transaction holds', async () => {
      await store.purgeIdempotencyKeys(at(1_000_000), 1_000_000);
      const keys = Array.from({ length: 5 }, () => randomBytes(32));
      for (const key of keys) assert.equal(await store.claimIdempotencyKey(claimAt(key, randomBytes(32), 0)), true);
      const live = randomBytes(32);
      assert.equal(await store.claimIdempotencyKey(claimAt(live, randomBytes(32), 100)), true);

      await raw.beginTransaction();
      try {
        await raw.query('select key_hash from idempotency_keys where key_hash = ? for update', [keys[0]]);
        assert.equal(await store.purgeIdempotencyKeys(at(60), 3), 3);
        assert.equal(await store.purgeIdempotencyKeys(at(60), 3), 1, 'the locked row was skipped');
      } finally {
        await raw.rollback();
      }
      assert.equal(await store.purgeIdempotencyKeys(at(60), 3), 1, 'and purged once it was free');
      assert.notEqual(await store.findIdempotencyKey(live), null, 'an unexpired key stays');
    });
  });

  describe('mysql: many events at once over two pools, no deadlocks', () => {
    const EVENTS = 12;
    const SEATS = 30;
    const HOLDS_PER_EVENT = 40;
    let h: Harness & { close: () => Promise<void> };
    let second: { app: App; store: Store };
    before(async () => {
      h = await harness(backend);
      const store = await backend.reopen(h.url);
      second = { app: await buildApp({ config: testConfig(), store, clock: h.clock }), store };
    });
    after(async () => {
      await second.app.close();
      await second.store.close();
      await h.close();
    });

    test('holds, bookings, force-expiries, lapses and sweepers across events: no 5xx, books balanced', async () => {
      const apps = [h.app, second.app];
      const eventIds = await Promise.all(Array.from({ length: EVENTS }, () => createEvent(h.app, SEATS)));
      const statuses: number[] = [];
      const note = (status: number) => statuses.push(status);

      // Round 1: every event's holds at once, half through each server (two batchers per event).
      const granted: Array<{ hold_id: number; payment_token: string }> = [];
      await Promise.all(
        eventIds.flatMap((eventId, e) =>
          Array.from({ length: HOLDS_PER_EVENT }, async (_, i) => {
            const res = await hold(apps[(e + i) % 2]!, eventId, 1 + (i % 3));
            note(res.statusCode);
            if (res.statusCode === 201) granted.push(res.json());
          }),
        ),
      );
      assert.deepEqual(
        statuses.filter((status) => status >= 500),
        [],
        'no 5xx while granting',
      );
      for (const eventId of eventIds) {
        const b = await books(h.store, eventId, h.clock.now());
        assert.deepEqual([b.available, b.held], [0, SEATS], `event ${eventId} is full`);
      }

      // Round 2: book some, force-expire some, hold more and sweep, all at once.
      const admin = (app: App, holdId: number) => app.inject({ method: 'POST', url: `/admin/holds/${holdId}/expire` });
      await Promise.all([
        ...granted.map(async ({ hold_id, payment_token }, i) => {
          const app = apps[i % 2]!;
          if (i % 3 === 0) note((await book(app, hold_id, payment_token)).statusCode);
          else if (i % 3 === 1) note((await admin(app, hold_id)).statusCode);
        }),
        ...eventIds.flatMap((eventId, e) =>
          Array.from({ length: 10 }, async (_, i) => note((await hold(apps[(e + i) % 2]!, eventId, 1)).statusCode)),
        ),
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
        sweepOnce(second.store, h.clock, new Outbox(second.store, true)),
      ]);

      // Round 3: every remaining hold lapses; new holds reclaim them while two sweepers race
      // them for the same events, and late bookings are refused.
      h.clock.advanceSeconds(HOLD_TTL_SECONDS);
      await Promise.all([
        ...eventIds.flatMap((eventId, e) =>
          Array.from({ length: 10 }, async (_, i) => note((await hold(apps[(e + i) % 2]!, eventId, 2)).statusCode)),
        ),
        ...granted
          .filter((_, i) => i % 3 === 2)
          .map(async ({ hold_id, payment_token }, i) =>
            note((await book(apps[i % 2]!, hold_id, payment_token)).statusCode),
          ),
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
        sweepOnce(second.store, h.clock, new Outbox(second.store, true)),
        sweepOnce(h.store, h.clock, new Outbox(h.store, true)),
      ]);

      assert.deepEqual(
        statuses.filter((status) => status >= 500),
        [],
        'no 5xx',
      );
      assert.ok(
        statuses.every((status) => [200, 201, 409, 410].includes(status)),
        JSON.stringify(statuses),
      );
      let booked = 0;
      for (const eventId of eventIds) {
        const b = await books(h.store, eventId, h.clock.now());
        assert.ok(b.balanced, JSON.stringify(b));
        booked += b.booked;
      }
      assert.ok(booked > 0);
    });
  });
}
