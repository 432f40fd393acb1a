// `npm run bench`: drives concurrent HTTP load at the box office and at a canned-reply Fastify
// server (the HTTP ceiling) in the same run, checks the books, and prints throughput, latency,
// server memory, where the CPU went and the ratios between the approaches. Optionally also an
// open-loop latency curve (--open-loop) and several checkouts side by side (--tree, --compare).
// See docs/performance.md and `npm run bench -- --help`.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/support/throwaway-postgres.ts';
import type { Strategy } from './baselines.ts';
import { type CpuSplit, type DatabaseCpuProbe, cpuWindow } from './cpu.ts';
import { type DatabaseProvider, openProvider } from './databases.ts';
import { type LoadResult, type OpenLoopResult, httpRequest, runLoad, runOpenLoop } from './load.ts';
import { type Options, type RateSpec, USAGE, parseOptions } from './options.ts';
import { type Child, killAllChildren, readMemory, startChild, waitForQuiet, watch } from './processes.ts';
import { WINDOWS_FILE, type Windows, profilesIn, summarizeProfile } from './profile-summary.ts';
import {
  type Measurement,
  type ServerStats,
  formatMeasurement,
  formatSummary,
  summarize,
  summarizeOpenLoop,
} from './report.ts';
import {
  type HotEvent,
  type OpenArrivals,
  type ScenarioOutcome,
  type Target,
  api,
  createEvent,
  runScenario,
} from './scenarios.ts';
import { type Tree, codeVersion, migrateCommand, resolveTrees } from './trees.ts';

const LOG_DIR = resolve('.bench/logs');
const PROFILE_DIR = resolve('.bench/profiles');
/** Working directory of compiled servers: no .env there, so only the bench's settings apply. */
const SCRATCH_DIR = resolve('.bench/run');
/** Seats per event unless --seats: the API's maximum, more than a run here can hold. */
const ROOMY_SEATS = 1_000_000;
/** Holds outlive every run, so nothing lapses mid-measurement (the baselines do not reclaim). */
const BENCH_HOLD_TTL_SECONDS = 3600;

