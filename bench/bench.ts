// `npm run bench`: drives concurrent HTTP load at the box office and at a canned-reply Fastify
// server (the HTTP ceiling) in the same run, checks the books, and prints throughput, latency,
// server memory and the ratios between the approaches. See docs/performance.md.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import type { Strategy } from './baselines.ts';
import { type DatabaseProvider, openProvider } from './databases.ts';
import { type LoadResult, httpRequest, runLoad } from './load.ts';
import { type Options, USAGE, parseOptions } from './options.ts';
import { type Child, killAllChildren, readMemory, startChild, waitForQuiet, watch } from './processes.ts';
import { type Measurement, type ServerStats, formatMeasurement, formatSummary, summarize } from './report.ts';
import { type HotEvent, type ScenarioOutcome, type Target, api, createEvent, runScenario } from './scenarios.ts';

const LOG_DIR = '.bench/logs';
/** Seats per event unless --seats: the API's maximum, more than a run here can hold. */
const ROOMY_SEATS = 1_000_000;
/** Holds outlive every run, so nothing lapses mid-measurement (the baselines do not reclaim). */
const BENCH_HOLD_TTL_SECONDS = 3600;

let options: Options;
try {
  options = parseOptions(process.argv.slice(2), process.env);
} catch (error) {
  console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const progress = (line: string) => process.stderr.write(`${line}\n`);
const non2xx = (statuses: Record<string, number>) =>
  Object.fromEntries(Object.entries(statuses).filter(([code]) => !code.startsWith('2')));

function toMeasurement(
  target: string,
  conns: number,
  preload: number,
  repeat: number,
  load: LoadResult,
  outcome: Omit<ScenarioOutcome, 'load'> | null,
  usage: ReturnType<ReturnType<typeof watch>['stop']>,
  pid: number | undefined,
  preloadSeconds: number | null,
): Measurement {
  const seconds = load.elapsedMs / 1000;
  const hwm = pid === undefined ? null : readMemory(pid);
  return {
    target,
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
    maxMs: load.latency.maxMs,
    latencyByKind: Object.fromEntries(
      Object.entries(load.latencyByKind).map(([kind, s]) => [kind, { p50Ms: s.p50Ms, p99Ms: s.p99Ms, count: s.count }]),
    ),
    non2xx: non2xx(load.statuses),
    errors: load.errors,
    unknownOutcome: load.unknownOutcome,
    rssPeakMb: pid === undefined ? null : usage.peakRssKb / 1024,
    rssHwmMb: hwm === null ? null : hwm.hwmKb / 1024,
    serverCpuCores: pid === undefined ? null : usage.serverCpuMs / load.elapsedMs,
    loadgenCpuCores: load.cpuMs / load.elapsedMs,
    machineBusy: usage.machineBusy,
    machineBusyBefore: 0,
    books: outcome?.books ?? null,
    preloadSeconds,
    serverStats: null,
  };
}

/** The canned-reply server under the same load as the box office. */
async function measureCeiling(conns: number, repeat: number): Promise<Measurement> {
  const child = await startChild({ script: 'bench/ceiling.ts', env: {}, label: 'ceiling', logDir: LOG_DIR });
  try {
    const host = `127.0.0.1:${child.port}`;
    const request = httpRequest('POST', '/holds', host, JSON.stringify({ hold: { event_id: 1, qty: options.qty } }));
    const plan = {
      host: '127.0.0.1',
      port: child.port,
      connections: conns,
      graceMs: options.graceSeconds * 1000,
      next: () => request,
    };
    if (options.warmupSeconds > 0) await runLoad({ ...plan, durationMs: options.warmupSeconds * 1000 });
    const watching = watch(child.pid);
    const load = await runLoad({ ...plan, durationMs: options.durationSeconds * 1000 });
    return toMeasurement('ceiling', conns, 0, repeat, load, null, watching.stop(), child.pid, null);
  } finally {
    await child.stop();
  }
}

/** Creates the events, stores the preload, warms up, then measures one scenario. */
async function measureTarget(
  target: Target,
  label: string,
  child: Child | undefined,
  conns: number,
  preload: number,
  repeat: number,
): Promise<Measurement> {
  const seats = options.seats ?? ROOMY_SEATS;
  const shape = {
    scenario: options.scenario,
    connections: conns,
    graceMs: options.graceSeconds * 1000,
    qty: options.qty,
  };
  const hot: HotEvent[] = [];
  let preloadSeconds: number | null = null;
  for (let k = 0; k < options.events; k++) {
    const id = await createEvent(target, `bench hot event ${k + 1}`, seats);
    const event: HotEvent = { id, total: seats, heldBefore: 0, bookedBefore: 0 };
    if (preload > 0) {
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
    hot.push(event);
  }
  if (options.warmupSeconds > 0) {
    const warm = await createEvent(target, 'bench warm-up', ROOMY_SEATS);
    const outcome = await runScenario(target, [{ id: warm, total: ROOMY_SEATS, heldBefore: 0, bookedBefore: 0 }], {
      ...shape,
      durationMs: options.warmupSeconds * 1000,
    });
    if (!outcome.books.ok) progress(`  warm-up books: ${outcome.books.problems.join('; ')}`);
  }
  if (target.benchRoutes) await api(target, 'POST', '/__bench/stats/reset');
  const watching = watch(child?.pid);
  const outcome = await runScenario(target, hot, { ...shape, durationMs: options.durationSeconds * 1000 });
  const usage = watching.stop();
  const measurement = toMeasurement(
    label,
    conns,
    preload,
    repeat,
    outcome.load,
    outcome,
    usage,
    child?.pid,
    preloadSeconds,
  );
  if (target.benchRoutes) measurement.serverStats = (await api<ServerStats>(target, 'GET', '/__bench/stats')).json;
  return measurement;
}

/** Starts the box office on a fresh database with one hold strategy and measures it. */
async function measureStrategy(
  provider: DatabaseProvider,
  strategy: Strategy,
  conns: number,
  preload: number,
  repeat: number,
): Promise<Measurement> {
  const database = await provider.fresh();
  const adminToken = randomBytes(18).toString('base64url');
  try {
    const env: Record<string, string> = {
      ...database.env,
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
    const label = `${provider.backend}-${strategy}-c${conns}-p${preload}-r${repeat}`;
    const nodeArgs = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve('.bench/profiles', label)}`] : [];
    const child = await startChild({ script: 'bench/server.ts', env, label, logDir: resolve(LOG_DIR), nodeArgs });
    try {
      return await measureTarget(
        { host: '127.0.0.1', port: child.port, adminToken, benchRoutes: true },
        strategy,
        child,
        conns,
        preload,
        repeat,
      );
    } finally {
      await child.stop();
    }
  } finally {
    await database.drop();
  }
}

const quiet = () =>
  options.quietWaitSeconds > 0 ? waitForQuiet(options.quietWaitSeconds * 1000) : Promise.resolve(Number.NaN);

/** Which code was measured: the commit, and whether src/ had uncommitted changes. */
function codeVersion(): { commit: string; srcDirty: boolean } {
  // A tree made by bench/snapshot.sh is exactly one commit.
  if (existsSync('.bench-commit')) return { commit: readFileSync('.bench-commit', 'utf8').trim(), srcDirty: false };
  const git = (...args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  return { commit: git('rev-parse', 'HEAD') || 'unknown', srcDirty: git('status', '--porcelain', '--', 'src') !== '' };
}

async function main(): Promise<void> {
  const provider =
    options.url === undefined ? await openProvider(options.backend, process.env.DATABASE_URL) : undefined;
  const measurements: Measurement[] = [];
  const where = options.url?.toString() ?? provider!.description;
  const databaseVersion = provider === undefined ? 'unknown' : await provider.version();
  progress(
    `bench: ${options.scenario} on ${where} (${databaseVersion}); ${cpus().length} CPUs shared by the load ` +
      `generator, the servers and the database; ${options.durationSeconds} s per measurement after ${options.warmupSeconds} s warm-up`,
  );
  try {
    for (const conns of options.conns) {
      for (const preload of options.preload) {
        for (let repeat = 1; repeat <= options.repeat; repeat++) {
          progress(`[${conns} conns, ${preload} stored, run ${repeat}/${options.repeat}]`);
          const record = (m: Measurement, busyBefore: number) => {
            m.machineBusyBefore = busyBefore;
            measurements.push(m);
            progress(formatMeasurement(m));
          };
          if (options.ceiling && preload === options.preload[0]) {
            const busyBefore = await quiet();
            record(await measureCeiling(conns, repeat), busyBefore);
          }
          if (options.url !== undefined) {
            const target = {
              host: options.url.hostname,
              port: Number(options.url.port || 80),
              adminToken: options.adminToken,
              benchRoutes: false,
            };
            const busyBefore = await quiet();
            record(await measureTarget(target, 'url', undefined, conns, preload, repeat), busyBefore);
          } else {
            for (const strategy of options.strategies) {
              const busyBefore = await quiet();
              record(await measureStrategy(provider!, strategy, conns, preload, repeat), busyBefore);
            }
          }
        }
      }
    }
  } finally {
    await provider?.close();
  }
  const summary = summarize(measurements, options.scenario);
  const results = {
    generatedAt: new Date().toISOString(),
    options: { ...options, url: options.url?.toString(), adminToken: undefined },
    environment: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      node: process.version,
      database: databaseVersion,
      where,
      code: codeVersion(),
    },
    measurements,
    summary,
  };
  if (options.out !== undefined) writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  if (options.json) console.log(JSON.stringify(results, null, 2));
  else console.log(formatSummary(summary, options.scenario, options.repeat));
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
