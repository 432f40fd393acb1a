// The webhook delivery worker. Delivery state is a cursor per endpoint over the change log, not
// a row per change: each endpoint gets its changes in position order, in batches of at most
// WEBHOOK_BATCH_MAX, one batch in flight at a time.
//
// Each pass claims the endpoints that are due (active, not backing off, not leased, behind the
// log) with `for update skip locked` and a lease, in one short transaction; N workers share the
// endpoints and never take the same one. For each, outside any transaction:
//   1. take the head batch after its cursor from the shared ChangeWindow (ChangeStore.changesAfter:
//      published changes only, positions increasing, maybe with gaps; only the types it wants),
//      whose body is built once for every endpoint at that cursor;
//   2. fix the head batch's end on the endpoint (so that a retry, by this worker or another after
//      a crash, sends the same changes under the same webhook-id) and extend the lease; after a
//      success this is the same write that records it (cursor, attempt row), one statement on
//      PostgreSQL;
//   3. send ONE request, signed for this endpoint; on 2xx go on to the next batch at once while
//      changes are waiting, or after LINGER_MS_DEFAULT when the batch was not full; on failure
//      back off with jitter (until WEBHOOK_RETRY_SECONDS after the batch's oldest change, when
//      the batch is given up on and counted as a failure) and give the lease back.
// A slow endpoint occupies only its own lease; a dead one fails fast or at its deadline; the hot
// path never waits for any of this. Every database call may fail: the pass logs it and the next
// one carries on, and a lease that was never settled runs out, so its batch is sent again (at
// least once; receivers deduplicate by webhook-id). The worker wakes when the change feed
// publishes new changes (when given the feed), and polls otherwise.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ChangeFeed } from '../changes/feed.ts';
import { renderChange } from '../changes/render.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { DatabaseUnavailable } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../storage/store.ts';
import type { NextBatch } from '../storage/webhooks.sql.ts';
import { type Batch, ChangeWindow, gzippedBody } from './change-window.ts';
import { WebhookSender } from './sender.ts';
import type { ClaimedEndpoint, NewAttempt } from './webhooks.model.ts';
import { leaseMs } from './webhooks.service.ts';

export type WebhookWorkerConfig = Pick<
  Config,
  | 'webhookRetrySeconds'
  | 'webhookAttemptTimeoutMs'
  | 'webhookBackoffBaseMs'
  | 'webhookConcurrencyPerEndpoint'
  | 'webhookMaxConsecutiveFailures'
  | 'webhookAllowPrivateUrls'
  | 'webhookBatchMax'
  | 'changeRetentionSeconds'
>;

export interface WebhookWorkerOptions {
  store: Store;
  clock: Clock;
  config: WebhookWorkerConfig;
  metrics?: Metrics;
  log?: Pick<Logger, 'warn' | 'error'>;
  /** Wakes the worker when new changes are published; without it the worker only polls. */
  feed?: Pick<ChangeFeed, 'subscribe'>;
  /** How often an idle worker looks for new changes and due retries. */
  pollIntervalMs?: number;
  /** Jitter source, for tests. */
  random?: () => number;
  /** See LINGER_MS_DEFAULT. */
  lingerMs?: number;
}

/** The body of every webhook request: a batch of changes, in position order. */
export interface BatchBody {
  type: 'changes.batch';
  data: ReturnType<typeof renderChange>[];
}

/**
 * After a batch that was not full, an endpoint's next request waits this long: a caught-up
 * endpoint then gets a few larger batches a second instead of one request per sequencing run,
 * which keeps the database writes per endpoint (lease, cursor, attempt row) bounded under a sale.
 */
