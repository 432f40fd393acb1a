// Webhooks: the admin's reads and writes, and the delivery worker's claims, leases and results.
// An endpoint's delivery state is a cursor over the change log and a head batch, on its own row
// (see src/webhooks/webhooks.model.ts); webhook_attempts keeps one row per HTTP attempt for
// staff. Claims lock webhook rows with `skip locked` for one short transaction and lease them:
// N workers share the due endpoints and never take the same one. Every write of a lease is
// fenced by its owner token, so a late result after the lease ran out changes nothing.
import type { ChangeType } from '../model.ts';
import type {
  AttemptRow,
  ContentEncoding,
  ClaimedEndpoint,
  NewAttempt,
  NewWebhook,
  WebhookRow,
  WebhookSettings,
  WebhookStatus,
} from '../webhooks/webhooks.model.ts';
import { type SqlDatabase, type Tx, theRow } from './sql.ts';

export interface AttemptPageQuery {
  webhookId: number;
  /** Attempts with a smaller id than this (newest first). */
  beforeId: number;
  limit: number;
}

/**
 * Where the lease goes once a batch is recorded: with `lastPosition` the next head batch's end is
 * fixed in the same write (null: none chosen yet) and the lease runs on to `leaseUntil`, if the
 * endpoint is still active; without it (null) the lease is given back.
 */
export type NextBatch = { lastPosition: number | null; leaseUntil: Date } | null;

/** What an attempt at the head batch came to, as the worker records it on the endpoint. */
export type BatchResult =
  /** Delivered: the cursor moves to `lastPosition`. */
  | { kind: 'succeeded'; lastPosition: number; next: NextBatch }
  /** Nothing in the batch was wanted (no attempt): the cursor moves on. */
  | { kind: 'skipped'; lastPosition: number; next: NextBatch }
  /** Failed: tried again at `at`; the lease is released. */
  | { kind: 'retrying'; at: Date }
  /** Failed past WEBHOOK_RETRY_SECONDS: the batch is given up on, the cursor moves on, and the endpoint is failed at `maxFailures` in a row. */
  | { kind: 'failed'; lastPosition: number; maxFailures: number };

export interface WebhookStore {
  /** Creates a webhook whose cursor is the log's last position now. */
  insertWebhook(tx: Tx, webhook: NewWebhook): Promise<WebhookRow>;
  listWebhooks(): Promise<WebhookRow[]>;
  findWebhook(id: number): Promise<WebhookRow | null>;
  lockWebhook(tx: Tx, id: number): Promise<WebhookRow | null>;
  /**
   * Writes a locked webhook's settings back. With `resetBatch` (the event types changed) the head
   * batch is chosen again, unless it is in flight.
   */
  updateWebhook(tx: Tx, webhook: WebhookSettings, options?: { resetBatch?: boolean; now?: Date }): Promise<void>;
  /** Makes a locked webhook's head batch due now (unless it is in flight), and a failed one active. */
  retryWebhook(tx: Tx, id: number, now: Date): Promise<void>;
  deleteWebhook(tx: Tx, id: number): Promise<boolean>;
  listAttempts(query: AttemptPageQuery): Promise<AttemptRow[]>;

  /**
   * Leases up to `limit` active endpoints that are due (no failed attempt at the head batch, or
   * its backoff is over), not leased, and behind `head`, in one
   * transaction (skip locked), until `leaseUntil`, under `owner`.
   */
  claimEndpoints(query: {
    now: Date;
    head: number;
    limit: number;
    owner: string;
    leaseUntil: Date;
  }): Promise<ClaimedEndpoint[]>;
  /**
   * Fixes the head batch's end and extends the lease; false when the lease is no longer ours or
   * the endpoint is no longer active (paused, failed, deleted): then nothing is sent.
   */
  startBatch(id: number, owner: string, batchLastPosition: number, leaseUntil: Date): Promise<boolean>;
  /**
   * Records the head batch's outcome on the endpoint, and its attempt row, if the lease is still
   * ours; false when not, and false when a next batch was asked for and the endpoint is no longer
   * active (then nothing more is sent). One statement on PostgreSQL, so that a busy endpoint costs
   * one write per batch: the last batch's result and the next one's end together.
   */
  finishBatch(id: number, owner: string, result: BatchResult, attempt: NewAttempt | null): Promise<boolean>;
  /** Gives the lease back (nothing more to send now). */
  releaseLease(id: number, owner: string): Promise<void>;
  /** Deletes up to `limit` attempts made before `before`. */
  purgeAttempts(before: Date, limit: number): Promise<number>;
}

