// `npm run bench`: drives concurrent HTTP load at the box office and at a canned-reply Fastify
// server (the HTTP ceiling) in the same run, checks the books, and prints throughput, latency,
// server memory, where the CPU went and the ratio to the ceiling. Optionally also an open-loop
// latency curve (--open-loop) and several checkouts side by side (--tree, --compare).
// See docs/performance.md and `npm run bench -- --help`.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseAdmissionKeys, signAdmission } from '../src/admission/tokens.ts';
import { freePort } from '../test/support/throwaway-postgres.ts';
import { type CpuSplit, type DatabaseCpuProbe, cpuWindow } from './cpu.ts';
import { type DatabaseProvider, openProvider } from './databases.ts';
import { type LoadResult, type OpenLoopResult, httpRequest, runLoad, runOpenLoop } from './load.ts';
import { type Options, type RateSpec, USAGE, parseOptions } from './options.ts';
import { type Child, killAllChildren, readMemory, startChild, waitForQuiet, watch } from './processes.ts';
import { WINDOWS_FILE, type Windows, profilesIn, summarizeProfile } from './profile-summary.ts';
import {
  type Measurement,
  type OpenLoopStats,
  type ServerStats,
  formatMeasurement,
  formatSummary,
  summarize,
  summarizeOpenLoop,
} from './report.ts';
import { type QueueBox, formatQueue, runQueueBench, summarizeQueue } from './queue.ts';
import { type HotEvent, type OpenArrivals, type Target, api, createEvent, runScenario } from './scenarios.ts';
import type { ChildMessage, ParentMessage, StreamsOpened, StreamsSettled } from './streams.ts';
import { type Tree, codeVersion, migrateCommand, resolveTrees } from './trees.ts';

const LOG_DIR = resolve('.bench/logs');
const PROFILE_DIR = resolve('.bench/profiles');
/** Working directory of compiled servers: no .env there, so only the bench's settings apply. */
const SCRATCH_DIR = resolve('.bench/run');
/** Seats per event: the API's maximum, more than a run here can hold. */
const ROOMY_SEATS = 1_000_000;
/** --features: the servers' ADMISSION_SECRET, so that the bench signs tokens as their queues would. */
const BENCH_ADMISSION_SECRET = `bench:${randomBytes(24).toString('base64url')}`;
/** --features without --customer-limit: max_seats_per_customer of the events. */
const FEATURES_CUSTOMER_LIMIT = 4;
/** --features: how long the bench's admission tokens last (the queue's default window). */
const FEATURES_ADMISSION_TTL_SECONDS = 600;
/** Holds outlive every run, so nothing lapses mid-measurement. */
const BENCH_HOLD_TTL_SECONDS = 3600;

const progress = (line: string) => process.stderr.write(`${line}\n`);