const LINGER_MS_DEFAULT = 200;
/** Endpoints claimed per pass. */
const CLAIM_BATCH = 100;
/** Endpoints in flight at once in this process. */
const MAX_IN_FLIGHT = 500;
const POLL_INTERVAL_MS_DEFAULT = 500;
/** After a pass that failed, the next waits at least this long. */
const FAILED_PASS_WAIT_MS = 2000;
/** While the database stays unavailable, its warning is logged at most this often. */
const UNAVAILABLE_LOG_INTERVAL_MS = 30_000;
/** Old attempts are purged this often, a bounded number per statement. */
const PURGE_INTERVAL_MS = 10 * 60_000;
const PURGE_PER_STATEMENT = 1000;
const PURGE_MAX_STATEMENTS = 100;
/** Retries never wait longer than this. */
const MAX_BACKOFF_MS = 3_600_000;

/** Exponential backoff with jitter: attempt n waits between half and all of base * 2^(n-1), at most an hour. */
export function retryDelayMs(attempts: number, baseMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 32));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** The webhook-id of a batch, from its first and last wanted change: the same on every attempt at it. */
export const batchMessageId = (webhookId: number, firstPosition: number, lastPosition: number): string =>
  `${webhookId}:${firstPosition}-${lastPosition}`;

export interface PassResult {
  /** Endpoints claimed (and being served). */
  claimed: number;
  /** True when the claim was full: more endpoints may be waiting. */
  more: boolean;
  /** True when a step failed (the database, most likely): the next pass waits longer. */
  failed: boolean;
}