interface WebhookRecord {
  id: number;
  url: string;
  event_types: string;
  secret: string;
  content_encoding: ContentEncoding;
  status: WebhookStatus;
  consecutive_failures: number;
  cursor_position: number;
  batch_last_position: number | null;
  attempts: number;
  next_attempt_at: Date;
  lease_until: Date | null;
  last_attempt_at: Date | null;
  last_success_at: Date | null;
  last_status_code: number | null;
  last_latency_ms: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

interface AttemptRecord {
  id: number;
  webhook_id: number;
  first_position: number;
  last_position: number;
  change_count: number;
  outcome: AttemptRow['outcome'];
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  at: Date;
}

const WEBHOOK_COLUMNS =
  'id, url, event_types, secret, content_encoding, status, consecutive_failures, cursor_position, batch_last_position, attempts, ' +
  'next_attempt_at, lease_until, last_attempt_at, last_success_at, last_status_code, last_latency_ms, last_error, ' +
  'created_at, updated_at';
const ATTEMPT_COLUMNS =
  'id, webhook_id, first_position, last_position, change_count, outcome, status_code, latency_ms, error, at';

// Event types are stored as a comma-separated list; empty means every type.
const encodeTypes = (types: ChangeType[]): string => types.join(',');
const decodeTypes = (text: string): ChangeType[] => (text === '' ? [] : (text.split(',') as ChangeType[]));
const numberOrNull = (value: number | string | null): number | null => (value === null ? null : Number(value));

const toWebhook = (row: WebhookRecord): WebhookRow => ({
  id: Number(row.id),
  url: row.url,
  eventTypes: decodeTypes(row.event_types),
  secret: row.secret,
  contentEncoding: row.content_encoding,
  status: row.status,
  consecutiveFailures: Number(row.consecutive_failures),
  cursorPosition: Number(row.cursor_position),
  batchLastPosition: numberOrNull(row.batch_last_position),
  attempts: Number(row.attempts),
  nextAttemptAt: row.next_attempt_at,
  leaseUntil: row.lease_until,
  lastAttemptAt: row.last_attempt_at,
  lastSuccessAt: row.last_success_at,
  lastStatusCode: numberOrNull(row.last_status_code),
  lastLatencyMs: numberOrNull(row.last_latency_ms),
  lastError: row.last_error,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toAttempt = (row: AttemptRecord): AttemptRow => ({
  id: Number(row.id),
  webhookId: Number(row.webhook_id),
  firstPosition: Number(row.first_position),
  lastPosition: Number(row.last_position),
  changeCount: Number(row.change_count),
  outcome: row.outcome,
  statusCode: numberOrNull(row.status_code),
  latencyMs: Number(row.latency_ms),
  error: row.error,
  at: row.at,
});

/** Errors are varchar(1024) on MySQL. */
const MAX_ERROR_LENGTH = 1000;
const clip = (error: string | null) => (error === null ? null : error.slice(0, MAX_ERROR_LENGTH));

export function webhookStatements(db: SqlDatabase): WebhookStore {
  const postgres = db.dialect === 'postgres';
  // Lists bound as one parameter: an array on PostgreSQL, expanded by mysql2 on MySQL.
  const inList = (column: string, n: number) =>
    postgres ? `${column} = any($${n}::bigint[])` : `${column} in ($${n})`;

  async function startBatch(id: number, owner: string, batchLastPosition: number, leaseUntil: Date): Promise<boolean> {
    const { affected } = await db.run(
      `update webhooks set batch_last_position = $3, lease_until = $4
        where id = $1 and lease_owner = $2 and status = 'active'`,
      [id, owner, batchLastPosition, leaseUntil],
    );
    return affected > 0;
  }

  async function releaseLease(id: number, owner: string): Promise<void> {
    await db.run('update webhooks set lease_until = null, lease_owner = null where id = $1 and lease_owner = $2', [
      id,
      owner,
    ]);
  }

  async function insertAttempt(attempt: NewAttempt): Promise<void> {
    await db.run(
      `insert into webhook_attempts
         (webhook_id, first_position, last_position, change_count, outcome, status_code, latency_ms, error, at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        attempt.webhookId,
        attempt.firstPosition,
        attempt.lastPosition,
        attempt.changeCount,
        attempt.outcome,
        attempt.statusCode,
        attempt.latencyMs,
        clip(attempt.error),
        attempt.at,
      ],
    );
  }

  return {
    async insertWebhook(tx, webhook) {
      const params = [
        webhook.url,
        encodeTypes(webhook.eventTypes),
        webhook.secret,
        webhook.now,
        webhook.startAfter,
        webhook.contentEncoding,
      ];
      const insert = `insert into webhooks (url, event_types, secret, content_encoding, status, consecutive_failures,
                                            cursor_position, next_attempt_at, created_at, updated_at)
                      values ($1, $2, $3, $6, 'active', 0, $5, $4, $4, $4)`;
      if (postgres) {
        return toWebhook(theRow(await tx.rows<WebhookRecord>(`${insert} returning ${WEBHOOK_COLUMNS}`, params)));
      }
      const { insertId } = await tx.run(insert, params);
      return toWebhook(
        theRow(await tx.rows<WebhookRecord>(`select ${WEBHOOK_COLUMNS} from webhooks where id = $1`, [insertId])),
      );
    },

    async listWebhooks() {
      const rows = await db.rows<WebhookRecord>(`select ${WEBHOOK_COLUMNS} from webhooks order by id`);
      return rows.map(toWebhook);
    },

    async findWebhook(id) {
      const [row] = await db.rows<WebhookRecord>(`select ${WEBHOOK_COLUMNS} from webhooks where id = $1`, [id]);
      return row === undefined ? null : toWebhook(row);
    },

    async lockWebhook(tx, id) {
      const [row] = await tx.rows<WebhookRecord>(`select ${WEBHOOK_COLUMNS} from webhooks where id = $1 for update`, [
        id,
      ]);
      return row === undefined ? null : toWebhook(row);
    },

    async updateWebhook(tx, webhook, { resetBatch = false, now } = {}) {
      await tx.run(
        `update webhooks
            set url = $2, event_types = $3, secret = $4, status = $5, consecutive_failures = $6, updated_at = $7,
                content_encoding = $9,
                batch_last_position = case when $8 and (lease_until is null or lease_until <= $7)
                                           then null else batch_last_position end
          where id = $1`,
        [
          webhook.id,
          webhook.url,
          encodeTypes(webhook.eventTypes),
          webhook.secret,
          webhook.status,
          webhook.consecutiveFailures,
          now ?? webhook.updatedAt,
          resetBatch,
          webhook.contentEncoding,
        ],
      );
    },

    async retryWebhook(tx, id, now) {
      // In flight (leased): it is being tried right now; only its status changes. status is set
      // last: MySQL's later assignments see the earlier ones' new values.
      await tx.run(
        `update webhooks
            set consecutive_failures = case when status = 'failed' then 0 else consecutive_failures end,
                next_attempt_at = case when lease_until is null or lease_until <= $2 then $2 else next_attempt_at end,
                updated_at = $2,
                status = case when status = 'failed' then 'active' else status end
          where id = $1`,
        [id, now],
      );
    },

    async deleteWebhook(tx, id) {
      const { affected } = await tx.run('delete from webhooks where id = $1', [id]);
      return affected > 0;
    },

    async listAttempts({ webhookId, beforeId, limit }) {
      const rows = await db.rows<AttemptRecord>(
        `select ${ATTEMPT_COLUMNS} from webhook_attempts
          where webhook_id = $1 and id < $2 order by id desc limit $3`,
        [webhookId, beforeId, limit],
      );
      return rows.map(toAttempt);
    },

    async claimEndpoints({ now, head, limit, owner, leaseUntil }) {
      return db.transaction(async (tx) => {
        const rows = await tx.rows<{
          id: number;
          url: string;
          secret: string;
          event_types: string;
          content_encoding: ContentEncoding;
          cursor_position: number;
          batch_last_position: number | null;
          attempts: number;
        }>(
          `select id, url, secret, event_types, content_encoding, cursor_position, batch_last_position, attempts
             from webhooks
            where status = 'active' and (attempts = 0 or next_attempt_at <= $1)
              and (lease_until is null or lease_until <= $1)
              and cursor_position < $2
            order by next_attempt_at, id
            limit $3
              for update skip locked`,
          [now, head, limit],
        );
        if (rows.length === 0) return [];
        const ids = rows.map((row) => Number(row.id));
        await tx.run(`update webhooks set lease_until = $1, lease_owner = $2 where ${inList('id', 3)}`, [
          leaseUntil,
          owner,
          ids,
        ]);
        return rows.map((row) => ({
          id: Number(row.id),
          url: row.url,
          secret: row.secret,
          eventTypes: decodeTypes(row.event_types),
          contentEncoding: row.content_encoding,
          cursorPosition: Number(row.cursor_position),
          batchLastPosition: numberOrNull(row.batch_last_position),
          attempts: Number(row.attempts),
          leaseOwner: owner,
        }));
      });
    },

    startBatch,

    async finishBatch(id, owner, result, attempt) {
      if ((result.kind === 'skipped') !== (attempt === null)) {
        throw new Error(`a ${result.kind} batch needs ${result.kind === 'skipped' ? 'no attempt' : 'its attempt'}`);
      }
      // $1 id, $2 owner, $3 to $6 the attempt (when there is one), then the result's.
      const params: unknown[] = [id, owner];
      if (attempt !== null) params.push(attempt.at, attempt.statusCode, attempt.latencyMs, clip(attempt.error));
      const lastAttempt = 'last_attempt_at = $3, last_status_code = $4, last_latency_ms = $5, last_error = $6';
      const n = params.length;
      let set: string;
      let next: NextBatch = null;
      switch (result.kind) {
        case 'succeeded':
        case 'skipped': {
          next = result.next;
          params.push(result.lastPosition);
          let lease = 'batch_last_position = null, lease_until = null, lease_owner = null';
          if (next !== null && postgres) {
            // Fenced as startBatch is: an endpoint no longer active gets no next batch and no lease.
            params.push(next.lastPosition, next.leaseUntil);
            lease = `batch_last_position = case when status = 'active' then $${n + 2}::bigint end,
                     lease_until = case when status = 'active' then $${n + 3}::timestamptz end,
                     lease_owner = case when status = 'active' then lease_owner end`;
          } else if (next !== null) {
            // MySQL: the lease runs on, and startBatch below fixes the next batch, fenced.
            params.push(next.leaseUntil);
            lease = `batch_last_position = null, lease_until = $${n + 2}`;
          }
          set = `cursor_position = $${n + 1}, attempts = 0, ${lease}`;
          if (result.kind === 'succeeded') set += `, consecutive_failures = 0, last_success_at = $3, ${lastAttempt}`;
          break;
        }
        case 'retrying':
          params.push(result.at);
          set = `attempts = attempts + 1, next_attempt_at = $${n + 1}, lease_until = null, lease_owner = null,
                 ${lastAttempt}`;
          break;
        case 'failed':
          // `status` is assigned first: MySQL evaluates assignments left to right, and both
          // dialects then see the count before this failure.
          params.push(result.lastPosition, result.maxFailures);
          set = `status = case when status = 'active' and consecutive_failures + 1 >= $${n + 2}
                               then 'failed' else status end,
                 consecutive_failures = consecutive_failures + 1,
                 cursor_position = $${n + 1}, batch_last_position = null, attempts = 0, next_attempt_at = $3,
                 lease_until = null, lease_owner = null, ${lastAttempt}`;
          break;
      }
      const update = `update webhooks set ${set} where id = $1 and lease_owner = $2`;
      if (postgres) {
        // The attempt row is written only when the update matched: while the lease was ours.
        const a = params.length;
        if (attempt !== null) {
          params.push(attempt.firstPosition, attempt.lastPosition, attempt.changeCount, attempt.outcome);
        }
        const [row] = await db.writeRows<{ status: WebhookStatus }>(
          attempt === null
            ? `${update} returning status`
            : `with moved as (${update} returning status),
                    recorded as (
                      insert into webhook_attempts
                        (webhook_id, first_position, last_position, change_count, outcome, status_code, latency_ms,
                         error, at)
                      select $1, $${a + 1}, $${a + 2}, $${a + 3}, $${a + 4}, $4, $5, $6, $3 from moved)
               select status from moved`,
          params,
        );
        return row !== undefined && (next === null || row.status === 'active');
      }
      const { affected } = await db.run(update, params);
      if (affected === 0) return false;
      if (attempt !== null) await insertAttempt(attempt);
      if (next === null) return true;
      if (next.lastPosition !== null && (await startBatch(id, owner, next.lastPosition, next.leaseUntil))) return true;
      const [row] = await db.rows<{ status: WebhookStatus }>('select status from webhooks where id = $1', [id]);
      if (row?.status === 'active') return next.lastPosition === null;
      // No longer active: the lease goes back, as on PostgreSQL.
      await releaseLease(id, owner);
      return false;
    },

    releaseLease,

    async purgeAttempts(before, limit) {
      // Bounded, so a purge never holds many rows at once.
      const { affected } = await db.run(
        postgres
          ? `delete from webhook_attempts
              where id in (select id from webhook_attempts where at < $1 limit $2 for update skip locked)`
          : `delete from webhook_attempts where at < $1 limit $2`,
        [before, limit],
      );
      return affected;
    },
  };
}
