// The webhook delivery worker. Delivery state is a cursor per endpoint over the change log, not
// a row per change: each endpoint gets its changes in position order, in batches of at most
// WEBHOOK_BATCH_MAX, one batch in flight at a time.
//
// Each pass claims the endpoints that are due (active, not backing off, not leased, behind the
// log) with `for update skip locked` and a lease, in one short transaction; N workers share the
// endpoints and never take the same one. For each, outside any transaction:
//   1. read the changes after its cursor (ChangeStore.changesAfter: published changes only,
//      positions increasing, maybe with gaps), keep those of the types it wants;
//   2. fix the head batch's end on the endpoint (so that a retry, by this worker or another after
//      a crash, sends the same changes under the same webhook-id) and extend the lease;
//   3. send ONE signed request; on 2xx move the cursor to the batch's end and go on at once while
//      changes are waiting; on failure back off with jitter (until WEBHOOK_RETRY_SECONDS after
//      the batch's oldest change, when the batch is given up on and counted as a failure) and
//      give the lease back.
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
import type { Change } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { ChangeWindow, type WindowChange } from './change-window.ts';
import { WebhookSender } from './sender.ts';
import type { ClaimedEndpoint } from './webhooks.model.ts';
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

/** The webhook-id of a batch: the same on every attempt at it. */
export const batchMessageId = (webhookId: number, changes: Pick<Change, 'position'>[]): string =>
  `${webhookId}:${changes[0]!.position}-${changes[changes.length - 1]!.position}`;

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
    this.unsubscribe = options.feed?.subscribe('all', () => this.wake());
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
   * nothing is left.
   */
  private async deliver(endpoint: ClaimedEndpoint): Promise<void> {
    const { store, clock, config } = this.options;
    const { id, leaseOwner: owner } = endpoint;
    const wanted = new Set<string>(endpoint.eventTypes);
    let cursor = endpoint.cursorPosition;
    let batchLast = endpoint.batchLastPosition;
    let attempts = endpoint.attempts;
    for (;;) {
      if (this.stopped) {
        await store.releaseLease(id, owner);
        return;
      }
      const wakes = this.wakes;
      let changes = await this.window.read(cursor, config.webhookBatchMax);
      let last: number;
      if (batchLast === null) {
        if (changes.length === 0) {
          await store.releaseLease(id, owner);
          // Changes published while this endpoint was leased found it busy: look again.
          if (this.wakes !== wakes) this.wake();
          return;
        }
        last = changes[changes.length - 1]!.change.position;
      } else {
        // A retry: the same changes as the first attempt (those older than the cursor's
        // position never reappear; a purge may have removed some).
        const end = batchLast;
        changes = changes.filter(({ change }) => change.position <= end);
        last = end;
      }
      const leaseUntil = new Date(clock.now().getTime() + leaseMs(config));
      const batch = wanted.size === 0 ? changes : changes.filter(({ change }) => wanted.has(change.type));
      if (batch.length === 0) {
        if (!(await store.finishBatch(id, owner, { kind: 'skipped', lastPosition: last, leaseUntil }, null))) return;
        [cursor, batchLast, attempts] = [last, null, 0];
        continue;
      }
      // Fixed before the attempt, and fenced: not active any more (paused, failed, deleted), or
      // the lease was lost, sends nothing.
      if (!(await store.startBatch(id, owner, last, leaseUntil))) return;
      if (!(await this.attempt(endpoint, batch, last, attempts + 1))) return;
      [cursor, batchLast, attempts] = [last, null, 0];
      if (changes.length < config.webhookBatchMax && !this.stopped) {
        await new Promise((resolve) => setTimeout(resolve, this.options.lingerMs ?? LINGER_MS_DEFAULT));
      }
    }
  }

  /** One request for the batch, and its outcome recorded; true when it succeeded and the lease is still ours. */
  private async attempt(
    endpoint: ClaimedEndpoint,
    batch: WindowChange[],
    last: number,
    attempt: number,
  ): Promise<boolean> {
    const { store, clock, config, metrics } = this.options;
    const { id, leaseOwner: owner } = endpoint;
    // The BatchBody, from each change's JSON rendered once.
    const payload = `{"type":"changes.batch","data":[${batch.map(({ json }) => json).join(',')}]}`;
    const started = performance.now();
    const { statusCode, error } = await this.sender.send({
      url: endpoint.url,
      secret: endpoint.secret,
      messageId: batchMessageId(
        id,
        batch.map(({ change }) => change),
      ),
      payload,
    });
    const now = clock.now();
    const record = { statusCode, latencyMs: Math.round(performance.now() - started), error, now };
    const span = { firstPosition: batch[0]!.change.position, lastPosition: last, changeCount: batch.length };
    const attemptRow = { webhookId: id, ...span, statusCode, latencyMs: record.latencyMs, error, at: now };
    if (error === null) {
      const leaseUntil = new Date(now.getTime() + leaseMs(config));
      const ours = await store.finishBatch(id, owner, { kind: 'succeeded', lastPosition: last, leaseUntil }, record);
      if (ours) {
        metrics?.webhookDeliveries.inc({ outcome: 'succeeded' });
        for (const { change } of batch) metrics?.webhookLag.observe((now.getTime() - change.at.getTime()) / 1000);
        await store.insertAttempt({ ...attemptRow, outcome: 'succeeded' });
      }
      return ours;
    }
    // Retried until WEBHOOK_RETRY_SECONDS after the batch's oldest change, then given up on.
    const deadline = batch[0]!.change.at.getTime() + config.webhookRetrySeconds * 1000;
    if (now.getTime() >= deadline) {
      const result = { kind: 'failed', lastPosition: last, maxFailures: config.webhookMaxConsecutiveFailures } as const;
      if (await store.finishBatch(id, owner, result, record)) {
        metrics?.webhookDeliveries.inc({ outcome: 'failed' });
        await store.insertAttempt({ ...attemptRow, outcome: 'failed' });
      }
      return false;
    }
    const wait = retryDelayMs(attempt, config.webhookBackoffBaseMs, this.options.random);
    const at = new Date(Math.min(now.getTime() + wait, deadline));
    if (await store.finishBatch(id, owner, { kind: 'retrying', at }, record)) {
      metrics?.webhookDeliveries.inc({ outcome: 'retrying' });
      await store.insertAttempt({ ...attemptRow, outcome: 'retrying' });
    }
    return false;
  }
}