/** The options and the trees to measure, in measuring order; on a bad command line, usage and exit 2. */
function setup(): { options: Options; trees: Tree[] } {
  try {
    const options = parseOptions(process.argv.slice(2), process.env);
    const trees = resolveTrees([
      ...options.compare,
      ...(options.self ? [{ label: options.selfLabel, dir: '.', self: true }] : []),
      ...options.trees,
    ]);
    for (const label of [...Object.keys(options.treeEnv), ...Object.keys(options.treeBackend)]) {
      if (!trees.some((tree) => tree.label === label))
        throw new Error(`--tree-env ${label}: no tree is labelled ${label} (${trees.map((t) => t.label).join(', ')})`);
    }
    return { options, trees };
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const { options, trees } = setup();
/** Targets carry the tree's label only when trees are compared. */
const comparing = trees.length > 1;
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const quiet = () =>
  options.quietWaitSeconds > 0 ? waitForQuiet(options.quietWaitSeconds * 1000) : Promise.resolve(Number.NaN);
const non2xx = (statuses: Record<string, number>) =>
  Object.fromEntries(Object.entries(statuses).filter(([code]) => !code.startsWith('2')));

/** One round: a connection count and a repeat, the ceiling's rate in it, and where results go. */
interface Round {
  conns: number;
  repeat: number;
  /** The ceiling's closed-loop requests/s this round (the basis of x rates), or null. */
  ceilingRate: number | null;
  record(m: Measurement): void;
}

/** An --open-loop rate, with the ceiling's rate it is a fraction of. */
interface OpenRate {
  spec: RateSpec;
  ceilingRate: number | null;
}

/** Who is measured: the target's name in the report, and the server process. */
interface Subject {
  target: string;
  strategy: string;
  tree: string | null;
  pid: number | undefined;
}

/** A running server under test: how to reach it, who it is, and its database's CPU probe. */
interface Server {
  target: Target;
  subject: Subject;
  database: DatabaseCpuProbe | null;
  /** max_seats_per_customer of the events the bench makes on it (--customer-limit). */
  customerLimit?: number | undefined;
  /** --features: its events are queued, every hold carries a customer and a token, one webhook. */
  features?: boolean;
}

/** One measured window: the load, then what the processes did meanwhile. */
interface Window {
  rate: OpenRate | null;
  busyBefore: number;
  load: LoadResult;
  openLoop: OpenLoopResult | null;
  outcome: Awaited<ReturnType<typeof runScenario>> | null;
  usage: ReturnType<ReturnType<typeof watch>['stop']>;
  cpu: CpuSplit;
  serverStats: ServerStats | null;
  window: { startUs: number; endUs: number };
  streams?: Measurement['streams'];
}

/** What counts as one unit of work for CPU per unit: the headline figure's. */
function unitsOf(load: LoadResult, strategy: string): { unit: string; units: number } {
  if (strategy === 'ceiling') return { unit: 'request', units: load.completed };
  if (options.scenario === 'holds') return { unit: 'hold', units: load.statuses['201'] ?? 0 };
  if (options.scenario === 'bookings') return { unit: 'booking', units: load.statuses['201'] ?? 0 };
  return { unit: 'request', units: load.completed };
}

/** Starts the RSS and CPU watches and the profile window; the function returned ends them all. */
function startWindow(subject: Subject, database: DatabaseCpuProbe | null) {
  const startUs = monotonicUs();
  const watching = watch(subject.pid);
  const cpu = cpuWindow(subject.pid, database);
  return (load: LoadResult) => {
    const usage = watching.stop();
    const { unit, units } = unitsOf(load, subject.strategy);
    return { usage, cpu: cpu.stop(units, unit), window: { startUs, endUs: monotonicUs() } };
  };
}

function openLoopStats(o: OpenLoopResult, rate: OpenRate | null): OpenLoopStats {
  return {
    offeredRate: o.offeredRate,
    achievedRate: o.achievedRate,
    ceilingRate: rate?.ceilingRate ?? null,
    scheduled: o.scheduled,
    skipped: o.skipped,
    unsent: o.unsent,
    serviceP50Ms: o.serviceLatency.p50Ms,
    serviceP99Ms: o.serviceLatency.p99Ms,
    sendLagP99Ms: o.sendLag.p99Ms,
    sendLagMaxMs: o.sendLag.maxMs,
    connectionsPeak: o.connectionsPeak,
    waitedForConnection: o.waitedForConnection,
    maxBacklog: o.maxBacklog,
  };
}

function toMeasurement(subject: Subject, round: Round, w: Window): Measurement {
  const { load, outcome, usage } = w;
  const seconds = load.elapsedMs / 1000;
  const hwm = subject.pid === undefined ? null : readMemory(subject.pid);
  return {
    target: subject.target,
    strategy: subject.strategy,
    tree: subject.tree,
    mode: w.openLoop === null ? 'closed' : 'open',
    rate: w.rate?.spec.label ?? null,
    conns: round.conns,
    repeat: round.repeat,
    elapsedSeconds: seconds,
    holdsPerSecond: outcome?.holdsPerSecond ?? (load.statuses['201'] ?? 0) / seconds,
    bookingsPerSecond: outcome?.bookingsPerSecond ?? 0,
    requestsPerSecond: load.completed / seconds,
    holds: outcome?.holds ?? load.statuses['201'] ?? 0,
    refused: outcome?.refused ?? 0,
    bookings: outcome?.bookings ?? 0,
    snapshots: outcome?.snapshots ?? 0,
    p50Ms: load.latency.p50Ms,
    p90Ms: load.latency.p90Ms,
    p99Ms: load.latency.p99Ms,
    p999Ms: load.latency.p999Ms,
    maxMs: load.latency.maxMs,
    latencyByKind: Object.fromEntries(
      Object.entries(load.latencyByKind).map(([kind, s]) => [kind, { p50Ms: s.p50Ms, p99Ms: s.p99Ms, count: s.count }]),
    ),
    non2xx: non2xx(load.statuses),
    errors: load.errors,
    unknownOutcome: load.unknownOutcome,
    rssPeakMb: subject.pid === undefined ? null : usage.peakRssKb / 1024,
    rssHwmMb: hwm === null ? null : hwm.hwmKb / 1024,
    serverCpuCores: subject.pid === undefined ? null : usage.serverCpuMs / load.elapsedMs,
    loadgenCpuCores: load.cpuMs / load.elapsedMs,
    machineBusy: usage.machineBusy,
    machineBusyBefore: w.busyBefore,
    books: outcome?.books ?? null,
    serverStats: w.serverStats,
    cpu: w.cpu,
    openLoop: w.openLoop === null ? null : openLoopStats(w.openLoop, w.rate),
    window: w.window,
    streams: w.streams ?? null,
    profile: null,
  };
}

/** The absolute rate of an --open-loop spec in this round. */
function resolveRate({ spec, ceilingRate }: OpenRate): number {
  if (spec.perSecond !== undefined) return spec.perSecond;
  if (ceilingRate === null || !(ceilingRate > 0)) throw new Error(`--open-loop ${spec.label} needs the ceiling's rate`);
  return spec.ofCeiling! * ceilingRate;
}

/**
 * Open loop: the pool starts with as many connections as the closed loop uses (--conns), all
 * opened and accepted before the clock starts, so a burst is answered on connections the server
 * already has; it grows to --open-loop-conns only when they are all busy (and a new connection's
 * first request then also waits for the server to accept it, as a new client's would).
 */
const openArrivals = (rate: OpenRate, conns: number): OpenArrivals => ({
  ratePerSecond: resolveRate(rate),
  initialConnections: Math.min(conns, options.openLoopConns),
  maxConnections: Math.max(conns, options.openLoopConns),
});

const profileArgs = (dir: string) => (options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);

/** The canned-reply server under the same load as the box office; open-loop too when asked. */
async function measureCeiling(round: Round): Promise<number> {
  const label = `ceiling-c${round.conns}-r${round.repeat}`;
  const profileDir = join(PROFILE_DIR, label);
  const busyBefore = await quiet();
  const child = await startChild({
    script: 'bench/ceiling.ts',
    env: {},
    label,
    logDir: LOG_DIR,
    nodeArgs: profileArgs(profileDir),
  });
  let measured: Measurement[] = [];
  try {
    measured = await measureCeilingWindows(child, round, busyBefore);
  } finally {
    await child.stop();
  }
  if (options.cpuProf) attachProfiles(profileDir, measured);
  return measured[0]!.requestsPerSecond;
}

/** The ceiling's warm-up, its closed-loop window, then with --open-loop-ceiling one per rate. */
async function measureCeilingWindows(child: Child, round: Round, busyBefore: number): Promise<Measurement[]> {
  const subject: Subject = { target: 'ceiling', strategy: 'ceiling', tree: null, pid: child.pid };
  const host = `127.0.0.1:${child.port}`;
  const request = httpRequest('POST', '/holds', host, JSON.stringify({ hold: { event_id: 1, qty: options.qty } }));
  const plan = {
    host: '127.0.0.1',
    port: child.port,
    graceMs: options.graceSeconds * 1000,
    durationMs: options.durationSeconds * 1000,
    next: () => request,
    prime: httpRequest('GET', '/healthz', host),
  };
  if (options.warmupSeconds > 0)
    await runLoad({ ...plan, connections: round.conns, durationMs: options.warmupSeconds * 1000 });
  const measure = async (rate: OpenRate | null, before: number) => {
    const stop = startWindow(subject, null);
    const load =
      rate === null
        ? await runLoad({ ...plan, connections: round.conns })
        : await runOpenLoop({ ...plan, ...openArrivals(rate, round.conns) });
    const w = { rate, busyBefore: before, load, outcome: null, serverStats: null, ...stop(load) };
    const m = toMeasurement(subject, round, { ...w, openLoop: rate === null ? null : (load as OpenLoopResult) });
    round.record(m);
    return m;
  };
  const closed = await measure(null, busyBefore);
  const measured = [closed];
  if (options.openLoopCeiling) {
    for (const spec of options.openLoop)
      measured.push(await measure({ spec, ceilingRate: closed.requestsPerSecond }, await quiet()));
  }
  return measured;
}

/** --features for a tree (its label, or all). */
const featuresOf = (label: string) => options.features.includes(label) || options.features.includes('all');
/** --customer-limit for a tree's events (its label's, else the one for all; with --features, at least some limit). */
const customerLimitOf = (label: string) =>
  options.customerLimit[label] ??
  options.customerLimit[''] ??
  (featuresOf(label) ? FEATURES_CUSTOMER_LIMIT : undefined);

/** An event the bench makes on a server: with --features, queued and already open. */
function benchEvent(server: Pick<Server, 'target' | 'customerLimit' | 'features'>, name: string): Promise<number> {
  const queued = server.features
    ? { sale_opens_at: new Date(Date.now() - 60_000).toISOString(), queue: { admit_per_minute: 1 } }
    : {};
  return createEvent(server.target, name, ROOMY_SEATS, server.customerLimit, queued);
}

/** Fresh events for one measured window. */
async function hotEvents(server: Server): Promise<HotEvent[]> {
  const events: HotEvent[] = [];
  for (let k = 0; k < options.events; k++) {
    events.push({ id: await benchEvent(server, `bench hot event ${k + 1}`), total: ROOMY_SEATS });
  }
  return events;
}

const admissionKeys = parseAdmissionKeys(BENCH_ADMISSION_SECRET);
/** A token as the queue signs one when the customer's turn comes (the customer's number as its ticket). */
function admissionToken(eventId: number, customer: string): string {
  const now = new Date();
  return signAdmission(admissionKeys, {
    eventId,
    ticketNo: Number(customer.slice(2)),
    customer,
    issuedAt: now,
    expiresAt: new Date(now.getTime() + FEATURES_ADMISSION_TTL_SECONDS * 1000),
  });
}

/** The shape of the load of one window at `conns` connections (closed loop). */
const loadShape = (conns: number, features = false) => ({
  scenario: options.scenario,
  connections: conns,
  graceMs: options.graceSeconds * 1000,
  qty: options.qty,
  durationMs: options.durationSeconds * 1000,
  uniqueCustomers: options.uniqueCustomers || features,
  admissionToken: features ? admissionToken : undefined,
});

/** --features: the one webhook endpoint, in this process, answering 200 to every request. */
let receiver: Promise<{ url: string; requests: number; bytes: number }> | undefined;
function webhookReceiver() {
  receiver ??= new Promise((resolve) => {
    const state = { url: '', requests: 0, bytes: 0 };
    const http = createServer((request, response) => {
      state.requests++;
      request.on('data', (chunk: Buffer) => (state.bytes += chunk.length));
      request.on('end', () => response.writeHead(200).end());
    });
    http.unref();
    http.listen(0, '127.0.0.1', () => {
      state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/hook`;
      resolve(state);
    });
  });
  return receiver;
}

/** The warm-up, on an event of its own. */
async function warmUp(server: Server, conns: number): Promise<void> {
  const { target } = server;
  const id = await benchEvent(server, 'bench warm-up');
  const shape = { ...loadShape(conns, server.features), durationMs: options.warmupSeconds * 1000 };
  const outcome = await runScenario(target, [{ id, total: ROOMY_SEATS }], shape);
  if (!outcome.books.ok) progress(`  warm-up books: ${outcome.books.problems.join('; ')}`);
}

/**
 * Measures a running server: the warm-up, the closed loop (unless --no-closed-loop), then each
 * --open-loop rate, each on fresh events and followed by the books check.
 */
async function measureTarget(server: Server, round: Round): Promise<Measurement[]> {
  if (options.warmupSeconds > 0) await warmUp(server, round.conns);
  // With --streams, the closed loop twice: without and with the streams, alternating by round.
  const streamCounts =
    options.streams === 0 ? [0] : round.repeat % 2 === 1 ? [0, options.streams] : [options.streams, 0];
  const windows: Array<[OpenRate | null, number]> = [
    ...(options.closedLoop ? streamCounts.map((n): [null, number] => [null, n]) : []),
    ...options.openLoop.map((spec): [OpenRate, number] => [{ spec, ceilingRate: round.ceilingRate }, 0]),
  ];
  const measured: Measurement[] = [];
  for (const [rate, streams] of windows) measured.push(await measureWindow(server, round, rate, streams));
  return measured;
}

/** --streams: N listeners in a child process (bench/streams.ts), open and each with its first message. */
async function openStreams(target: Target, events: HotEvent[], count: number) {
  const scope = options.streamScope === 'all' ? ['--all'] : ['--event', String(events[0]!.id)];
  const url = `http://${target.host}:${target.port}`;
  const child = fork('bench/streams.ts', ['--url', url, ...scope, '--count', String(count), '--ipc'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<ChildMessage>((resolve, reject) => {
      child.once('message', (message) => resolve(message as ChildMessage));
      child.once('exit', (code) => reject(new Error(`bench/streams.ts exited (${code})`)));
    });
  const { opened } = (await next()) as { opened: StreamsOpened };
  return {
    opened,
    /** Tells the streams the final availability of each event and when the load ended; waits until they show it. */
    async settle(since: number): Promise<StreamsSettled> {
      const final: Record<string, number> = {};
      for (const { id } of events)
        final[id] = (await api<{ available: number }>(target, 'GET', `/events/${id}`)).json.available;
      child.send({ final, since } satisfies ParentMessage);
      return ((await next()) as { settled: StreamsSettled }).settled;
    },
    async stop(): Promise<void> {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ stop: true } satisfies ParentMessage);
      await exited;
    },
  };
}

/** One window of load at the server (closed loop when `rate` is null), then its books check. */
async function measureWindow(
  server: Server,
  round: Round,
  rate: OpenRate | null,
  streamCount = 0,
): Promise<Measurement> {
  const { target, database } = server;
  const subject =
    streamCount === 0
      ? server.subject
      : { ...server.subject, target: server.subject.target.replace(/(@|$)/, `+${streamCount}sse$1`) };
  const events = await hotEvents(server);
  const busyBefore = await quiet();
  const shape = loadShape(round.conns, server.features);
  const listeners = streamCount === 0 ? undefined : await openStreams(target, events, streamCount);
  let stop: ReturnType<typeof startWindow> | undefined;
  let ended: Pick<Window, 'usage' | 'cpu' | 'window' | 'serverStats' | 'streams'> | undefined;
  const outcome = await runScenario(
    target,
    events,
    rate === null ? shape : { ...shape, open: openArrivals(rate, round.conns) },
    {
      // After the bookings scenario's holds are made, so only the measured load counts.
      started: async () => {
        if (target.benchRoutes) await api(target, 'POST', '/__bench/stats/reset');
        stop = startWindow(subject, database);
      },
      // Before the books check, so neither its statements nor its CPU count.
      finished: async (load) => {
        const loadEnded = Date.now();
        const window = stop!(load);
        const serverStats = target.benchRoutes ? (await api<ServerStats>(target, 'GET', '/__bench/stats')).json : null;
        const streams =
          listeners === undefined
            ? null
            : {
                count: streamCount,
                scope: options.streamScope === 'all' ? 'GET /stream' : 'the hot event',
                ...listeners.opened,
                ...(await listeners.settle(loadEnded)),
              };
        await listeners?.stop();
        ended = { ...window, serverStats, streams };
      },
    },
  );
  const w: Window = { rate, busyBefore, load: outcome.load, openLoop: outcome.openLoop, outcome, ...ended! };
  const m = toMeasurement(subject, round, w);
  round.record(m);
  return m;
}

/** The server's environment: the fresh database, the bench's settings, then the tree's --tree-env. */
function serverEnv(database: Record<string, string>, tree: Tree, adminToken: string): Record<string, string> {
  const env: Record<string, string> = {
    ...database,
    NODE_ENV: 'production',
    ADMIN_TOKEN: adminToken,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: options.logLevel,
    HOLD_TTL_SECONDS: String(BENCH_HOLD_TTL_SECONDS),
    RATE_LIMIT_HOLDS_PER_MINUTE: String(options.rateLimitPerMinute),
    RATE_LIMIT_BOOK_PER_MINUTE: String(options.rateLimitPerMinute),
  };
  if (options.poolSize !== undefined) env.DATABASE_POOL_SIZE = String(options.poolSize);
  if (options.batchMax !== undefined) env.HOLD_BATCH_MAX = String(options.batchMax);
  if (featuresOf(tree.label)) {
    env.ADMISSION_SECRET = BENCH_ADMISSION_SECRET;
    env.WEBHOOK_ALLOW_PRIVATE_URLS = 'true';
  }
  return { ...env, ...options.treeEnv[tree.label] };
}

/** Starts a tree's server: its bench/server.ts through tsx, or its compiled `box-office serve`. */
async function startServer(tree: Tree, env: Record<string, string>, label: string, nodeArgs: string[]) {
  if (tree.mode === 'bench')
    return startChild({ script: 'bench/server.ts', cwd: tree.dir, env, label, logDir: LOG_DIR, nodeArgs });
  // The compiled service reports nothing over IPC: it gets a port and is probed until ready.
  mkdirSync(SCRATCH_DIR, { recursive: true });
  const port = await freePort();
  return startChild({
    args: [join(tree.dir, 'bin', 'box-office.js'), 'serve'],
    cwd: SCRATCH_DIR,
    env: { ...env, PORT: String(port) },
    label,
    logDir: LOG_DIR,
    nodeArgs,
    http: { port, path: '/readyz' },
  });
}

interface ServerRun {
  provider: DatabaseProvider;
  /** The database server's CPU probe, when it runs apart from the server (not PGlite). */
  database: DatabaseCpuProbe | null;
  tree: Tree;
  round: Round;
}

/** Starts the box office from a tree on a fresh database, measures it, and stops it. */
async function measureServer({ provider, database, tree, round }: ServerRun): Promise<void> {
  const fresh = await provider.fresh(migrateCommand(tree, SCRATCH_DIR));
  const adminToken = randomBytes(18).toString('base64url');
  const label = `${provider.backend}${comparing ? `-${tree.label}` : ''}-c${round.conns}-r${round.repeat}`;
  const profileDir = join(PROFILE_DIR, label);
  let measured: Measurement[] = [];
  try {
    const child = await startServer(tree, serverEnv(fresh.env, tree, adminToken), label, profileArgs(profileDir));
    try {
      const server: Server = {
        target: { host: '127.0.0.1', port: child.port, adminToken, benchRoutes: tree.mode === 'bench' },
        subject: {
          target: comparing ? `batched@${tree.label}` : 'batched',
          strategy: 'batched',
          tree: comparing ? tree.label : null,
          pid: child.pid,
        },
        database,
        customerLimit: customerLimitOf(tree.label),
        features: featuresOf(tree.label),
      };
      if (server.features) {
        const hook = await api(server.target, 'POST', '/webhooks', { url: (await webhookReceiver()).url });
        if (hook.status !== 201)
          throw new Error(`POST /webhooks answered ${hook.status}: ${JSON.stringify(hook.json)}`);
      }
      measured = await measureTarget(server, round);
      if (server.features) {
        const { requests, bytes } = await webhookReceiver();
        progress(`  webhook receiver so far: ${requests} requests, ${(bytes / 1e6).toFixed(1)} MB`);
      }
    } finally {
      await child.stop();
    }
  } finally {
    await fresh.drop();
  }
  if (options.cpuProf) attachProfiles(profileDir, measured);
}

/** After a profiled server exited: its top self time in each measured window. */
function attachProfiles(dir: string, measured: Measurement[]): void {
  // One profile per thread (the main thread, and tsx's loader-hooks thread): summed.
  const files = profilesIn(dir);
  if (files.length === 0) {
    progress(`  no CPU profile in ${dir}`);
    return;
  }
  const windows: Windows = {};
  for (const m of measured) {
    const name = m.mode === 'open' ? `open ${m.rate}` : 'closed';
    windows[name] = m.window;
    const summary = summarizeProfile(files, { window: m.window, top: 12 });
    const busyMs = summary.sampledMs - summary.idleMs;
    m.profile = { dir, busyMs, top: summary.top };
    const top = summary.top
      .slice(0, 10)
      .map((e) => `${e.name} ${(e.share * 100).toFixed(1)}%`)
      .join(', ');
    progress(`  profile ${m.target} ${name} (${busyMs.toFixed(0)} ms busy in the window): ${top}`);
  }
  writeFileSync(join(dir, WINDOWS_FILE), `${JSON.stringify(windows, null, 2)}\n`);
  progress(`    tsx bench/profile-summary.ts ${dir} [--by file|function]`);
}

/** Where the servers keep their data: --backend's provider, and each --tree-backend tree's. */
interface Databases {
  /** Undefined with --url. */
  provider: DatabaseProvider | undefined;
  probe: DatabaseCpuProbe | null;
  version: string;
  where: string;
  perTree: Map<string, DatabaseProvider>;
}

async function openDatabases(): Promise<Databases> {
  const provider =
    options.url === undefined ? await openProvider(options.backend, process.env.DATABASE_URL) : undefined;
  const perTree = new Map<string, DatabaseProvider>();
  try {
    for (const [label, backend] of Object.entries(options.treeBackend))
      perTree.set(label, await openProvider(backend, undefined));
  } catch (error) {
    await closeDatabases({ provider, perTree });
    throw error;
  }
  return {
    provider,
    probe: provider === undefined ? null : await provider.cpuProbe(),
    version: provider === undefined ? 'unknown' : await provider.version(),
    where: options.url?.toString() ?? provider!.description,
    perTree,
  };
}

async function closeDatabases(databases: Pick<Databases, 'provider' | 'perTree'>): Promise<void> {
  await databases.provider?.close();
  for (const own of databases.perTree.values()) await own.close();
}

function describeRun(databases: Databases): void {
  progress(
    `bench: ${options.scenario} on ${databases.where} (${databases.version}); ${cpus().length} CPUs shared by the load ` +
      `generator, the servers and the database; ${options.durationSeconds} s per measurement after ${options.warmupSeconds} s warm-up`,
  );
  progress(
    `  database CPU: ${databases.probe?.description ?? 'not measured (PGlite runs in the server; or not on this machine)'}`,
  );
  if (options.url !== undefined) return;
  for (const tree of trees) {
    const how = tree.mode === 'bench' ? 'bench/server.ts' : 'compiled bin/box-office.js serve';
    const own = databases.perTree.get(tree.label);
    const env = Object.entries(options.treeEnv[tree.label] ?? {}).map(([key, value]) => `; ${key}=${value}`);
    progress(
      `  tree ${tree.label}: ${tree.dir} (${how}; commit ${tree.commit.slice(0, 12)}${tree.srcDirty ? ', src/ modified' : ''}` +
        `${own === undefined ? '' : `; on ${own.description}`}${env.join('')})`,
    );
  }
}

/** Round r measures the trees starting from the r-th, so no tree always goes first. */
const rotate = <T>(items: T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]!);

/** One round: the ceiling, then the --url server or every tree in this round's order. */
async function measureRound(databases: Databases, round: Round): Promise<void> {
  progress(`[${round.conns} conns, run ${round.repeat}/${options.repeat}]`);
  if (options.ceiling) round.ceilingRate = await measureCeiling(round);
  if (options.url !== undefined) {
    const target = {
      host: options.url.hostname,
      port: Number(options.url.port || 80),
      adminToken: options.adminToken,
      benchRoutes: false,
    };
    const subject: Subject = { target: 'url', strategy: 'url', tree: null, pid: undefined };
    await measureTarget({ target, subject, database: null, customerLimit: customerLimitOf('') }, round);
    return;
  }
  for (const tree of rotate(trees, round.repeat - 1)) {
    const own = databases.perTree.get(tree.label);
    await measureServer({
      provider: own ?? databases.provider!,
      database: own === undefined ? databases.probe : null,
      tree,
      round,
    });
  }
}

function report(measurements: Measurement[], databases: Databases): void {
  const results = {
    generatedAt: new Date().toISOString(),
    options: { ...options, url: options.url?.toString(), adminToken: undefined },
    environment: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      database: databases.version,
      databaseCpu: databases.probe?.description ?? null,
      where: databases.where,
      code: codeVersion('.'),
      trees,
    },
    measurements,
    summary: summarize(measurements, options.scenario),
    openLoopSummary: summarizeOpenLoop(measurements),
  };
  if (options.out !== undefined) writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  if (options.json) console.log(JSON.stringify(results, null, 2));
  else
    console.log(
      formatSummary(measurements, options.scenario, options.repeat, comparing ? trees.map((t) => t.label) : []),
    );
  const failed = measurements.filter((m) => m.books !== null && !m.books.ok);
  if (failed.length > 0) {
    console.error(`bench: the books did not balance in ${failed.length} measurement(s)`);
    process.exitCode = 1;
  }
}

/** --scenario queue: bench/queue.ts's rounds on this checkout, each on a fresh database. */
async function queueMain(databases: Databases): Promise<void> {
  const tree = trees[0]!;
  const provider = databases.provider!;
  const withProfile = (label: string) => {
    const dir = join(PROFILE_DIR, label);
    if (options.cpuProf) progress(`  profile: ${dir} (tsx bench/profile-summary.ts ${dir})`);
    return profileArgs(dir);
  };
  const rounds = await runQueueBench({
    conns: options.conns[0]!,
    durationSeconds: options.durationSeconds,
    warmupSeconds: options.warmupSeconds,
    graceSeconds: options.graceSeconds,
    repeat: options.repeat,
    streams: options.queueStreams,
    database: databases.probe,
    admissionToken,
    quiet,
    progress,
    async withBox(label, use) {
      const fresh = await provider.fresh(migrateCommand(tree, SCRATCH_DIR));
      const adminToken = randomBytes(18).toString('base64url');
      // The queue signs with the bench's secret, so the bench's own tokens pass as its would.
      const env = { ...serverEnv(fresh.env, tree, adminToken), ADMISSION_SECRET: BENCH_ADMISSION_SECRET };
      try {
        const child = await startServer(tree, env, label, withProfile(label));
        try {
          const box: QueueBox = {
            target: { host: '127.0.0.1', port: child.port, adminToken, benchRoutes: true },
            pid: child.pid,
            databaseUrl: fresh.env.DATABASE_URL!,
          };
          return await use(box);
        } finally {
          await child.stop();
        }
      } finally {
        await fresh.drop();
      }
    },
    async withCeiling(label, use) {
      const child = await startChild({
        script: 'bench/ceiling.ts',
        env: {},
        label,
        logDir: LOG_DIR,
        nodeArgs: withProfile(label),
      });
      try {
        return await use(child);
      } finally {
        await child.stop();
      }
    },
  });
  const results = {
    generatedAt: new Date().toISOString(),
    options: { ...options, url: undefined, adminToken: undefined },
    environment: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      database: databases.version,
      where: databases.where,
      code: codeVersion('.'),
    },
    rounds,
    summary: summarizeQueue(rounds),
  };
  if (options.out !== undefined) writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(options.json ? JSON.stringify(results, null, 2) : formatQueue(rounds));
}

async function main(): Promise<void> {
  const databases = await openDatabases();
  if (options.queue) {
    describeRun(databases);
    try {
      await queueMain(databases);
    } finally {
      await closeDatabases(databases);
    }
    return;
  }
  const measurements: Measurement[] = [];
  const record = (m: Measurement) => {
    measurements.push(m);
    progress(formatMeasurement(m));
  };
  describeRun(databases);
  try {
    for (const conns of options.conns) {
      for (let repeat = 1; repeat <= options.repeat; repeat++)
        await measureRound(databases, { conns, repeat, ceilingRate: null, record });
    }
  } finally {
    await closeDatabases(databases);
  }
  report(measurements, databases);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}
main().catch((error: unknown) => {
  console.error('bench: failed:', error);
  killAllChildren();
  process.exit(1);
});
