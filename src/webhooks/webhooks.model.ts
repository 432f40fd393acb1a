// Webhooks as the domain sees them: the rows the webhook service, its routes and the delivery
// worker work with. src/storage/webhooks.sql.ts reads and writes them.
//
// Glossary (tables in src/db/migrations/*/0003_change_feed.sql):
//   webhook    an endpoint that receives, signed, every change of the types it asked for, at
//              least once and in order per event. `last_position` is its fan-out cursor: the
//              changes up to there have their deliveries.
//   delivery   one change to send to one webhook, with its own copy of the change's JSON; sent
//              until a 2xx answers or WEBHOOK_RETRY_SECONDS after it was created have passed.
//   lease      a claimed delivery's next_attempt_at pushed past the attempt's deadline, so no
//              other worker takes it while it is in flight; `attempts` fences a late result.
import type { ChangeType } from '../model.ts';

export type WebhookStatus = 'active' | 'paused' | 'failed';
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookRow {
  id: number;
  url: string;
  /** The change types delivered; empty means every type. */
  eventTypes: ChangeType[];
  /** whsec_ and the base64 of the signing key. */
  secret: string;
  status: WebhookStatus;
  /** Deliveries that failed in a row (retries exhausted); a success resets it. */
  consecutiveFailures: number;
  lastPosition: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewWebhook {
  url: string;
  eventTypes: ChangeType[];
  secret: string;
  now: Date;
  /** Where its cursor starts: the log's published position when it was registered. */
  startAfter: number;
}

export interface DeliveryRow {
  id: number;
  webhookId: number;
  position: number;
  eventId: number;
  type: ChangeType;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastStatusCode: number | null;
  lastLatencyMs: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** A delivery about to be created by the fan-out. */
export interface NewDelivery {
  position: number;
  eventId: number;
  type: ChangeType;
  /** The change's JSON, exactly the body sent. */
  payload: string;
}

/** A due delivery, locked by a worker about to lease it. */
export interface DueDelivery {
  id: number;
  webhookId: number;
  payload: string;
  /** Attempts made so far. */
  attempts: number;
  createdAt: Date;
}

/** A due delivery a worker has leased, with what it needs to send it. */
export interface ClaimedDelivery extends DueDelivery {
  url: string;
  secret: string;
  /** Attempts including this one: the fencing token of this lease. */
  attempts: number;
}

/** What one attempt came to. */
export interface AttemptRecord {
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  now: Date;
}
