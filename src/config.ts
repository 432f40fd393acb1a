// The only place that reads the environment. Every variable is validated here, every bad one
// is reported at once, and the result is frozen and passed down as `Config`.

export type Backend = 'pglite' | 'postgres' | 'mysql';

export interface Config {
  readonly nodeEnv: string;
  readonly port: number;
  readonly host: string;
  /** postgres://… or mysql://…; undefined means embedded PGlite in `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly backend: Backend;
  readonly dataDir: string;
  readonly databasePoolSize: number;
  readonly holdTtlSeconds: number;
  readonly sweepIntervalSeconds: number;
  readonly maxSeatsPerHold: number;
  /** Upper bound on hold requests granted in one transaction for one event. */
  readonly holdBatchMax: number;
  /** Hold requests allowed to wait for one event before new ones get 503. */
  readonly holdQueueMax: number;
  readonly adminToken: string | undefined;
  readonly logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
      return fallback;
    }
    return value;
  };
  const str = (name: string): string | undefined => {
    const raw = env[name];
    return raw === undefined || raw === '' ? undefined : raw;
  };

  const nodeEnv = str('NODE_ENV') ?? 'development';
  const databaseUrl = str('DATABASE_URL');
  let backend: Backend = 'pglite';
  if (databaseUrl !== undefined) {
    if (/^postgres(ql)?:\/\//.test(databaseUrl)) backend = 'postgres';
    else if (/^mysql:\/\//.test(databaseUrl)) backend = 'mysql';
    else problems.push('DATABASE_URL must start with postgres://, postgresql:// or mysql://');
  }

  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }

  const adminToken = str('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push('ADMIN_TOKEN must be at least 16 characters');
  }
  if (nodeEnv === 'production' && adminToken === undefined) {
    problems.push('ADMIN_TOKEN is required when NODE_ENV=production (admin routes would be open)');
  }

  const config: Config = {
    nodeEnv,
    port: int('PORT', 8080, 0, 65535),
    host: str('HOST') ?? '0.0.0.0',
    databaseUrl,
    backend,
    dataDir: str('DATA_DIR') ?? './data',
    databasePoolSize: int('DATABASE_POOL_SIZE', 10, 1, 1000),
    holdTtlSeconds: int('HOLD_TTL_SECONDS', 120, 1, 86_400),
    sweepIntervalSeconds: int('SWEEP_INTERVAL_SECONDS', 30, 1, 86_400),
    maxSeatsPerHold: int('MAX_SEATS_PER_HOLD', 10, 1, 10_000),
    holdBatchMax: int('HOLD_BATCH_MAX', 128, 1, 10_000),
    holdQueueMax: int('HOLD_QUEUE_MAX', 10_000, 1, 1_000_000),
    adminToken,
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
