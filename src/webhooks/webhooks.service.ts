// Webhooks, as staff manage them: register an endpoint (its secret shown once), list, edit,
// pause, delete, rotate the secret, page through its attempts and retry its head batch now. A URL is
// checked against SSRF before anything is written; the delivery worker checks it again on every
// connection (safe-url.ts).
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { notFound } from '../errors.ts';
import type { Recorder } from '../idempotency/recorder.ts';
import type { ChangeType } from '../model.ts';
import type { Store } from '../storage/store.ts';
import { checkWebhookUrl } from './safe-url.ts';
import { newSecret } from './signature.ts';
import type { AttemptRow, ContentEncoding, WebhookRow } from './webhooks.model.ts';

export type WebhooksConfig = Pick<Config, 'webhookAllowPrivateUrls' | 'webhookAttemptTimeoutMs'>;

/** Beyond the attempt's own deadline, how long a lease lasts: clocks of workers and database differ a little. */
const LEASE_MARGIN_MS = 10_000;

/** How long a claimed endpoint is kept from other workers: longer than any attempt can take. */
export const leaseMs = (config: Pick<Config, 'webhookAttemptTimeoutMs'>): number =>
  config.webhookAttemptTimeoutMs + LEASE_MARGIN_MS;

export interface WebhookChanges {
  url?: string;
  eventTypes?: ChangeType[];
  contentEncoding?: ContentEncoding;
  status?: 'active' | 'paused';
}

export interface AttemptPage {
  attempts: AttemptRow[];
  /** The last attempt id of this page when more may follow. */
  nextBeforeId: number | null;
}

export class WebhooksService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: WebhooksConfig,
  ) {}

  /** Registers an endpoint; it receives the changes made from now on. The row carries its secret. */
  async create(
    url: string,
    eventTypes: ChangeType[],
    contentEncoding: ContentEncoding,
    recorder?: Recorder<WebhookRow>,
  ): Promise<WebhookRow> {
    await checkWebhookUrl(url, this.config.webhookAllowPrivateUrls);
    const now = this.clock.now();
    // Read before the transaction: on PGlite nothing else may run while it is open.
    const startAfter = await this.store.lastPosition();
    return this.store.transaction(async (tx) => {
      const webhook = await this.store.insertWebhook(tx, {
        startAfter,
        url,
        eventTypes: unique(eventTypes),
        secret: newSecret(),
        contentEncoding,
        now,
      });
      await recorder?.record(tx, webhook);
      return webhook;
    });
  }

  list(): Promise<WebhookRow[]> {
    return this.store.listWebhooks();
  }

  async get(id: number): Promise<WebhookRow> {
    const webhook = await this.store.findWebhook(id);
    if (webhook === null) throw notFound('webhook', id);
    return webhook;
  }

  async update(id: number, changes: WebhookChanges, recorder?: Recorder<WebhookRow>): Promise<WebhookRow> {
    if (changes.url !== undefined) await checkWebhookUrl(changes.url, this.config.webhookAllowPrivateUrls);
    return this.edit(id, recorder, (webhook) => {
      // Setting a failed endpoint active again gives it a fresh count of failures.
      const revived = changes.status === 'active' && webhook.status !== 'active';
      const eventTypes = changes.eventTypes === undefined ? webhook.eventTypes : unique(changes.eventTypes);
      return {
        webhook: {
          ...webhook,
          url: changes.url ?? webhook.url,
          eventTypes,
          contentEncoding: changes.contentEncoding ?? webhook.contentEncoding,
          status: changes.status ?? webhook.status,
          consecutiveFailures: revived ? 0 : webhook.consecutiveFailures,
        },
        // Other types: the head batch (not in flight) is chosen again, so that a webhook-id
        // always carries the same changes.
        resetBatch: eventTypes.join(',') !== webhook.eventTypes.join(','),
      };
    });
  }

  /** A new signing secret, used from the next attempt on; the old one stops working at once. */
  rotateSecret(id: number, recorder?: Recorder<WebhookRow>): Promise<WebhookRow> {
    return this.edit(id, recorder, (webhook) => ({ webhook: { ...webhook, secret: newSecret() } }));
  }

  /**
   * Deletes the webhook and its attempts; an attempt in flight still finishes. With a
   * recorder, the answer is stored in the same transaction, so a retry replays it.
   */
  async remove(id: number, recorder?: Recorder<void>): Promise<void> {
    await this.store.transaction(async (tx) => {
      if (!(await this.store.deleteWebhook(tx, id))) throw notFound('webhook', id);
      await recorder?.record(tx, undefined);
    });
  }

  async attempts(webhookId: number, query: { beforeId: number; limit: number }): Promise<AttemptPage> {
    await this.get(webhookId);
    // One row more than asked says whether another page follows, without a count.
    const rows = await this.store.listAttempts({ webhookId, ...query, limit: query.limit + 1 });
    const attempts = rows.slice(0, query.limit);
    return { attempts, nextBeforeId: rows.length > query.limit ? attempts[attempts.length - 1]!.id : null };
  }

  /**
   * Tries the head batch now instead of at its next backoff, and sets a failed endpoint active
   * again (with a fresh count of failures). A batch in flight right now is left to finish.
   */
  retry(id: number, recorder?: Recorder<WebhookRow>): Promise<WebhookRow> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      if ((await this.store.lockWebhook(tx, id)) === null) throw notFound('webhook', id);
      await this.store.retryWebhook(tx, id, now);
      const webhook = (await this.store.lockWebhook(tx, id))!;
      await recorder?.record(tx, webhook);
      return webhook;
    });
  }

  private edit(
    id: number,
    recorder: Recorder<WebhookRow> | undefined,
    change: (webhook: WebhookRow) => { webhook: WebhookRow; resetBatch?: boolean },
  ): Promise<WebhookRow> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const webhook = await this.store.lockWebhook(tx, id);
      if (webhook === null) throw notFound('webhook', id);
      const { webhook: changed, resetBatch = false } = change(webhook);
      const edited = { ...changed, updatedAt: now };
      await this.store.updateWebhook(tx, edited, { resetBatch, now });
      await recorder?.record(tx, edited);
      return edited;
    });
  }
}

const unique = (types: ChangeType[]): ChangeType[] => [...new Set(types)];
