// Webhooks under a flash sale (issue 18): the service on a throwaway PostgreSQL database, a
// loopback receiver verifying every request's signature (node:crypto, or --receiver-verify
// standardwebhooks: the npm package's JavaScript SHA-256), and C connections holding
// seats on one event for S seconds. Reports holds/s, the changes each endpoint had when the load
// stopped, how long until every endpoint had every change, and the lag from a change's `at` to
// its receipt (p50/p99 over every change at every endpoint). --compare runs a round with no
// endpoint and then one with --endpoints, on the same server, so that the holds/s compare, with
// the CPU per hold of each process. The receiver runs in a worker thread (--receiver inline: on
// the load generator's thread).
//
//   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//     node --import tsx bench/webhooks.ts --seconds 10 --connections 256 --endpoints 1 [--compare]
//       [--content-encoding identity|gzip|identity,gzip]
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { type DatabaseCpuProbe, cpuWindow, postmasterProbe } from './cpu.ts';
import { httpRequest, runLoad } from './load.ts';
import { parentOf } from './processes.ts';
import { type ReceiverStats, VERIFIERS, type Verifier, startReceiver } from './webhook-receiver.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '256' },
    endpoints: { type: 'string', default: '1' },
    compare: { type: 'boolean', default: false },
    'drain-timeout': { type: 'string', default: '120' },
    receiver: { type: 'string', default: 'thread' },
    'receiver-verify': { type: 'string', default: 'native' },
    // identity, gzip, or both in one run (identity,gzip): a round of --endpoints per encoding.
    'content-encoding': { type: 'string', default: 'identity' },
  },
});
const seconds = Number(args.seconds);
const connections = Number(args.connections);
const endpoints = Number(args.endpoints);
const baseUrl =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TOKEN = 'bench-webhooks-admin-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The receiver (bench/webhook-receiver.ts): in a worker thread unless --receiver inline.
const verifier = args['receiver-verify'] as Verifier;
if (!VERIFIERS.includes(verifier)) throw new Error(`--receiver-verify is one of ${VERIFIERS.join(', ')}`);
const receiver = await startReceiver(args.receiver === 'inline' ? 'inline' : 'thread', verifier);
const receiverPort = receiver.port;
let endpointCount = 0;