let options: Options;
let trees: Tree[];
try {
  options = parseOptions(process.argv.slice(2), process.env);
  trees = resolveTrees([
    ...options.compare,
    ...(options.self ? [{ label: options.selfLabel, dir: '.', self: true }] : []),
    ...options.trees,
  ]);
  for (const label of [...Object.keys(options.treeEnv), ...Object.keys(options.treeBackend)]) {
    if (!trees.some((tree) => tree.label === label))
      throw new Error(`--tree-env ${label}: no tree is labelled ${label} (${trees.map((t) => t.label).join(', ')})`);
  }
} catch (error) {
  console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
/** Targets carry the tree's label only when trees are compared. */
const comparing = trees.length > 1;
const progress = (line: string) => process.stderr.write(`${line}\n`);
const non2xx = (statuses: Record<string, number>) =>
  Object.fromEntries(Object.entries(statuses).filter(([code]) => !code.startsWith('2')));
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const quiet = () =>
  options.quietWaitSeconds > 0 ? waitForQuiet(options.quietWaitSeconds * 1000) : Promise.resolve(Number.NaN);

/** Who is measured: the target's name in the report, and the server process. */
interface Subject {
  target: string;
  strategy: string;
  tree: string | null;
  pid: number | undefined;
}

/** One measured window: the load, then what the processes did meanwhile. */
interface Window {
  load: LoadResult;
  openLoop: OpenLoopResult | null;
  outcome: Omit<ScenarioOutcome, 'load' | 'openLoop'> | null;
  usage: ReturnType<ReturnType<typeof watch>['stop']>;
  cpu: CpuSplit;
  serverStats: ServerStats | null;
  window: { startUs: number; endUs: number };
}

/** What counts as one unit of work for CPU per unit: the headline figure's. */
function unitsOf(load: LoadResult, strategy: string): { unit: string; units: number } {
  if (strategy === 'ceiling') return { unit: 'request', units: load.completed };
  if (options.scenario === 'holds') return { unit: 'hold', units: load.statuses['201'] ?? 0 };
  if (options.scenario === 'bookings') return { unit: 'booking', units: load.statuses['201'] ?? 0 };
  return { unit: 'request', units: load.completed };
}

/** Starts the RSS and CPU watches and the profile window; `stop` ends them all. */
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

function toMeasurement(
  subject: Subject,
  conns: number,
  preload: number,
  repeat: number,
  rate: { spec: RateSpec; ceilingRate: number | null } | null,
  w: Window,
  preloadSeconds: number | null,
  busyBefore: number,
): Measurement {
  const { load, outcome, usage } = w;
  const seconds = load.elapsedMs / 1000;
  const hwm = subject.pid === undefined ? null : readMemory(subject.pid);
  const o = w.openLoop;
  return {
    target: subject.target,
    strategy: subject.strategy,
    tree: subject.tree,
    mode: o === null ? 'closed' : 'open',
    rate: rate?.spec.label ?? null,
    conns,
    preload,
    repeat,
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
    machineBusyBefore: busyBefore,
    books: outcome?.books ?? null,
    preloadSeconds,
    serverStats: w.serverStats,
    cpu: w.cpu,
    openLoop:
      o === null
        ? null
        : {
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
          },
    window: w.window,
    profile: null,
  };
}

/** The absolute rate of an --open-loop spec in this round. */
function resolveRate(spec: RateSpec, ceilingRate: number | null): number {
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
const openArrivals = (ratePerSecond: number, conns: number): OpenArrivals => ({
  ratePerSecond,
  arrivals: options.arrivals,
  initialConnections: Math.min(conns, options.openLoopConns),
  maxConnections: Math.max(conns, options.openLoopConns),
});

/** The canned-reply server under the same load as the box office; open-loop too when asked. */
async function measureCeiling(conns: number, repeat: number, record: (m: Measurement) => void): Promise<number> {
  const label = `ceiling-c${conns}-r${repeat}`;
  const profileDir = join(PROFILE_DIR, label);
  const nodeArgs = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const busyBefore = await quiet();
  const child = await startChild({ script: 'bench/ceiling.ts', env: {}, label, logDir: LOG_DIR, nodeArgs });
  const subject: Subject = { target: 'ceiling', strategy: 'ceiling', tree: null, pid: child.pid };
  const measured: Measurement[] = [];
  let ceilingRate = Number.NaN;
  try {
    const host = `127.0.0.1:${child.port}`;
    const request = httpRequest('POST', '/holds', host, JSON.stringify({ hold: { event_id: 1, qty: options.qty } }));
    const plan = {
      host: '127.0.0.1',
      port: child.port,
      graceMs: options.graceSeconds * 1000,
      next: () => request,
      prime: httpRequest('GET', '/healthz', host),
    };
    if (options.warmupSeconds > 0)
      await runLoad({ ...plan, connections: conns, durationMs: options.warmupSeconds * 1000 });
    const measure = async (run: () => Promise<LoadResult>, openLoop: boolean) => {
      const stop = startWindow(subject, null);
      const load = await run();
      return {
        load,
        openLoop: openLoop ? (load as OpenLoopResult) : null,
        outcome: null,
        serverStats: null,
        ...stop(load),
      };
    };
    const closed = await measure(
      () => runLoad({ ...plan, connections: conns, durationMs: options.durationSeconds * 1000 }),
      false,
    );
    const m = toMeasurement(subject, conns, 0, repeat, null, closed, null, busyBefore);
    ceilingRate = m.requestsPerSecond;
    measured.push(m);
    record(m);
    if (options.openLoopCeiling) {
      for (const spec of options.openLoop) {
        const basis = options.ceilingRate ?? ceilingRate;
        const rate = resolveRate(spec, basis);
        const before = await quiet();
        const w = await measure(
          () => runOpenLoop({ ...plan, ...openArrivals(rate, conns), durationMs: options.durationSeconds * 1000 }),
          true,
        );
        const open = toMeasurement(subject, conns, 0, repeat, { spec, ceilingRate: basis }, w, null, before);
        measured.push(open);
        record(open);
      }
    }
  } finally {
    await child.stop();
  }
  if (options.profile) attachProfiles(profileDir, measured);
  return ceilingRate;
}

/** Creates an event (and stores the preload in it). */
async function hotEvents(
  target: Target,
  preload: number,
): Promise<{ events: HotEvent[]; preloadSeconds: number | null }> {
  const seats = options.seats ?? ROOMY_SEATS;
  const events: HotEvent[] = [];
  let preloadSeconds: number | null = null;
  if (options.eventId !== undefined) {
    // An existing event (e.g. one bench/streams.ts listens to): what it holds now is "before".
    const { status, json } = await api<{ total: number; held: number; booked: number }>(
      target,
      'GET',
      `/events/${options.eventId}`,
    );
    if (status !== 200) throw new Error(`GET /events/${options.eventId} answered ${status}`);
    return {
      events: [{ id: options.eventId, total: json.total, heldBefore: json.held, bookedBefore: json.booked }],
      preloadSeconds: null,
    };
  }
  for (let k = 0; k < options.events; k++) {
    const id = await createEvent(target, `bench hot event ${k + 1}`, seats);
    const event: HotEvent = { id, total: seats, heldBefore: 0, bookedBefore: 0 };
    if (preload > 0) {
      if (!target.benchRoutes) throw new Error('--preload needs a server with the /__bench routes (bench/server.ts)');
      const { status, json } = await api<{ active: number; booked: number; seconds: number }>(
        target,
        'POST',
        '/__bench/preload',
        { event_id: id, count: preload, mix: options.preloadMix },
      );
      if (status !== 200) throw new Error(`preload answered ${status}: ${JSON.stringify(json)}`);
      if (options.preloadMix !== 'other') {
        Object.assign(event, {
          heldBefore: json.active,
          bookedBefore: json.booked,
          total: seats + json.active + json.booked,
        });
      }
      preloadSeconds = (preloadSeconds ?? 0) + json.seconds;
    }
    events.push(event);
  }
  return { events, preloadSeconds };
}

/**
 * Warms the server up on an event of its own, then measures it: closed-loop (unless
 * --no-closed-loop), then at each --open-loop rate, each on fresh events, each followed by the
 * books check.
 */
async function measureTarget(
  target: Target,
  subject: Subject,
  database: DatabaseCpuProbe | null,
  conns: number,
  preload: number,
  repeat: number,
  ceilingRate: number | null,
  record: (m: Measurement) => void,
): Promise<Measurement[]> {
  const shape = {
    scenario: options.scenario,
    connections: conns,
    graceMs: options.graceSeconds * 1000,
    qty: options.qty,
    durationMs: options.durationSeconds * 1000,
  };
  if (options.warmupSeconds > 0) {
    const warm = await createEvent(target, 'bench warm-up', ROOMY_SEATS);
    const outcome = await runScenario(target, [{ id: warm, total: ROOMY_SEATS, heldBefore: 0, bookedBefore: 0 }], {
      ...shape,
      durationMs: options.warmupSeconds * 1000,
    });
    if (!outcome.books.ok) progress(`  warm-up books: ${outcome.books.problems.join('; ')}`);
  }
  const runs: Array<{ spec: RateSpec; ceilingRate: number | null } | null> = [
    ...(options.closedLoop ? [null] : []),
    ...options.openLoop.map((spec) => ({ spec, ceilingRate })),
  ];
  const measured: Measurement[] = [];
  for (const rate of runs) {
    const { events, preloadSeconds } = await hotEvents(target, preload);
    const busyBefore = await quiet();
    let stop: ReturnType<typeof startWindow> | undefined;
    let ended: (ReturnType<ReturnType<typeof startWindow>> & { serverStats: ServerStats | null }) | undefined;
    const outcome = await runScenario(
      target,
      events,
      rate === null ? shape : { ...shape, open: openArrivals(resolveRate(rate.spec, rate.ceilingRate), conns) },
      {
        // After the bookings scenario's holds are made, so only the measured load counts.
        started: async () => {
          if (target.benchRoutes) await api(target, 'POST', '/__bench/stats/reset');
          stop = startWindow(subject, database);
        },
        // Before the books check, so neither its statements nor its CPU count.
        finished: async (load) => {
          const window = stop!(load);
          const serverStats = target.benchRoutes
            ? (await api<ServerStats>(target, 'GET', '/__bench/stats')).json
            : null;
          ended = { ...window, serverStats };
        },
      },
    );
    const m = toMeasurement(
      subject,
      conns,
      preload,
      repeat,
      rate,
      { load: outcome.load, openLoop: outcome.openLoop, outcome, ...ended! },
      preloadSeconds,
      busyBefore,
    );
    measured.push(m);
    record(m);
  }
  return measured;
}

/** Starts the box office from a tree on a fresh database with one hold strategy and measures it. */
async function measureServer(
  provider: DatabaseProvider,
  database: DatabaseCpuProbe | null,
  tree: Tree,
  strategy: Strategy,
  conns: number,
  preload: number,
  repeat: number,
  ceilingRate: number | null,
  record: (m: Measurement) => void,
): Promise<void> {
  const fresh = await provider.fresh(migrateCommand(tree, SCRATCH_DIR));
  const adminToken = randomBytes(18).toString('base64url');
  const label = `${provider.backend}-${strategy}${comparing ? `-${tree.label}` : ''}-c${conns}-p${preload}-r${repeat}`;
  const profileDir = join(PROFILE_DIR, label);
  let measured: Measurement[] = [];
  try {
    const env: Record<string, string> = {
      ...fresh.env,
      NODE_ENV: 'production',
      ADMIN_TOKEN: adminToken,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: options.logLevel,
      HOLD_TTL_SECONDS: String(BENCH_HOLD_TTL_SECONDS),
      BENCH_STRATEGY: strategy,
      RATE_LIMIT_HOLDS_PER_MINUTE: String(options.rateLimitPerMinute),
      RATE_LIMIT_BOOK_PER_MINUTE: String(options.rateLimitPerMinute),
    };
    if (options.poolSize !== undefined) env.DATABASE_POOL_SIZE = String(options.poolSize);
    if (options.batchMax !== undefined) env.HOLD_BATCH_MAX = String(options.batchMax);
    Object.assign(env, options.treeEnv[tree.label] ?? {});
    const nodeArgs = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    let child: Child;
    if (tree.mode === 'bench') {
      child = await startChild({ script: 'bench/server.ts', cwd: tree.dir, env, label, logDir: LOG_DIR, nodeArgs });
    } else {
      // The compiled service reports nothing over IPC: it gets a port and is probed until ready.
      mkdirSync(SCRATCH_DIR, { recursive: true });
      const port = await freePort();
      child = await startChild({
        args: [join(tree.dir, 'bin', 'box-office.js'), 'serve'],
        cwd: SCRATCH_DIR,
        env: { ...env, PORT: String(port) },
        label,
        logDir: LOG_DIR,
        nodeArgs,
        http: { port, path: '/readyz' },
      });
    }
    const subject: Subject = {
      target: comparing ? `${strategy}@${tree.label}` : strategy,
      strategy,
      tree: comparing ? tree.label : null,
      pid: child.pid,
    };
    try {
      measured = await measureTarget(
        { host: '127.0.0.1', port: child.port, adminToken, benchRoutes: tree.mode === 'bench' },
        subject,
        database,
        conns,
        preload,
        repeat,
        ceilingRate,
        record,
      );
    } finally {
      await child.stop();
    }
  } finally {
    await fresh.drop();
  }
  if (options.profile) attachProfiles(profileDir, measured);
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

/** Round r measures the trees starting from the r-th, so no tree always goes first. */
const rotate = <T>(items: T[], by: number): T[] => items.map((_, i) => items[(i + by) % items.length]!);

async function main(): Promise<void> {
  const provider =
    options.url === undefined ? await openProvider(options.backend, process.env.DATABASE_URL) : undefined;
  const measurements: Measurement[] = [];
  const where = options.url?.toString() ?? provider!.description;
  const databaseVersion = provider === undefined ? 'unknown' : await provider.version();
  const database = provider === undefined ? null : await provider.cpuProbe();
  progress(
    `bench: ${options.scenario} on ${where} (${databaseVersion}); ${cpus().length} CPUs shared by the load ` +
      `generator, the servers and the database; ${options.durationSeconds} s per measurement after ${options.warmupSeconds} s warm-up`,
  );
  progress(
    `  database CPU: ${database?.description ?? 'not measured (PGlite runs in the server; or not on this machine)'}`,
  );
  // Trees served on another backend than --backend (--tree-backend): PGlite, in the server.
  const treeProviders = new Map<string, DatabaseProvider>();
  for (const [label, backend] of Object.entries(options.treeBackend)) {
    treeProviders.set(label, await openProvider(backend, undefined));
  }
  if (options.url === undefined) {
    for (const tree of trees)
      progress(
        `  tree ${tree.label}: ${tree.dir} (${tree.mode === 'bench' ? 'bench/server.ts' : 'compiled bin/box-office.js serve'}; ` +
          `commit ${tree.commit.slice(0, 12)}${tree.srcDirty ? ', src/ modified' : ''}` +
          `${treeProviders.has(tree.label) ? `; on ${treeProviders.get(tree.label)!.description}` : ''}` +
          `${Object.entries(options.treeEnv[tree.label] ?? {})
            .map(([key, value]) => `; ${key}=${value}`)
            .join('')})`,
      );
  }
  const skipped = new Set<string>();
  try {
    for (const conns of options.conns) {
      const ceilingRates = new Map<number, number>();
      for (const preload of options.preload) {
        for (let repeat = 1; repeat <= options.repeat; repeat++) {
          progress(`[${conns} conns, ${preload} stored, run ${repeat}/${options.repeat}]`);
          const record = (m: Measurement) => {
            measurements.push(m);
            progress(formatMeasurement(m));
          };
          if (options.ceiling && preload === options.preload[0]) {
            ceilingRates.set(repeat, await measureCeiling(conns, repeat, record));
          }
          const ceilingRate = options.ceilingRate ?? ceilingRates.get(repeat) ?? null;
          if (options.url !== undefined) {
            const target = {
              host: options.url.hostname,
              port: Number(options.url.port || 80),
              adminToken: options.adminToken,
              benchRoutes: false,
            };
            const subject: Subject = { target: 'url', strategy: 'url', tree: null, pid: options.serverPid };
            await measureTarget(target, subject, null, conns, preload, repeat, ceilingRate, record);
          } else {
            for (const strategy of options.strategies) {
              for (const tree of rotate(trees, repeat - 1)) {
                if (tree.mode === 'compiled' && strategy !== 'batched') {
                  if (!skipped.has(`${tree.label}/${strategy}`))
                    progress(`  ${tree.label}: compiled tree, no ${strategy} baseline; skipped`);
                  skipped.add(`${tree.label}/${strategy}`);
                  continue;
                }
                const own = treeProviders.get(tree.label);
                await measureServer(
                  own ?? provider!,
                  own === undefined ? database : null,
                  tree,
                  strategy,
                  conns,
                  preload,
                  repeat,
                  ceilingRate,
                  record,
                );
              }
            }
          }
        }
      }
    }
  } finally {
    await provider?.close();
    for (const own of treeProviders.values()) await own.close();
  }
  const results = {
    generatedAt: new Date().toISOString(),
    options: { ...options, url: options.url?.toString(), adminToken: undefined },
    environment: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      database: databaseVersion,
      databaseCpu: database?.description ?? null,
      where,
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
