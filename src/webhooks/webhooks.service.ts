// Webhooks, as staff manage them: register an endpoint (its secret shown once), list, edit,
// pause, delete, rotate the secret, page through its deliveries and send one again. A URL is
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
import type { DeliveryRow, DeliveryStatus, WebhookRow } from './webhooks.model.ts';

export type WebhooksConfig = Pick<Config, 'webhookAllowPrivateUrls' | 'webhookAttemptTimeoutMs'>;

/** Beyond the attempt's own deadline, how long a lease lasts: clocks of workers and database differ a little. */
const LEASE_MARGIN_MS = 10_000;

/** How long a claimed delivery is kept from other workers: longer than any attempt can take. */
export const leaseMs = (config: Pick<Config, 'webhookAttemptTimeoutMs'>): number =>
  config.webhookAttemptTimeoutMs + LEASE_MARGIN_MS;

export interface WebhookChanges {
  url?: string;
  eventTypes?: ChangeType[];
  status?: 'active' | 'paused';
}

export interface DeliveryPage {
  deliveries: DeliveryRow[];
  /** The last delivery id of this page when more may follow. */
  nextBeforeId: number | null;
}

export class WebhooksService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: WebhooksConfig,
  ) {}

  /** Registers an endpoint; it receives the changes made from now on. The row carries its secret. */
  async create(url: string, eventTypes: ChangeType[], recorder?: Recorder<WebhookRow>): Promise<WebhookRow> {
    await checkWebhookUrl(url, this.config.webhookAllowPrivateUrls);
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const webhook = await this.store.insertWebhook(tx, {
        url,
        eventTypes: unique(eventTypes),
        secret: newSecret(),
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
      return {
        ...webhook,
        url: changes.url ?? webhook.url,
        eventTypes: changes.eventTypes === undefined ? webhook.eventTypes : unique(changes.eventTypes),
        status: changes.status ?? webhook.status,
        consecutiveFailures: revived ? 0 : webhook.consecutiveFailures,
      };
    });
  }

  /** A new signing secret, used from the next attempt on; the old one stops working at once. */
  rotateSecret(id: number, recorder?: Recorder<WebhookRow>): Promise<WebhookRow> {
    return this.edit(id, recorder, (webhook) => ({ ...webhook, secret: newSecret() }));
  }

  /**
   * Deletes the webhook and its deliveries; an attempt in flight still finishes. With a
   * recorder, the answer is stored in the same transaction, so a retry replays it.
   */
  async remove(id: number, recorder?: Recorder<void>): Promise<void> {
    await this.store.transaction(async (tx) => {
      if (!(await this.store.deleteWebhook(tx, id))) throw notFound('webhook', id);
      await recorder?.record(tx, undefined);
    });
  }

  async deliveries(
    webhookId: number,
    query: { status?: DeliveryStatus; beforeId: number; limit: number },
  ): Promise<DeliveryPage> {
    await this.get(webhookId);
    // One row more than asked says whether another page follows, without a count.
    const rows = await this.store.listDeliveries({ webhookId, ...query, limit: query.limit + 1 });
    const deliveries = rows.slice(0, query.limit);
    return { deliveries, nextBeforeId: rows.length > query.limit ? deliveries[deliveries.length - 1]!.id : null };
  }

  /**
   * Makes a delivery pending and due now, whatever its status. One that may be in flight (due
   * within a lease) is left as it is, so that it is never sent twice at once.
   */
  retryDelivery(webhookId: number, deliveryId: number, recorder?: Recorder<DeliveryRow>): Promise<DeliveryRow> {
    const now = this.clock.now();
    const notBefore = new Date(now.getTime() + leaseMs(this.config));
    return this.store.transaction(async (tx) => {
      const delivery = await this.store.retryDelivery(tx, webhookId, deliveryId, now, notBefore);
      if (delivery === null) throw notFound(`delivery of webhook ${webhookId}`, deliveryId);
      await recorder?.record(tx, delivery);
      return delivery;
    });
  }

  private edit(
    id: number,
    recorder: Recorder<WebhookRow> | undefined,
    change: (webhook: WebhookRow) => WebhookRow,
  ): Promise<WebhookRow> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const webhook = await this.store.lockWebhook(tx, id);
      if (webhook === null) throw notFound('webhook', id);
      const edited = { ...change(webhook), updatedAt: now };
      await this.store.updateWebhook(tx, edited);
      await recorder?.record(tx, edited);
      return edited;
    });
  }
}

const unique = (types: ChangeType[]): ChangeType[] => [...new Set(types)];