// A throwaway database.
const dbName = `bench_webhooks_${process.pid}`;
const adminDb = new pg.Client({ connectionString: baseUrl });
await adminDb.connect();
await adminDb.query(`create database ${dbName}`);
const url = new URL(baseUrl);
url.pathname = `/${dbName}`;
// The whole PostgreSQL server's CPU, when it runs on this machine (a backend's parent is the postmaster).
const backendPid = (await adminDb.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
const postmaster = parentOf(backendPid);
const database: DatabaseCpuProbe | null = postmaster === null ? null : postmasterProbe(postmaster);

// The service, in its own process, as `box-office serve` runs.
const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as AddressInfo;
    probe.close(() => resolve(port));
  });
});
// BENCH_SERVER_NODE_ARGS: extra node flags for the server only (say, --cpu-prof --cpu-prof-dir=DIR).
const serverNodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const server = spawn(process.execPath, [...serverNodeArgs, '--import', 'tsx', 'src/cli.ts', 'serve'], {
  env: {
    ...process.env,
    NODE_ENV: 'production',
    ADMIN_TOKEN: TOKEN,
    DATABASE_URL: url.toString(),
    PORT: String(port),
    HOST: '127.0.0.1',
    WEBHOOK_ALLOW_PRIVATE_URLS: 'true',
    RATE_LIMIT_HOLDS_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    ACCESS_LOG_LEVEL: 'silent',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const api = async <T>(method: string, path: string, body?: object): Promise<T> => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};
for (let tries = 0; ; tries++) {
  try {
    await api('GET', '/healthz');
    break;
  } catch (error) {
    if (tries > 300) throw error;
    await sleep(100);
  }
}

async function databaseCounters(): Promise<{ commits: number; inserted: number; updated: number }> {
  const { rows } = await adminDb.query<{ commits: string; inserted: string; updated: string }>(
    `select xact_commit as commits, tup_inserted as inserted, tup_updated as updated
       from pg_stat_database where datname = $1`,
    [dbName],
  );
  return { commits: Number(rows[0]!.commits), inserted: Number(rows[0]!.inserted), updated: Number(rows[0]!.updated) };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

const encodings = args['content-encoding'].split(',');
if (!encodings.every((encoding) => encoding === 'identity' || encoding === 'gzip'))
  throw new Error('--content-encoding is identity, gzip or identity,gzip');

async function round(count: number, contentEncoding: string): Promise<void> {
  const event = await api<{ event_id: number }>('POST', '/events', {
    event: { name: 'bench', total_seats: 1_000_000 },
  });
  const mine: number[] = [];
  for (let i = 0; i < count; i++) {
    const n = ++endpointCount;
    const { secret } = await api<{ secret: string }>('POST', '/webhooks', {
      url: `http://127.0.0.1:${receiverPort}/hook/${n}`,
      event_types: ['hold.granted'],
      content_encoding: contentEncoding,
    });
    await receiver.add(n, secret);
    mine.push(n);
  }
  await receiver.reset();
  const before = await databaseCounters();
  const hold = httpRequest(
    'POST',
    '/holds',
    '127.0.0.1',
    JSON.stringify({ hold: { event_id: event.event_id, qty: 1 } }),
  );
  let granted = 0;
  // On the monotonic clock, which V8 CPU profiles use: `bench/profile-summary.ts --window` splits a profile by round.
  const windowStartUs = Number(process.hrtime.bigint() / 1000n);
  const cpu = cpuWindow(server.pid, database);
  const receiverBusyAtStart = await receiver.busyMs();
  const load = await runLoad({
    host: '127.0.0.1',
    port,
    connections,
    durationMs: seconds * 1000,
    graceMs: 5000,
    next: () => hold,
    onResponse: (status) => status === 201 && granted++,
    prime: httpRequest('GET', '/healthz', '127.0.0.1'),
  });
  const stopped = Date.now();
  const split = cpu.stop(granted, 'hold');
  const receiverBusyAtStop = await receiver.busyMs();
  const windowUs = `${windowStartUs},${Number(process.hrtime.bigint() / 1000n)}`;
  const receivedBy = (stats: ReceiverStats) => mine.map((n) => stats.received[n] ?? 0);
  const atStop = receivedBy(await receiver.stats());
  let drainedMs = NaN;
  while (Date.now() - stopped < Number(args['drain-timeout']) * 1000) {
    if (receivedBy(await receiver.stats()).every((received) => received >= granted)) {
      drainedMs = Date.now() - stopped;
      break;
    }
    await sleep(20);
  }
  const sorted = await receiver.lags();
  const { requests, changes: changesReceived, badSignatures } = await receiver.stats();
  // PostgreSQL reports a backend's counters within about a second of its transactions.
  await sleep(1500);
  const after = await databaseCounters();
  const perHold = (key: keyof typeof after) => Number(((after[key] - before[key]) / granted).toFixed(3));
  console.log(
    JSON.stringify({
      endpoints: count,
      contentEncoding: count === 0 ? null : contentEncoding,
      seconds,
      connections,
      holdsGranted: granted,
      holdsPerSecond: Math.round(granted / (load.elapsedMs / 1000)),
      holdP99Ms: Math.round(load.latency.p99Ms),
      deliveredAtStop: count === 0 ? null : { min: Math.min(...atStop), max: Math.max(...atStop) },
      drainedAfterStopMs: count === 0 ? null : drainedMs,
      lagMs: count === 0 ? null : { p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), max: sorted.at(-1) },
      requests: count === 0 ? null : requests,
      changesPerRequest: count === 0 ? null : Math.round(changesReceived / requests),
      // The service's transactions (one per statement outside a transaction) and rows written,
      // per hold granted, from the round's start until after the drain (pg_stat_database).
      db: {
        commitsPerHold: perHold('commits'),
        insertedPerHold: perHold('inserted'),
        updatedPerHold: perHold('updated'),
      },
      badSignatures,
      // CPU µs per hold granted, in the load's window, by process: the service, the whole
      // PostgreSQL server, this process (the load generator and the receiver's thread), the
      // receiver's thread alone, and the rest of the box.
      cpuUsPerHold: {
        server: Math.round(split.serverUs ?? NaN),
        database: split.databaseUs === null ? null : Math.round(split.databaseUs),
        bench: Math.round(split.loadgenUs),
        receiver:
          receiverBusyAtStart === null || receiverBusyAtStop === null
            ? null
            : Math.round(((receiverBusyAtStop - receiverBusyAtStart) * 1000) / granted),
        other: Math.round(split.otherUs),
      },
      windowUs,
    }),
  );
  // Out of the way of the next round.
  for (const webhook of (await api<{ webhooks: Array<{ webhook_id: number }> }>('GET', '/webhooks')).webhooks) {
    await fetch(`http://127.0.0.1:${port}/webhooks/${webhook.webhook_id}`, { method: 'DELETE', headers: auth });
  }
}

try {
  if (args.compare) await round(0, 'identity');
  for (const encoding of encodings) await round(endpoints, encoding);
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await receiver.close();
  await adminDb.query(`drop database if exists ${dbName} with (force)`);
  await adminDb.end();
}
