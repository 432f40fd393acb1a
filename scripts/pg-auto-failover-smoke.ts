// Smoke test of scripts/pg-auto-failover.ts against a real pg_auto_failover cluster:
//   npx tsx scripts/pg-auto-failover-smoke.ts
// start -> write on the primary -> kill the primary -> writable again (timed) -> rows survived ->
// restart the killed node as a standby -> planned switchover (timed) -> stop, and nothing left.
import { readdirSync, readlinkSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import pg from 'pg';
import { type FailoverCluster, pgAutoFailoverAvailable, startFailoverCluster } from './pg-auto-failover.ts';

const ROWS = 100;

if (!pgAutoFailoverAvailable()) {
  console.error(
    'SKIP: pg_auto_failover is not installed (apt-get install -y postgresql-15-auto-failover pg-auto-failover-cli)',
  );
  process.exit(2);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

async function withClient<T>(port: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: 3000,
    statement_timeout: 10_000,
    query_timeout: 12_000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The primary found the way a client would: the one host that is not in recovery. */
async function findPrimary(cluster: FailoverCluster): Promise<{ name: string; port: number }> {
  for (const node of cluster.nodes) {
    try {
      const inRecovery = await withClient(
        node.port,
        async (c) => (await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]?.r,
      );
      if (inRecovery === false) return { name: node.name, port: node.port };
    } catch {
      /* down: try the next host */
    }
  }
  throw new Error('no host is out of recovery');
}

async function showState(cluster: FailoverCluster): Promise<void> {
  for (const s of await cluster.state()) {
    console.log(
      `   ${s.name.padEnd(6)} :${s.port}  reported ${s.reportedState.padEnd(12)} assigned ${s.assignedState.padEnd(12)} health ${s.health}`,
    );
  }
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Our processes: anything whose working directory is under the cluster's temp dir. */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`).replace(/ \(deleted\)$/, '');
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const timings: Record<string, string> = {};

let t = Date.now();
const cluster = await startFailoverCluster();
timings.startup = seconds(Date.now() - t);
const root = dirname(dirname(cluster.nodes[0]!.dataDir));
console.log(`cluster up in ${timings.startup}: ${cluster.uri}`);
await showState(cluster);

try {
  const first = await findPrimary(cluster);
  check(
    (await cluster.primary()).name === first.name,
    `the monitor and pg_is_in_recovery() agree: ${first.name} is primary`,
  );
  await withClient(first.port, async (c) => {
    await c.query('create table smoke (id int primary key, note text not null)');
    await c.query('insert into smoke select g, $1 from generate_series(1, $2::int) g', ['before failover', ROWS]);
  });
  console.log(`wrote ${ROWS} rows on ${first.name}`);

  t = Date.now();
  const killed = await cluster.killPrimary();
  const killMs = Date.now() - t;
  check(killed.name === first.name, `killed the primary ${killed.name} (SIGKILL took ${killMs} ms)`);
  t = Date.now();
  const promoted = await cluster.waitForWritablePrimary(90_000);
  timings['kill -> writable'] = seconds(Date.now() - t);
  check(
    promoted.name !== killed.name,
    `${promoted.name} is the writable primary ${timings['kill -> writable']} after the kill`,
  );
  const survivors = await withClient(promoted.port, async (c) =>
    Number((await c.query<{ n: string }>('select count(*) as n from smoke')).rows[0]?.n),
  );
  check(survivors === ROWS, `all ${ROWS} rows are on the new primary`);
  check((await findPrimary(cluster)).name === promoted.name, 'clients find the same primary by pg_is_in_recovery()');
  await showState(cluster);

  t = Date.now();
  await cluster.restartNode(killed.name);
  await until(`${killed.name} to be a secondary`, 120_000, async () => {
    const s = (await cluster.state()).find((x) => x.name === killed.name);
    return s?.reportedState === 'secondary' && s.assignedState === 'secondary';
  });
  timings['restart -> secondary'] = seconds(Date.now() - t);
  check(true, `${killed.name} is back as a secondary after ${timings['restart -> secondary']}`);
  await showState(cluster);
  const rejoined = cluster.nodes.find((n) => n.name === killed.name)!;
  const onRejoined = await withClient(rejoined.port, async (c) => {
    const r = (await c.query<{ n: string; r: boolean }>('select count(*) as n, pg_is_in_recovery() as r from smoke'))
      .rows[0];
    return { rows: Number(r?.n), inRecovery: r?.r };
  });
  check(
    onRejoined.inRecovery === true && onRejoined.rows === ROWS,
    `${killed.name} is in recovery and has the ${ROWS} rows`,
  );

  t = Date.now();
  const sw = await cluster.switchover();
  timings.switchover = seconds(Date.now() - t);
  check(sw.from !== sw.to, `switchover ${sw.from} -> ${sw.to} in ${timings.switchover}`);
  const afterSwitch = await findPrimary(cluster);
  check(afterSwitch.name === sw.to, `clients find ${sw.to} as the primary`);
  await withClient(afterSwitch.port, (c) =>
    c.query('insert into smoke values ($1, $2)', [ROWS + 1, 'after switchover']),
  );
  check(true, `a write on ${sw.to} after the switchover commits`);
  await showState(cluster);
} finally {
  t = Date.now();
  await cluster.stop();
  await cluster.stop(); // twice is fine
  timings.stop = seconds(Date.now() - t);
}

const left = processesUnder(root);
check(left.length === 0, `no process left under ${root} (${left.join(' ') || 'none'})`);
check(!existsSync(root), `${root} is removed`);
console.log(
  `timings: ${Object.entries(timings)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
