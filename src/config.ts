// The only place that reads the environment. Every variable is validated here, every bad one
// is reported at once, and the result is frozen and passed down as `Config`.

import { DATABASE_DEFAULTS } from './db/types.ts';
import { messageOf } from './errors.ts';
import { parsePostgresUrl } from './db/postgres-url.ts';
import { type AdmissionKeys, parseAdmissionKeys } from './admission/tokens.ts';

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
  /** Opening a connection to the database server and logging in. */
  readonly databaseConnectTimeoutMs: number;
  /** Waiting for a free pooled connection. */
  readonly databaseAcquireTimeoutMs: number;
  /** One statement; a frozen server is given up on this plus 250 ms later (CLIENT_DEADLINE_GRACE_MS). */
  readonly databaseStatementTimeoutMs: number;
  /** A transaction open with no statement running, ended by the server. */
  readonly databaseIdleInTransactionTimeoutMs: number;
  /** After SIGTERM, the process exits within this even if requests or the database hang. */
  readonly shutdownTimeoutSeconds: number;
  readonly holdTtlSeconds: number;
  /** How long a waiting-list offer (a hold made for an entry) lasts before it moves on. */
  readonly waitlistOfferTtlSeconds: number;
  readonly sweepIntervalSeconds: number;
  readonly maxSeatsPerHold: number;
  /** Compare customers that are email addresses trimmed, lower-cased and without a +tag (customer.ts). */
  readonly customerEmailNormalization: boolean;
  /** Upper bound on hold requests granted in one transaction for one event. */
  readonly holdBatchMax: number;
  /** Hold requests allowed to wait for one event before new ones get 503. */
  readonly holdQueueMax: number;
  /** A hold's whole life, from creation, however often it is extended. */
  readonly maxHoldLifetimeSeconds: number;
  /** How long an Idempotency-Key and its stored response are kept. */
  readonly idempotencyKeyTtlSeconds: number;
  /** After this long an unfinished claim on a key is presumed dead and may be taken over. */
  readonly idempotencyLockTimeoutSeconds: number;
  /** Per client per minute; 0 turns the limit off. */
  readonly rateLimitHoldsPerMinute: number;
  readonly rateLimitBookPerMinute: number;
  /** Proxies in front of the server whose X-Forwarded-For is believed; 0 uses the socket. */
  readonly trustProxyHops: number;
  readonly adminToken: string | undefined;
  /** redis://…: rate limits counted once for every process; unset, each process counts its own. */
  readonly redisUrl: string | undefined;
  /** False in serve when a `box-office worker` runs the sweeper instead. */
  readonly sweeperInServe: boolean;
  /** Write the change feed (outbox) with every change; off only to measure what it costs. */
  readonly changeFeed: boolean;
  /** How long changes are kept in the log; the sweeper purges older ones. */
  readonly changeRetentionSeconds: number;
  /** A batch is retried until this long after its oldest change, then given up on. */
  readonly webhookRetrySeconds: number;
  /** One delivery attempt gives up after this. */
  readonly webhookAttemptTimeoutMs: number;
  /** The first retry waits about this long; each later one twice as long (with jitter), up to an hour. */
  readonly webhookBackoffBaseMs: number;
  /**
   * Connections the sender keeps per endpoint. Batches are sent one at a time per endpoint (the
   * order), so more than 1 is rarely used; kept so that existing configurations still start.
   */
  readonly webhookConcurrencyPerEndpoint: number;
  /** An endpoint is marked failed after this many batches given up on in a row. */
  readonly webhookMaxConsecutiveFailures: number;
  /** Changes in one webhook request at most. */
  readonly webhookBatchMax: number;
  /** Allow webhook URLs that resolve to private, loopback or link-local addresses (tests, on-premises). */
  readonly webhookAllowPrivateUrls: boolean;
  /** False in serve when a `box-office worker` delivers webhooks instead. */
  readonly webhooksInServe: boolean;
  /** Signs queue tickets and admission tokens (ADMISSION_SECRET: kid:secret, comma-separated, first signs). */
  readonly admissionKeys: AdmissionKeys;
  /** How often each process advances admission (once per event across processes) and learns where it got to. */
  readonly queueTickMs: number;
  /** Tests only: every pre-queue is shuffled with this seed instead of a random one. */
  readonly queueShuffleSeed: string | undefined;
  readonly logLevel: string;
  /** The level of the one log line each request gets; 'silent' for none. */
  readonly accessLogLevel: 'trace' | 'debug' | 'info' | 'warn' | 'silent';
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

  const bool = (name: string, fallback: boolean): boolean => {
    const raw = str(name);
    if (raw === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(raw.toLowerCase())) return true;
    if (['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false;
    problems.push(`${name} must be true or false, got ${JSON.stringify(raw)}`);
    return fallback;
  };

  const nodeEnv = str('NODE_ENV') ?? 'development';
  const redisUrl = str('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl))
    problems.push('REDIS_URL must start with redis:// or rediss://');
  const databaseUrl = str('DATABASE_URL');
  let backend: Backend = 'pglite';
  if (databaseUrl !== undefined) {
    if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
      backend = 'postgres';
      try {
        parsePostgresUrl(databaseUrl);
      } catch (error) {
        problems.push(messageOf(error));
      }
    } else if (/^mysql:\/\//.test(databaseUrl)) backend = 'mysql';
    else problems.push('DATABASE_URL must start with postgres://, postgresql:// or mysql://');
  }

  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }

  const ACCESS_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'silent'] as const;
  const accessLogLevel = (str('ACCESS_LOG_LEVEL') ?? 'info') as Config['accessLogLevel'];
  if (!ACCESS_LOG_LEVELS.includes(accessLogLevel)) {
    problems.push(
      `ACCESS_LOG_LEVEL must be one of ${ACCESS_LOG_LEVELS.join(', ')}, got ${JSON.stringify(accessLogLevel)}`,
    );
  }

  const adminToken = str('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 16) {
    problems.push('ADMIN_TOKEN must be at least 16 characters');
  }
  if (nodeEnv === 'production' && adminToken === undefined) {
    problems.push('ADMIN_TOKEN is required when NODE_ENV=production (admin routes would be open)');
  }

  // Rate limits are on by default, but off under NODE_ENV=test, where one client (the test
  // runner) sends hundreds of requests a second on purpose; a test turns them on by setting them.
  const rateLimitDefault = (perMinute: number) => (nodeEnv === 'test' ? 0 : perMinute);
  const holdTtlSeconds = int('HOLD_TTL_SECONDS', 120, 1, 86_400);
  // Unset, the cap never undercuts the TTL, so a long HOLD_TTL_SECONDS alone still starts.
  const maxHoldLifetimeSeconds = int('MAX_HOLD_LIFETIME_SECONDS', Math.max(900, holdTtlSeconds), 1, 7 * 86_400);
  if (maxHoldLifetimeSeconds < holdTtlSeconds) {
    problems.push(
      `MAX_HOLD_LIFETIME_SECONDS (${maxHoldLifetimeSeconds}) must be at least HOLD_TTL_SECONDS (${holdTtlSeconds})`,
    );
  }

  const webhookRetrySeconds = int('WEBHOOK_RETRY_SECONDS', 72 * 3600, 1, 30 * 86_400);
  const changeRetentionSeconds = int('CHANGE_RETENTION_SECONDS', 7 * 86_400, 60, 365 * 86_400);
  // Webhook batches are read from the log when they are retried, and a consumer catching up
  // after an outage reads it too: keep the log at least as long as batches are retried.
  if (changeRetentionSeconds < webhookRetrySeconds) {
    problems.push(
      `CHANGE_RETENTION_SECONDS (${changeRetentionSeconds}) must be at least WEBHOOK_RETRY_SECONDS (${webhookRetrySeconds})`,
    );
  }

  let admissionKeys = parseAdmissionKeys(undefined);
  try {
    admissionKeys = parseAdmissionKeys(str('ADMISSION_SECRET'));
  } catch (error) {
    problems.push(messageOf(error));
  }
  const queueShuffleSeed = str('QUEUE_SHUFFLE_SEED');
  if (queueShuffleSeed !== undefined && nodeEnv === 'production')
    problems.push('QUEUE_SHUFFLE_SEED is for tests: with it, anyone who knows it can predict a pre-queue draw');

  const config: Config = {
    nodeEnv,
    port: int('PORT', 8080, 0, 65535),
    host: str('HOST') ?? '0.0.0.0',
    databaseUrl,
    backend,
    dataDir: str('DATA_DIR') ?? './data',
    databasePoolSize: int('DATABASE_POOL_SIZE', DATABASE_DEFAULTS.poolSize, 1, 1000),
    databaseConnectTimeoutMs: int('DATABASE_CONNECT_TIMEOUT_MS', DATABASE_DEFAULTS.connectTimeoutMs, 100, 60_000),
    databaseAcquireTimeoutMs: int('DATABASE_ACQUIRE_TIMEOUT_MS', DATABASE_DEFAULTS.acquireTimeoutMs, 10, 60_000),
    databaseStatementTimeoutMs: int(
      'DATABASE_STATEMENT_TIMEOUT_MS',
      DATABASE_DEFAULTS.statementTimeoutMs,
      100,
      600_000,
    ),
    databaseIdleInTransactionTimeoutMs: int(
      'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS',
      DATABASE_DEFAULTS.idleInTransactionTimeoutMs,
      1000,
      3_600_000,
    ),
    shutdownTimeoutSeconds: int('SHUTDOWN_TIMEOUT_SECONDS', 10, 1, 600),
    holdTtlSeconds,
    waitlistOfferTtlSeconds: int('WAITLIST_OFFER_TTL_SECONDS', 900, 1, 7 * 86_400),
    sweepIntervalSeconds: int('SWEEP_INTERVAL_SECONDS', 30, 1, 86_400),
    maxSeatsPerHold: int('MAX_SEATS_PER_HOLD', 10, 1, 10_000),
    holdBatchMax: int('HOLD_BATCH_MAX', 128, 1, 10_000),
    holdQueueMax: int('HOLD_QUEUE_MAX', 10_000, 1, 1_000_000),
    maxHoldLifetimeSeconds,
    idempotencyKeyTtlSeconds: int('IDEMPOTENCY_KEY_TTL_SECONDS', 86_400, 60, 30 * 86_400),
    idempotencyLockTimeoutSeconds: int('IDEMPOTENCY_LOCK_TIMEOUT_SECONDS', 60, 1, 3_600),
    rateLimitHoldsPerMinute: int('RATE_LIMIT_HOLDS_PER_MINUTE', rateLimitDefault(120), 0, 1_000_000),
    rateLimitBookPerMinute: int('RATE_LIMIT_BOOK_PER_MINUTE', rateLimitDefault(60), 0, 1_000_000),
    trustProxyHops: int('TRUST_PROXY_HOPS', 0, 0, 16),
    adminToken,
    redisUrl,
    sweeperInServe: bool('SWEEPER_IN_SERVE', true),
    customerEmailNormalization: bool('CUSTOMER_EMAIL_NORMALIZATION', true),
    changeFeed: bool('CHANGE_FEED', true),
    changeRetentionSeconds,
    webhookRetrySeconds,
    webhookAttemptTimeoutMs: int('WEBHOOK_ATTEMPT_TIMEOUT_MS', 5000, 100, 60_000),
    webhookBackoffBaseMs: int('WEBHOOK_BACKOFF_BASE_MS', 1000, 1, 3_600_000),
    webhookConcurrencyPerEndpoint: int('WEBHOOK_CONCURRENCY_PER_ENDPOINT', 4, 1, 100),
    webhookMaxConsecutiveFailures: int('WEBHOOK_MAX_CONSECUTIVE_FAILURES', 10, 1, 1_000_000),
    webhookBatchMax: int('WEBHOOK_BATCH_MAX', 1000, 1, 1000),
    webhookAllowPrivateUrls: bool('WEBHOOK_ALLOW_PRIVATE_URLS', false),
    webhooksInServe: bool('WEBHOOKS_IN_SERVE', true),
    admissionKeys,
    queueTickMs: int('QUEUE_TICK_MS', 500, 0, 60_000),
    queueShuffleSeed,
    logLevel,
    accessLogLevel,
  };
  // A claim must be presumed dead before its key is forgotten, or a request still running
  // could see its key purged and a retry run the effect twice.
  if (config.idempotencyLockTimeoutSeconds >= config.idempotencyKeyTtlSeconds) {
    problems.push(
      `IDEMPOTENCY_LOCK_TIMEOUT_SECONDS (${config.idempotencyLockTimeoutSeconds}) must be shorter than ` +
        `IDEMPOTENCY_KEY_TTL_SECONDS (${config.idempotencyKeyTtlSeconds})`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
