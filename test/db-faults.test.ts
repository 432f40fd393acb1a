// Real database faults, injected into a throwaway PostgreSQL server that this file starts and
// owns (never the machine's shared servers): a backend killed in the middle of a batch, an
// immediate-mode restart and a stop under load, a server frozen with SIGSTOP, and a commit whose
// outcome is in doubt. Throughout: the process lives (an unhandled 'error' would end this test
// process), clients see only 503s with Retry-After, the service recovers with no restart, every
// acknowledged booking is there afterwards and the books balance.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { openMysqlStore, openPostgresStore } from '../src/storage/open.ts';
import { type ThrowawayPostgres, startThrowawayPostgres } from './support/throwaway-postgres.ts';
import { books, testConfig } from './support/helpers.ts';
import {
  MAX_RECOVERY_MS,
  MAX_TIME_TO_503_MS,
  type OwnService,
  type Reply,
  assertBooksHold,
  assertOnly503s,
  bookOn,
  call,
  closeAgent,
  createEvent,
  holdOn,
  serve,
  storm,
  timeToFirstHold,
  until,
} from './support/load.ts';
import { contractTest, installContractCheck } from './support/contract.ts';

installContractCheck();

let server: ThrowawayPostgres;
after(() => closeAgent());

let databases = 0;
async function service(): Promise<OwnService> {
  const name = `faults_${process.pid}_${databases++}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return serve(await openPostgresStore(url.toString(), { poolSize: 10 }), url.toString());
}

// TEST_FAULTS=0 skips it (CI's second run, on the machine's servers, after the first ran it).
describe(
  'database faults on a throwaway PostgreSQL',
  { skip: process.env.TEST_FAULTS === '0' ? 'TEST_FAULTS=0' : false },
  () => {
    let s: OwnService;
    before(async () => {
      server = await startThrowawayPostgres('box-office-faults-');
      s = await service();
    });
    after(async () => {
      await s?.close();
      await server?.stop();
    });

    test('every connection killed under load: only 503s, and every acknowledged booking stays', async () => {
      const eventId = await createEvent(s.base, 100_000);
      const load = storm(s.base, eventId);
      await until(async () => load.bookings.size >= 20);
      for (let i = 0; i < 5; i++) {
        await server.terminateBackends('box-office');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const recovery = await timeToFirstHold(s.base, eventId);
      await load.stop();
      assertOnly503s(load.replies);
      assert.ok(recovery < MAX_RECOVERY_MS, `recovered in ${recovery} ms`);
      await assertBooksHold(s, eventId, load.bookings);
    });

    test('restart in immediate mode under load: 503s while it is down, recovery without a restart of ours', async () => {
      const eventId = await createEvent(s.base, 100_000);
      const load = storm(s.base, eventId);
      await until(async () => load.bookings.size >= 20);
      await server.restartImmediate();
      const recovery = await timeToFirstHold(s.base, eventId);
      const acknowledged = load.bookings.size;
      await until(async () => load.bookings.size > acknowledged); // bookings flow again
      await load.stop();
      assertOnly503s(load.replies);
      assert.ok(recovery < MAX_RECOVERY_MS, `recovered ${recovery} ms after the server was back`);
      await assertBooksHold(s, eventId, load.bookings);
    });

    test('stopped for 3 s: fast 503s and a failing /readyz while down, back within a second of its return', async () => {
      const eventId = await createEvent(s.base, 100_000);
      const load = storm(s.base, eventId);
      await until(async () => load.bookings.size >= 20);
      const down = server.stopFor(3000);
      // Probe /readyz while the server is down.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const readyDuringOutage = await call(s.base, 'GET', '/readyz');
      await down;
      const recovery = await timeToFirstHold(s.base, eventId);
      await load.stop();
      assertOnly503s(load.replies);
      assert.equal(readyDuringOutage.status, 503);
      assert.ok(readyDuringOutage.ms < 1000, `/readyz answered in ${readyDuringOutage.ms} ms`);
      const slowest503 = Math.max(...load.replies.filter((r) => r.status === 503).map((r) => r.ms));
      assert.ok(slowest503 < MAX_TIME_TO_503_MS, `slowest 503 took ${slowest503} ms`);
      assert.ok(recovery < MAX_RECOVERY_MS, `recovered ${recovery} ms after the server was back`);
      await assertBooksHold(s, eventId, load.bookings);
    });

    test('frozen with SIGSTOP: requests and /readyz answer 503 fast instead of hanging; thawed, it recovers', async () => {
      const eventId = await createEvent(s.base, 100_000);
      const load = storm(s.base, eventId);
      await until(async () => load.bookings.size >= 20);
      await server.freeze();
      let ready: Reply;
      try {
        await new Promise((resolve) => setTimeout(resolve, 2500));
        ready = await call(s.base, 'GET', '/readyz');
        const hold = await holdOn(s.base, eventId);
        assert.equal(hold.status, 503);
        assert.ok(hold.ms < MAX_TIME_TO_503_MS, `a hold answered 503 in ${hold.ms} ms`);
      } finally {
        await server.thaw();
      }
      const recovery = await timeToFirstHold(s.base, eventId);
      await load.stop();
      assertOnly503s(load.replies);
      assert.equal(ready.status, 503);
      assert.ok(ready.ms < 1000, `/readyz answered in ${ready.ms} ms`);
      const slowest503 = Math.max(...load.replies.filter((r) => r.status === 503).map((r) => r.ms));
      assert.ok(slowest503 < MAX_TIME_TO_503_MS, `slowest 503 took ${slowest503} ms`);
      assert.ok(recovery < MAX_RECOVERY_MS, `recovered ${recovery} ms after the thaw`);
      await assertBooksHold(s, eventId, load.bookings);
    });

    test('a queue through a 3 s stop: status answers from memory, joins get fast 503s, admission resumes once, places kept', async () => {
      const created = await call(s.base, 'POST', '/events', {
        event: {
          name: 'Queued sale',
          total_seats: 10_000,
          max_seats_per_customer: 4,
          sale_opens_at: new Date(Date.now() - 1000).toISOString(),
          queue: { admit_per_minute: 1200 },
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const eventId = created.body.event_id as number;
      const tickets: string[] = [];
      for (let i = 0; i < 400; i++) {
        const joined = await call(s.base, 'POST', `/events/${eventId}/queue`, { customer: `fan-${i}` });
        assert.equal(joined.status, 200, JSON.stringify(joined.body));
        tickets.push(joined.body.ticket as string);
      }
      // The summary reads the database: right after the outage it may still answer 503, with no number.
      const admittedThrough = async (): Promise<number> => {
        for (;;) {
          const summary = await call(s.base, 'GET', `/events/${eventId}/queue`);
          if (summary.status === 200) return summary.body.admitted_through as number;
          assert.equal(summary.status, 503, JSON.stringify(summary.body));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      await until(async () => (await admittedThrough()) >= 20);
      const statuses = async () => Promise.all(tickets.map((t) => call(s.base, 'GET', `/queue/${t}`)));
      const before = await statuses();
      const down = server.stopFor(3000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const during = await statuses();
      const join = await call(s.base, 'POST', `/events/${eventId}/queue`, { customer: 'during-outage' });
      await down;
      assert.ok(
        during.every((reply) => reply.status === 200),
        'every status answered while the database was down',
      );
      assert.equal(join.status, 503);
      assert.equal(join.retryAfter, '1');
      assert.ok(join.ms < MAX_TIME_TO_503_MS, `a join answered 503 in ${join.ms} ms`);
      const stopped = await admittedThrough();
      await until(async () => (await admittedThrough()) >= stopped + 20);
      const after = await statuses();
      assert.deepEqual(
        after.map((reply) => reply.body.position),
        before.map((reply) => reply.body.position),
        'every place kept',
      );
      const through = await admittedThrough();
      const admitted = after.filter((reply) => reply.body.state === 'admitted').length;
      assert.ok(admitted >= stopped && admitted <= through, `${admitted} admitted, watermark ${through}`);
      // Each step of admission once, in order, and none bigger than 2 s at 1200 a minute: no burst after the outage.
      const steps = await s.store.sql.rows<{ through: number }>(
        'select through from queue_advances where event_id = $1 order by at, through',
        [eventId],
      );
      const throughs = steps.map((step) => Number(step.through));
      assert.deepEqual(
        throughs,
        [...throughs].sort((a, b) => a - b),
      );
      throughs.forEach((value, i) => assert.ok(value - (throughs[i - 1] ?? 0) <= 41, `step to ${value}`));
    });

    test('a waiting list through a 2 s stop: joins and releases get fast 503s, nothing half-made, offers resume', async () => {
      const eventId = await createEvent(s.base, 2);
      const holds = [await holdOn(s.base, eventId, 1), await holdOn(s.base, eventId, 1)];
      for (const hold of holds) assert.equal(hold.status, 201, JSON.stringify(hold.body));
      const joinList = (customer: string) => call(s.base, 'POST', `/events/${eventId}/waitlist`, { customer, qty: 1 });
      const first = await joinList('first@example.com');
      assert.equal(first.status, 201, JSON.stringify(first.body));
      const release = (hold: Reply) =>
        call(s.base, 'DELETE', `/holds/${hold.body.hold_id as number}`, undefined, {
          'x-payment-token': hold.body.payment_token as string,
        });
      const down = server.stopFor(2000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const during = [await joinList('during@example.com'), await release(holds[0]!)];
      await down;
      for (const reply of during) {
        assert.equal(reply.status, 503, JSON.stringify(reply.body));
        assert.equal(reply.retryAfter, '1');
        assert.ok(reply.ms < MAX_TIME_TO_503_MS, `answered 503 in ${reply.ms} ms`);
      }
      // Recovered by itself: the release that failed is made again, and its seat goes to the list.
      await until(async () => (await release(holds[0]!)).status === 200);
      const entry = await call(s.base, 'GET', `/waitlist/${first.body.entry_id as number}`, undefined, {
        'waitlist-secret': first.body.secret as string,
      });
      assert.equal(entry.status, 200, JSON.stringify(entry.body));
      assert.equal(entry.body.status, 'offered');
      assert.equal((await joinList('during@example.com')).status, 201, 'the join refused in the outage works now');
      const snapshot = await call(s.base, 'GET', `/events/${eventId}`);
      assert.deepEqual(
        [snapshot.body.available, snapshot.body.held, snapshot.body.waiting],
        [0, 2, 1],
        'one seat held, one offered, one entry waiting',
      );
      await assertBooksHold(s, eventId, new Map());
    });

    test('a commit in doubt answers 503 outcome_unknown, and a retry with the same key or hold tells the truth', async () => {
      const eventId = await createEvent(s.base, 10);
      const granted = await holdOn(s.base, eventId, 1);
      assert.equal(granted.status, 201);
      // Each request first waits for the event's row lock, held from outside, so that its
      // Idempotency-Key is claimed normally. Then, with a synchronous standby that never answers,
      // its COMMIT is written here but never confirmed: the commit a failover leaves in doubt.
      const hold = await inDoubt(s, eventId, () => holdOn(s.base, eventId, 2, { 'idempotency-key': 'in-doubt-hold' }));
      const booking = await inDoubt(s, eventId, () =>
        bookOn(s.base, granted.body.hold_id as number, granted.body.payment_token as string),
      );
      for (const reply of [hold, booking]) {
        assert.equal(reply.status, 503, JSON.stringify(reply.body));
        assert.equal(reply.body.code, 'outcome_unknown', JSON.stringify(reply.body));
        assert.match(String(reply.body.detail), /may or may not have taken effect/);
        assert.ok(reply.retryAfter !== undefined);
      }
      // The service may have tripped its breaker on the hung commits; wait for it to be back.
      await until(async () => (await call(s.base, 'GET', '/readyz')).status === 200);
      const retriedHold = await holdOn(s.base, eventId, 2, { 'idempotency-key': 'in-doubt-hold' });
      const retriedBooking = await bookOn(s.base, granted.body.hold_id as number, granted.body.payment_token as string);
      assert.ok([200, 201].includes(retriedBooking.status), JSON.stringify(retriedBooking.body));
      assert.equal(retriedHold.status, 201, JSON.stringify(retriedHold.body));
      const b = await books(s.store, eventId, new Date());
      // Committed locally, the first attempts took effect: the retries found them, and did not repeat them.
      assert.deepEqual([b.held, b.booked, b.balanced], [2, 1, true], 'exactly one hold of 2 and one booking');
      const again = await holdOn(s.base, eventId, 2, { 'idempotency-key': 'in-doubt-hold' });
      assert.deepEqual(again.body, retriedHold.body);
    });
  },
);

/** Runs `send` so that its transaction's COMMIT cannot be confirmed; returns its reply. */
async function inDoubt(s: OwnService, eventId: number, send: () => Promise<Reply>): Promise<Reply> {
  await until(async () => (await call(s.base, 'GET', '/readyz')).status === 200);
  const blocker = new pg.Client({ connectionString: s.url });
  // Watches from outside the blocker's transaction: a transaction reads pg_stat_activity's list
  // of backends once, so a backend that connects after its first read (the service's pool
  // replacing the connection whose commit was left in doubt) never appears to it. Polled
  // through the blocker, the request's wait went unseen twice in CI on 2026-12-07 (a 30 s
  // timeout; then the request's own statement timeout, 503).
  const watcher = new pg.Client({ connectionString: s.url });
  await Promise.all([blocker.connect(), watcher.connect()]);
  try {
    await blocker.query('begin');
    await blocker.query('select 1 from events where id = $1 for update', [eventId]);
    const reply = send();
    // Said outright if the request is answered without waiting, or others wait too.
    let answered: Reply | undefined;
    reply.then((early) => (answered = early)).catch(() => {});
    let waiters: string[] = [];
    await until(async () => {
      if (answered !== undefined)
        throw new Error(`answered ${answered.status} before it waited: ${JSON.stringify(answered.body)}`);
      waiters = await lockWaiters(watcher);
      return waiters.length === 1;
    }).catch((error: Error) => {
      throw new Error(`${error.message}; box-office backends waiting on a lock: ${JSON.stringify(waiters)}`);
    });
    await setSynchronousStandby(server.url, 'phantom_standby');
    await blocker.query('rollback');
    return await reply;
  } finally {
    await Promise.all([blocker.end().catch(() => {}), watcher.end().catch(() => {})]);
    await setSynchronousStandby(server.url, '');
  }
}

// MariaDB: the machine's shared server is not ours to stop, but our own connection is ours to kill.
describe(
  'database faults on MySQL/MariaDB',
  { skip: process.env.TEST_MYSQL_URL ? false : 'TEST_MYSQL_URL is not set' },
  () => {
    test('a connection killed (KILL CONNECTION) in the middle of a batch: that batch alone gets 503, the next succeeds', async () => {
      const { default: mysql } = await import('mysql2/promise');
      const serverUrl = process.env.TEST_MYSQL_URL!;
      const name = `faults_${process.pid}_${Date.now()}`;
      const admin = await mysql.createConnection({ uri: serverUrl });
      await admin.query(`create database ${name} character set utf8mb4 collate utf8mb4_bin`);
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      const store = await openMysqlStore(url.toString(), { poolSize: 10 });
      await store.migrate();
      const app = await buildApp({ config: testConfig(), store, clock: systemClock });
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      const blocker = await mysql.createConnection({ uri: url.toString() });
      try {
        const eventId = await createEvent(base, 100);
        await blocker.query('start transaction');
        await blocker.query('select id from events where id = ? for update', [eventId]);
        const batch = Promise.all(Array.from({ length: 5 }, () => holdOn(base, eventId)));
        const waiting = async () => {
          const [rows] = await admin.query(
            `select id from information_schema.processlist
            where db = ? and info like 'select %from events where id = % for update'`,
            [name],
          );
          return rows as Array<{ id: number }>;
        };
        await until(async () => (await waiting()).length === 1);
        const [{ id }] = (await waiting()) as [{ id: number }];
        await admin.query(`kill connection ${Number(id)}`);
        await blocker.query('rollback');
        const replies = await batch;
        assertOnly503s(replies);
        const statuses = replies.map((r) => r.status);
        assert.equal(statuses[0], 503, JSON.stringify(replies[0]!.body));
        assert.ok(
          statuses.every((status) => status === 201 || status === 503),
          JSON.stringify(statuses),
        );
        const granted = statuses.filter((status) => status === 201).length;
        assert.equal((await holdOn(base, eventId)).status, 201);
        const b = await books(store, eventId, new Date());
        assert.deepEqual([b.held, b.balanced], [granted + 1, true]);
      } finally {
        await blocker.end();
        await app.close();
        await store.close();
        await admin.query(`drop database if exists ${name}`);
        await admin.end();
      }
    });
  },
);

async function setSynchronousStandby(url: string, names: string): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`alter system set synchronous_standby_names = '${names}'`);
    await admin.query('select pg_reload_conf()');
    // pg_reload_conf only signals; wait until new sessions see the setting.
    await until(
      async () => (await admin.query('show synchronous_standby_names')).rows[0].synchronous_standby_names === names,
    );
    if (names === '') {
      // Sessions still waiting for the phantom standby are released by the reload.
      await until(
        async () =>
          (await admin.query("select count(*)::int as n from pg_stat_activity where wait_event = 'SyncRep'")).rows[0]
            .n === 0,
      );
    }
  } finally {
    await admin.end();
  }
}

/**
 * The statements of the service's backends waiting on a lock (their first 160 characters).
 * `client` must not be in a transaction: that would see only the backends of its first read.
 */
async function lockWaiters(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ query: string }>(
    "select left(query, 160) as query from pg_stat_activity where application_name = 'box-office' and wait_event_type = 'Lock'",
  );
  return rows.map((row) => row.query);
}

contractTest(
  process.env.TEST_FAULTS === '0' && !process.env.TEST_MYSQL_URL
    ? 'TEST_FAULTS=0 and TEST_MYSQL_URL is not set'
    : false,
);