export class WebhookWorker {
  private readonly sender: WebhookSender;
  private readonly window: ChangeWindow;
  /** Lease owner tokens are this, a colon and a count. */
  private readonly workerId = randomBytes(6).toString('base64url');
  private claims = 0;
  private readonly serving = new Set<Promise<void>>();
  private readonly pollIntervalMs: number;
  private readonly unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  /** Counts wake-ups: an endpoint that finds nothing knows whether new changes came meanwhile. */
  private wakes = 0;
  private started = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private lastPurgeMs = Number.NEGATIVE_INFINITY;
  private lastUnavailableLogMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: WebhookWorkerOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? POLL_INTERVAL_MS_DEFAULT;
    this.sender = new WebhookSender(options.config);
    this.window = new ChangeWindow(options.store);
    // The feed reads every new change anyway: while endpoints are being served the window keeps
    // them, so endpoints that keep up never read the log themselves. (Not otherwise: kept
    // changes outlive the young generation, and with no endpoint that GC work buys nothing.)
    this.unsubscribe = options.feed?.subscribe('all', (changes, after) => {
      if (this.serving.size > 0) this.window.offer(after, changes);
      this.wake();
    });
  }

  /** One pass, then waits for the endpoints it claimed to be done: tests drive the worker with this. */
  async runOnce(): Promise<PassResult> {
    const result = await this.pass();
    await Promise.all([...this.serving]);
    return result;
  }

  /** Runs passes until stopped: when changes are published, after each endpoint is done, else every poll interval. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.wake();
  }

  /** Stops passes, cuts attempts in flight short (recorded as failed, to be retried) and closes connections. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.running;
    const closing = this.sender.close('the worker stopped during the attempt');
    await Promise.all([...this.serving]);
    await closing;
  }

  /** Asks for a pass soon (new changes were published, say); passes never overlap. */
  wake(): void {
    this.wakes++;
    if (!this.started || this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass().then((result) => {
        this.running = undefined;
        const busy = result.more || this.again;
        this.again = false;
        if (result.failed) this.schedule(Math.max(this.pollIntervalMs, FAILED_PASS_WAIT_MS));
        else this.schedule(busy ? 0 : this.pollIntervalMs);
      });
    }, delayMs);
  }

  /** Never rejects: each step's failure is logged and the next step, and pass, go on. */
  private async pass(): Promise<PassResult> {
    const result: PassResult = { claimed: 0, more: false, failed: false };
    await this.step(result, 'claim webhook endpoints', () => this.dispatch(result));
    await this.step(result, 'purge old webhook attempts', () => this.purge());
    return result;
  }

  private async step(result: PassResult, what: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      result.failed = true;
      this.failed(what, error);
    }
  }

  private failed(what: string, error: unknown): void {
    if (!(error instanceof DatabaseUnavailable)) {
      this.options.log?.error({ err: error }, `webhooks: could not ${what}`);
      return;
    }
    // A database outage is expected now and then: a line at warn now and then, not a stack per pass.
    const now = Date.now();
    if (now - this.lastUnavailableLogMs < UNAVAILABLE_LOG_INTERVAL_MS) return;
    this.lastUnavailableLogMs = now;
    this.options.log?.warn({ code: error.code, detail: error.message }, `webhooks: could not ${what}`);
  }

  private async purge(): Promise<void> {
    const now = this.options.clock.now();
    if (now.getTime() - this.lastPurgeMs < PURGE_INTERVAL_MS) return;
    this.lastPurgeMs = now.getTime();
    const before = new Date(now.getTime() - this.options.config.changeRetentionSeconds * 1000);
    for (let statement = 0; statement < PURGE_MAX_STATEMENTS && !this.stopped; statement++) {
      if ((await this.options.store.purgeAttempts(before, PURGE_PER_STATEMENT)) < PURGE_PER_STATEMENT) return;
    }
  }

  private async dispatch(result: PassResult): Promise<void> {
    if (this.stopped) return;
    const limit = Math.min(CLAIM_BATCH, MAX_IN_FLIGHT - this.serving.size);
    if (limit <= 0) return;
    const { store, clock, config } = this.options;
    const head = await store.lastPosition();
    const now = clock.now();
    const claimed = await store.claimEndpoints({
      now,
      head,
      limit,
      owner: `${this.workerId}:${++this.claims}`,
      leaseUntil: new Date(now.getTime() + leaseMs(config)),
    });
    result.claimed += claimed.length;
    if (claimed.length === limit) result.more = true;
    for (const endpoint of claimed) this.serve(endpoint);
  }

  private serve(endpoint: ClaimedEndpoint): void {
    const serving: Promise<void> = this.deliver(endpoint)
      .catch((error: unknown) => this.failed('deliver to a webhook endpoint', error))
      .finally(() => this.serving.delete(serving));
    this.serving.add(serving);
  }

  /**
   * Sends the endpoint its head batch, then the next, while changes are waiting and the
   * endpoint answers 2xx; stops at the first failure (the batch is retried later) or when
   * nothing is left. A delivered batch is recorded together with the next batch's end, in one
   * write, just before the next is sent (or when nothing follows): the lease keeps the endpoint
   * ours meanwhile, and a crash in between only means the batch is sent again (at least once).
   */
  private async deliver(endpoint: ClaimedEndpoint): Promise<void> {
    const { store, clock, config, metrics } = this.options;
    const { id, leaseOwner: owner } = endpoint;
    const types = [...endpoint.eventTypes].sort();
    let cursor = endpoint.cursorPosition;
    let batchLast = endpoint.batchLastPosition;
    let attempts = endpoint.attempts;
    /** Where the cursor has moved to in memory, and the attempt that moved it, not yet written. */
    let moved: { lastPosition: number; attempt: NewAttempt | null } | null = null;
    /** The lease runs until about then: renewed with every write. */
    let leaseUntilMs = clock.now().getTime() + leaseMs(config);
    const record = (next: NextBatch) =>
      moved === null
        ? Promise.resolve(true)
        : moved.attempt === null
          ? store.finishBatch(id, owner, { kind: 'skipped', lastPosition: moved.lastPosition, next }, null)
          : store.finishBatch(id, owner, { kind: 'succeeded', lastPosition: moved.lastPosition, next }, moved.attempt);
    const giveBack = async () => {
      if (moved === null) await store.releaseLease(id, owner);
      else await record(null);
    };
    for (;;) {
      if (this.stopped) return giveBack();
      const wakes = this.wakes;
      const batch = await this.window.batch(cursor, batchLast, types, config.webhookBatchMax);
      if (batch === null) {
        await giveBack();
        // Changes published while this endpoint was leased found it busy: look again.
        if (this.wakes !== wakes) this.wake();
        return;
      }
      const now = clock.now().getTime();
      if (batch.count === 0) {
        // Nothing wanted: the cursor moves on without a request, written with the next write
        // (or now, when the lease is half gone: a long run of unwanted changes).
        const delivered: NewAttempt | null = moved === null ? null : moved.attempt;
        moved = { lastPosition: batch.last, attempt: delivered };
        [cursor, batchLast, attempts] = [batch.last, null, 0];
        if (leaseUntilMs - now < leaseMs(config) / 2) {
          leaseUntilMs = now + leaseMs(config);
          if (!(await record({ lastPosition: null, leaseUntil: new Date(leaseUntilMs) }))) return;
          moved = null;
        }
        continue;
      }
      // The batch's end is fixed before the attempt (a retry, by this worker or another after a
      // crash, sends the same changes under the same webhook-id), and fenced: not active any
      // more (paused, failed, deleted), or the lease was lost, sends nothing.
      leaseUntilMs = now + leaseMs(config);
      const next = { lastPosition: batch.last, leaseUntil: new Date(leaseUntilMs) };
      if (moved === null) {
        // The first batch of this lease (a retry, maybe): its end may be fixed already.
        if (!(await store.startBatch(id, owner, batch.last, next.leaseUntil))) return store.releaseLease(id, owner);
      } else {
        const fixed = await record(next);
        moved = null;
        if (!fixed) return;
      }
      const attempt = await this.attempt(endpoint, batch, attempts + 1);
      if (attempt === null) return;
      metrics?.webhookDeliveries.inc({ outcome: 'succeeded' });
      metrics?.webhookLag.observeSince(attempt.at.getTime(), batch.atsMs);
      moved = { lastPosition: batch.last, attempt };
      [cursor, batchLast, attempts] = [batch.last, null, 0];
      if (!batch.full && !this.stopped) {
        await new Promise((resolve) => setTimeout(resolve, this.options.lingerMs ?? LINGER_MS_DEFAULT));
      }
    }
  }

  /**
   * One request for the batch. On a 2xx, the attempt to record (with the next write); on a
   * failure, the retry or the giving up is recorded here, and null.
   */
  private async attempt(endpoint: ClaimedEndpoint, batch: Batch, attempt: number): Promise<NewAttempt | null> {
    const { store, clock, config, metrics } = this.options;
    const { id, leaseOwner: owner } = endpoint;
    const started = performance.now();
    const { statusCode, error } = await this.sender.send({
      url: endpoint.url,
      secret: endpoint.secret,
      messageId: batchMessageId(id, batch.firstWanted, batch.lastWanted),
      payload: batch.body,
      gzipped: endpoint.contentEncoding === 'gzip' ? await gzippedBody(batch) : null,
    });
    const now = clock.now();
    const row = {
      webhookId: id,
      firstPosition: batch.firstWanted,
      lastPosition: batch.last,
      changeCount: batch.count,
      statusCode,
      latencyMs: Math.round(performance.now() - started),
      error,
      at: now,
    };
    if (error === null) return { ...row, outcome: 'succeeded' };
    // Retried until WEBHOOK_RETRY_SECONDS after the batch's oldest change, then given up on.
    const deadline = batch.atsMs[0]! + config.webhookRetrySeconds * 1000;
    if (now.getTime() >= deadline) {
      const result = {
        kind: 'failed',
        lastPosition: batch.last,
        maxFailures: config.webhookMaxConsecutiveFailures,
      } as const;
      if (await store.finishBatch(id, owner, result, { ...row, outcome: 'failed' })) {
        metrics?.webhookDeliveries.inc({ outcome: 'failed' });
      }
      return null;
    }
    const wait = retryDelayMs(attempt, config.webhookBackoffBaseMs, this.options.random);
    const at = new Date(Math.min(now.getTime() + wait, deadline));
    if (await store.finishBatch(id, owner, { kind: 'retrying', at }, { ...row, outcome: 'retrying' })) {
      metrics?.webhookDeliveries.inc({ outcome: 'retrying' });
    }
    return null;
  }
}
