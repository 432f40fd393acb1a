// Webhooks as the domain sees them: the rows the webhook service, its routes and the delivery
// worker work with. src/storage/webhooks.sql.ts reads and writes them.
//
// Glossary (tables in src/db/migrations/*/0003_change_feed.sql and 0007_webhook_cursor.sql):
//   webhook    an endpoint that receives, signed, every change of the types it asked for, at
//              least once and in order, in batches.
//   cursor     `cursor_position`: the changes up to there were delivered (a 2xx answered) or
//              given up on. Delivery state is this cursor, not a row per change.
//   head batch the next request: the changes after the cursor up to `batch_last_position`,
//              fixed when first chosen so that every retry sends the same changes under the same
//              webhook-id. Null until chosen (and after each success).
//   lease      `lease_until` and `lease_owner`: the worker sending the head batch. Only one
//              batch per endpoint is in flight, which keeps the order; the owner token fences a
//              late result after the lease ran out and another worker took over.
//   attempt    one HTTP request, kept in webhook_attempts for staff (purged by age).
import type { ChangeType } from '../model.ts';

export type WebhookStatus = 'active' | 'paused' | 'failed';
/**
 * How an endpoint takes its batches: plain JSON, or gzip-compressed with Content-Encoding: gzip.
 * The signature is over the JSON either way: a receiver inflates, then verifies.
 */
export type ContentEncoding = 'identity' | 'gzip';
export const CONTENT_ENCODINGS: readonly ContentEncoding[] = ['identity', 'gzip'];
export type AttemptOutcome = 'succeeded' | 'retrying' | 'failed';

export interface WebhookRow {
  id: number;
  url: string;
  /** The change types delivered; empty means every type. */
  eventTypes: ChangeType[];
  /** whsec_ and the base64 of the signing key. */
  secret: string;
  contentEncoding: ContentEncoding;
  status: WebhookStatus;
  /** Batches given up on in a row (retries exhausted); a success resets it. */
  consecutiveFailures: number;
  /** Changes up to here were delivered (or given up on). */
  cursorPosition: number;
  /** The head batch's last position, once chosen. */
  batchLastPosition: number | null;
  /** Failed attempts at the head batch. */
  attempts: number;
  nextAttemptAt: Date;
  leaseUntil: Date | null;
  lastAttemptAt: Date | null;
  lastSuccessAt: Date | null;
  lastStatusCode: number | null;
  lastLatencyMs: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** The settings staff edit. */
export type WebhookSettings = Pick<
  WebhookRow,
  'id' | 'url' | 'eventTypes' | 'secret' | 'contentEncoding' | 'status' | 'consecutiveFailures' | 'updatedAt'
>;

export interface NewWebhook {
  url: string;
  eventTypes: ChangeType[];
  secret: string;
  contentEncoding: ContentEncoding;
  now: Date;
  /** Where its cursor starts: the log's published position when it was registered. */
  startAfter: number;
}

/** An endpoint a worker has leased, with what it needs to send its head batch. */
export interface ClaimedEndpoint {
  id: number;
  url: string;
  secret: string;
  eventTypes: ChangeType[];
  contentEncoding: ContentEncoding;
  cursorPosition: number;
  batchLastPosition: number | null;
  attempts: number;
  /** Fences every write of this lease. */
  leaseOwner: string;
}

/** One HTTP attempt at a batch, as kept for staff. */
export interface AttemptRow {
  id: number;
  webhookId: number;
  firstPosition: number;
  lastPosition: number;
  changeCount: number;
  outcome: AttemptOutcome;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  at: Date;
}

export type NewAttempt = Omit<AttemptRow, 'id'>;
