// The webhook delivery worker. Each pass:
//   1. fans out: for each active webhook behind the log, under its row lock (skip locked, so N
//      workers share the webhooks), creates a delivery per wanted change after its cursor and
//      moves the cursor;
//   2. claims due deliveries (skip locked) and leases them in one short transaction, then sends
//      them outside any transaction, each with its own deadline, at most
//      WEBHOOK_CONCURRENCY_PER_ENDPOINT at once per endpoint in this process.
// Only the oldest pending delivery of a (webhook, event) can be claimed, so an endpoint gets an
// event's changes in order. A slow endpoint fills only its own slots; a dead one fails fast or at
// its deadline; the hot path never waits for any of this. Every database call may fail: the
// pass logs it and the next one carries on, and a lease that was never settled runs out, so its
// delivery is sent again (at least once; receivers deduplicate by webhook-id). Finished
// deliveries are purged once they are older than CHANGE_RETENTION_SECONDS. Changes are numbered
// by the change feed's sequencer (src/changes/feed.ts), which serve and worker both run.
import type { Logger } from 'pino';
import { renderChange } from '../changes/render.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { DatabaseUnavailable } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { Store, Tx } from '../storage/store.ts';
import { WebhookSender } from './sender.ts';
import type { AttemptRecord, ClaimedDelivery, DueDelivery } from './webhooks.model.ts';
import { leaseMs } from './webhooks.service.ts';

export type WebhookWorkerConfig = Pick<
  Config,
  | 'webhookRetrySeconds'
  | 'webhookAttemptTimeoutMs'
  | 'webhookBackoffBaseMs'
  | 'webhookConcurrencyPerEndpoint'
  | 'webhookMaxConsecutiveFailures'
  | 'webhookAllowPrivateUrls'
  | 'changeRetentionSeconds'
>;

export interface WebhookWorkerOptions {
  store: Store;
  clock: Clock;
  config: WebhookWorkerConfig;
  metrics?: Metrics;
  log?: Pick<Logger, 'warn' | 'error'>;
  /** How often an idle worker looks for new changes and due retries. */
  pollIntervalMs?: number;
  /** Jitter source, for tests. */
  random?: () => number;
}

/** Changes fanned out per webhook per pass. */
const FAN_OUT_BATCH = 500;
/** Deliveries claimed per pass, and in flight at once in this process. */
const CLAIM_BATCH = 100;
/** Queries per claim, when endpoints with more due deliveries than free slots crowd the first. */
const CLAIM_QUERIES = 3;
const MAX_IN_FLIGHT = 500;
const POLL_INTERVAL_MS_DEFAULT = 500;
/** After a pass that failed, the next waits at least this long. */
const FAILED_PASS_WAIT_MS = 2000;
/** While the database stays unavailable, its warning is logged at most this often. */
const UNAVAILABLE_LOG_INTERVAL_MS = 30_000;
/** Finished deliveries are purged this often, a bounded number per statement. */
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

export interface PassResult {
  /** Deliveries created by the fan-out. */
  fannedOut: number;
  /** Deliveries claimed and sent (or being sent). */
  claimed: number;
  /** True when a batch was full: more work is waiting. */
  more: boolean;
  /** True when a step failed (the database, most likely): the next pass waits longer. */
  failed: boolean;
}

