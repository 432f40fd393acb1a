// Failover on a real pg_auto_failover cluster (a monitor, a primary and two synchronous
// standbys, from Debian's packages; test/support/pg-auto-failover.ts): the service runs on the
// libpq multi-host URI that `pg_autoctl show uri` prints, under a booking storm, while the
// primary is hard-killed (postmaster, children and keeper) and then switched over on purpose.
// After each: the service resumed by itself, no restart; every acknowledged booking is on the
// new primary; the books balance. The figures are printed for docs/reliability.md.
//
// Skipped where pg_auto_failover is not installed (.ci/run installs it), or with TEST_FAILOVER=0.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type App, buildApp } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { openPostgresStore } from '../src/storage/open.ts';
import type { Store } from '../src/storage/store.ts';
import { type FailoverCluster, pgAutoFailoverAvailable, startFailoverCluster } from './support/pg-auto-failover.ts';
import { testConfig } from './support/helpers.ts';
import { type Reply, assertBooksHold, assertOnly503s, closeAgent, createEvent, storm, until } from './support/load.ts';

const skip =
  process.env.TEST_FAILOVER === '0'
    ? 'TEST_FAILOVER=0'
    : pgAutoFailoverAvailable()
      ? false
      : 'pg_auto_failover is not installed (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)';

/** Acknowledged bookings before the fault, so the storm is in full swing when it comes. */
const BOOKINGS_BEFORE_FAULT = 50;
/** The cluster takes 13 to 20 s to promote a standby with the tuned monitor; allow for a slow box. */
const FAILOVER_BUDGET_MS = 60_000;

describe('failover on pg_auto_failover', { skip }, () => {
  let cluster: FailoverCluster;
  let app: App;
  let store: Store;
  let base: string;
  let killed: string | undefined;

  before(async () => {
    cluster = await startFailoverCluster({ standbys: 2 });
    // The URI exactly as `pg_autoctl show uri --formation default` prints it: sslmode=prefer on
    // servers made with --no-ssl, and no user, so PGUSER names it, as for libpq.
    assert.match(cluster.uri, /^postgres:\/\/[^/]+,[^/]+\/postgres\?target_session_attrs=read-write&sslmode=prefer$/);
    process.env.PGUSER = 'postgres';
    store = await openPostgresStore(cluster.uri, { poolSize: 10 });
    await store.migrate();
    app = await buildApp({ config: testConfig(), store, clock: systemClock });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await app?.close();
    await store?.close().catch(() => {});
    await cluster?.stop();
    await closeAgent();
  });

  const primaryUrl = async () => {
    const { port } = await cluster.primary();
    return `postgres://postgres@127.0.0.1:${port}/postgres`;
  };

  /** Runs a storm through `fault`, then checks everything a user relies on; returns the figures. */
  async function throughFault(name: string, fault: () => Promise<unknown>) {
    const eventId = await createEvent(base, 1_000_000);
    const load = storm(base, eventId);
    await until(async () => load.bookings.size >= BOOKINGS_BEFORE_FAULT, FAILOVER_BUDGET_MS);
    const faultAt = Date.now();
    await fault();
    const faultDone = Date.now();
    // The service finds the new primary by itself: wait for bookings to flow again.
    const acknowledged = load.bookings.size;
    await until(async () => load.bookings.size > acknowledged + 10, FAILOVER_BUDGET_MS);
    await load.stop();
    assertOnly503s(load.replies);
    // The first hold asked for after the fault was done, so not one committed before it.
    const firstHoldAfter = load.replies.find(
      (r: Reply) => r.at - r.ms >= faultDone && r.status === 201 && 'hold_id' in r.body,
    );
    assert.ok(firstHoldAfter !== undefined);
    const gap = load.replies.filter((r) => r.at > faultAt && r.at <= firstHoldAfter.at);
    await assertBooksHold({ store, base, url: primaryUrl }, eventId, load.bookings);
    const figures = {
      fault: name,
      msFaultTook: faultDone - faultAt,
      msToFirstHold: firstHoldAfter.at - faultAt,
      '503sInGap': gap.filter((r) => r.status === 503).length,
      slowest503Ms: Math.max(0, ...gap.filter((r) => r.status === 503).map((r) => r.ms)),
      requests: load.replies.length,
      bookingsChecked: load.bookings.size,
      lost: 0,
    };
    console.log(`# failover figures ${JSON.stringify(figures)}`);
    return figures;
  }

  test('the primary is hard-killed under a booking storm: the service follows the new primary, nothing acknowledged is lost', async () => {
    const before = await cluster.primary();
    const figures = await throughFault('kill primary', async () => {
      killed = (await cluster.killPrimary()).name;
    });
    const after = await cluster.primary();
    assert.notEqual(after.name, before.name, 'a standby was promoted');
    assert.ok(figures.msToFirstHold < FAILOVER_BUDGET_MS);
  });

  test('a planned switchover under a booking storm: the same guarantees, and a shorter gap', async () => {
    // Bring the killed node back as a standby first, so the cluster has two again.
    if (killed !== undefined) await cluster.restartNode(killed);
    const before = await cluster.primary();
    const figures = await throughFault('switchover', () => cluster.switchover());
    assert.notEqual((await cluster.primary()).name, before.name);
    assert.ok(figures.msToFirstHold < FAILOVER_BUDGET_MS);
  });
});