export class WebhookWorker {
  private readonly sender: WebhookSender;
  private readonly inFlight = new Map<number, number>();
  private readonly sends = new Set<Promise<void>>();
  private readonly pollIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private lastPurgeMs = Number.NEGATIVE_INFINITY;
  private lastUnavailableLogMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: WebhookWorkerOptions) {
    const { config } = options;
    this.pollIntervalMs = options.pollIntervalMs ?? POLL_INTERVAL_MS_DEFAULT;
    this.sender = new WebhookSender(config, options.clock);
  }

  /** One pass, then waits for the attempts it started: tests drive the worker with this. */
  async runOnce(): Promise<PassResult> {
    const result = await this.pass();
    await Promise.all([...this.sends]);
    return result;
  }

  /** Runs passes until stopped: after every attempt, at once while work waits, else every poll interval. */
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
    clearTimeout(this.timer);
    await this.running;
    const closing = this.sender.close('the worker stopped during the attempt');
    await Promise.all([...this.sends]);
    await closing;
  }

  /** Asks for a pass soon (new changes were numbered, say); passes never overlap. */
  wake(): void {
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
    const result: PassResult = { fannedOut: 0, claimed: 0, more: false, failed: false };
    await this.step(result, 'fan out changes to webhooks', () => this.fanOut(result));
    await this.step(result, 'claim webhook deliveries', () => this.dispatch(result));
    await this.step(result, 'purge old webhook deliveries', () => this.purge());
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

  private async fanOut(result: PassResult): Promise<void> {
    const { store } = this.options;
    const head = await store.lastPosition();
    for (const webhook of await store.webhooksBehind(head)) {
      if (this.stopped) return;
      // Read before the transaction: on PGlite a read outside it would wait for it forever.
      const changes = await store.changesAfter(webhook.lastPosition, FAN_OUT_BATCH);
      if (changes.length === 0) continue;
      if (changes.length === FAN_OUT_BATCH) result.more = true;
      const upTo = changes[changes.length - 1]!.position;
      const now = this.options.clock.now();
      result.fannedOut += await store.transaction(async (tx) => {
        const claimed = await store.claimWebhookForFanOut(tx, webhook.id);
        // Locked by another worker (which does this), paused or gone meanwhile, or done already.
        if (claimed === null || claimed.lastPosition >= upTo) return 0;
        const wanted = new Set<string>(claimed.eventTypes);
        const deliveries = changes
          .filter((change) => change.position > claimed.lastPosition && (wanted.size === 0 || wanted.has(change.type)))
          .map((change) => ({
            position: change.position,
            eventId: change.eventId,
            type: change.type,
            payload: JSON.stringify(renderChange(change)),
          }));
        const created = await store.insertDeliveries(tx, webhook.id, deliveries, now);
        await store.advanceWebhook(tx, webhook.id, upTo);
        return created;
      });
    }
  }

  private async purge(): Promise<void> {
    const now = this.options.clock.now();
    if (now.getTime() - this.lastPurgeMs < PURGE_INTERVAL_MS) return;
    this.lastPurgeMs = now.getTime();
    const before = new Date(now.getTime() - this.options.config.changeRetentionSeconds * 1000);
    for (let statement = 0; statement < PURGE_MAX_STATEMENTS && !this.stopped; statement++) {
      if ((await this.options.store.purgeDeliveries(before, PURGE_PER_STATEMENT)) < PURGE_PER_STATEMENT) return;
    }
  }

  private async dispatch(result: PassResult): Promise<void> {
    if (this.stopped) return;
    const inFlightTotal = [...this.inFlight.values()].reduce((sum, n) => sum + n, 0);
    const limit = Math.min(CLAIM_BATCH, MAX_IN_FLIGHT - inFlightTotal);
    if (limit <= 0) return;
    const claimed = await this.options.store.transaction((tx) => this.claim(tx, limit));
    result.claimed += claimed.length;
    if (claimed.length === limit) result.more = true;
    for (const delivery of claimed) this.send(delivery);
  }

  /**
   * Leases up to `limit` due deliveries, at most WEBHOOK_CONCURRENCY_PER_ENDPOINT in flight per
   * endpoint in this process. An endpoint with many due deliveries (a dead one retrying) would
   * crowd out the others in one query, so its surplus is skipped, the endpoint excluded, and the
   * query repeated a few times.
   */
  private async claim(tx: Tx, limit: number): Promise<ClaimedDelivery[]> {
    const { store, clock, config } = this.options;
    const perEndpoint = config.webhookConcurrencyPerEndpoint;
    const taken = new Map<number, number>(this.inFlight);
    const exclude = new Set([...taken].filter(([, n]) => n >= perEndpoint).map(([id]) => id));
    const now = clock.now();
    const leaseUntil = new Date(now.getTime() + leaseMs(config));
    const chosen: DueDelivery[] = [];
    for (let query = 0; query < CLAIM_QUERIES && chosen.length < limit; query++) {
      const asked = limit - chosen.length;
      const due = await store.lockDueDeliveries(tx, { now, limit: asked, exclude: [...exclude] });
      const picked = due.filter((delivery) => {
        const count = taken.get(delivery.webhookId) ?? 0;
        if (count >= perEndpoint) return false;
        taken.set(delivery.webhookId, count + 1);
        if (count + 1 >= perEndpoint) exclude.add(delivery.webhookId);
        return true;
      });
      // Leased now, so that the next query (which sees this transaction's locks as its own) skips them.
      await store.leaseDeliveries(
        tx,
        picked.map((delivery) => delivery.id),
        leaseUntil,
      );
      chosen.push(...picked);
      if (due.length < asked || picked.length === due.length) break;
    }
    const targets = new Map(
      (await store.webhookTargets(tx, [...new Set(chosen.map((delivery) => delivery.webhookId))])).map((target) => [
        target.id,
        target,
      ]),
    );
    return chosen.flatMap((delivery) => {
      const target = targets.get(delivery.webhookId);
      // Deleted meanwhile: its deliveries went with it.
      if (target === undefined) return [];
      return [{ ...delivery, url: target.url, secret: target.secret, attempts: delivery.attempts + 1 }];
    });
  }

  private send(delivery: ClaimedDelivery): void {
    const { webhookId } = delivery;
    this.inFlight.set(webhookId, (this.inFlight.get(webhookId) ?? 0) + 1);
    const sending: Promise<void> = this.deliver(delivery)
      .catch((error: unknown) => this.failed('record a webhook delivery attempt', error))
      .finally(() => {
        const left = (this.inFlight.get(webhookId) ?? 1) - 1;
        if (left > 0) this.inFlight.set(webhookId, left);
        else this.inFlight.delete(webhookId);
        this.sends.delete(sending);
        // A slot is free, and the next change of that event may now be due.
        this.wake();
      });
    this.sends.add(sending);
  }

  /** Sends one delivery and records what came of it. */
  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const { store, clock, config, metrics } = this.options;
    const started = performance.now();
    const { statusCode, error } = await this.sender.send(delivery);
    const record: AttemptRecord = {
      statusCode,
      latencyMs: Math.round(performance.now() - started),
      error,
      now: clock.now(),
    };
    const now = record.now.getTime();
    if (error === null) {
      if (await store.finishDelivery(delivery, record, { status: 'succeeded' })) {
        metrics?.webhookDeliveries.inc({ outcome: 'succeeded' });
        await store.resetWebhookFailures(delivery.webhookId, record.now);
      }
      return;
    }
    const deadline = delivery.createdAt.getTime() + config.webhookRetrySeconds * 1000;
    if (now >= deadline) {
      if (await store.finishDelivery(delivery, record, { status: 'failed' })) {
        metrics?.webhookDeliveries.inc({ outcome: 'failed' });
        await store.countWebhookFailure(delivery.webhookId, config.webhookMaxConsecutiveFailures, record.now);
      }
      return;
    }
    const wait = retryDelayMs(delivery.attempts, config.webhookBackoffBaseMs, this.options.random);
    const at = new Date(Math.min(now + wait, deadline));
    if (await store.finishDelivery(delivery, record, { status: 'pending', at })) {
      metrics?.webhookDeliveries.inc({ outcome: 'retrying' });
    }
  }
}
