// Webhooks and their deliveries: the admin's reads and writes, the fan-out (changes to
// deliveries, per webhook, under its row lock) and the delivery worker's claims, leases and
// results. Lock order: a webhook row, then its deliveries. Claims lock only delivery rows, with
// `skip locked`, and read webhooks without locking them, so a claim never waits on a fan-out
// and N workers share the due deliveries without taking the same one.
import type { ChangeType } from '../model.ts';
import type {
  AttemptRecord,
  ClaimedDelivery,
  DeliveryRow,
  DueDelivery,
  DeliveryStatus,
  NewDelivery,
  NewWebhook,
  WebhookRow,
  WebhookStatus,
} from '../webhooks/webhooks.model.ts';
import type { SqlDatabase, Tx } from './sql.ts';

export interface DeliveryPageQuery {
  webhookId: number;
  status?: DeliveryStatus;
  /** Deliveries with a smaller id than this (newest first). */
  beforeId: number;
  limit: number;
}

export interface WebhookStore {
  /** Creates a webhook whose fan-out starts after the log's last position now. */
  insertWebhook(tx: Tx, webhook: NewWebhook): Promise<WebhookRow>;
  listWebhooks(): Promise<WebhookRow[]>;
  findWebhook(id: number): Promise<WebhookRow | null>;
  lockWebhook(tx: Tx, id: number): Promise<WebhookRow | null>;
  /** Writes a locked webhook's settings back. */
  updateWebhook(tx: Tx, webhook: WebhookRow): Promise<void>;
  deleteWebhook(tx: Tx, id: number): Promise<boolean>;

  listDeliveries(query: DeliveryPageQuery): Promise<DeliveryRow[]>;
  /**
   * Makes a delivery pending and due at `now`. A pending one due after `notBefore` is brought
   * forward; one due earlier is left alone, as it may be leased (in flight) right now.
   */
  retryDelivery(tx: Tx, webhookId: number, deliveryId: number, now: Date, notBefore: Date): Promise<DeliveryRow | null>;

  /** Active webhooks whose fan-out cursor is behind `position`; nothing locked. */
  webhooksBehind(position: number): Promise<Array<{ id: number; lastPosition: number }>>;
  /** Locks an active webhook for its fan-out, or null if it is locked already (or not active). */
  claimWebhookForFanOut(tx: Tx, id: number): Promise<{ eventTypes: ChangeType[]; lastPosition: number } | null>;
  /** Creates deliveries, skipping any that exist; returns how many it created. */
  insertDeliveries(tx: Tx, webhookId: number, deliveries: NewDelivery[], now: Date): Promise<number>;
  advanceWebhook(tx: Tx, id: number, lastPosition: number): Promise<void>;

  /**
   * Locks up to `limit` due deliveries of active webhooks, none of `exclude`, each the oldest
   * pending one of its (webhook, event), skipping rows other workers have locked.
   */
  lockDueDeliveries(tx: Tx, query: { now: Date; limit: number; exclude: number[] }): Promise<DueDelivery[]>;
  /** Leases locked deliveries until `until` and counts their attempt. */
  leaseDeliveries(tx: Tx, ids: number[], until: Date): Promise<void>;
  /** The URLs and secrets of these webhooks (those that still exist). */
  webhookTargets(tx: Tx, ids: number[]): Promise<Array<{ id: number; url: string; secret: string }>>;
  /** Records an attempt's outcome if the lease is still ours; false when it is not. */
  finishDelivery(
    delivery: Pick<ClaimedDelivery, 'id' | 'attempts'>,
    record: AttemptRecord,
    next: { status: 'succeeded' } | { status: 'failed' } | { status: 'pending'; at: Date },
  ): Promise<boolean>;
  resetWebhookFailures(id: number, now: Date): Promise<void>;
  /** Counts a failed delivery; the webhook is marked failed at `maxFailures` in a row. */
  countWebhookFailure(id: number, maxFailures: number, now: Date): Promise<void>;
  /** Deletes up to `limit` finished (succeeded or failed) deliveries created before `before`. */
  purgeDeliveries(before: Date, limit: number): Promise<number>;
}

interface WebhookRecord {
  id: number;
  url: string;
  event_types: string;
  secret: string;
  status: WebhookStatus;
  consecutive_failures: number;
  last_position: number;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRecord {
  id: number;
  webhook_id: number;
  position: number;
  event_id: number;
  type: ChangeType;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_status_code: number | null;
  last_latency_ms: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

const WEBHOOK_COLUMNS =
  'id, url, event_types, secret, status, consecutive_failures, last_position, created_at, updated_at';
const DELIVERY_COLUMNS =
  'id, webhook_id, position, event_id, type, status, attempts, next_attempt_at, last_status_code, ' +
  'last_latency_ms, last_error, created_at, delivered_at';

// Event types are stored as a comma-separated list; empty means every type.
const encodeTypes = (types: ChangeType[]): string => types.join(',');
const decodeTypes = (text: string): ChangeType[] => (text === '' ? [] : (text.split(',') as ChangeType[]));

const toWebhook = (row: WebhookRecord): WebhookRow => ({
  id: Number(row.id),
  url: row.url,
  eventTypes: decodeTypes(row.event_types),
  secret: row.secret,
  status: row.status,
  consecutiveFailures: Number(row.consecutive_failures),
  lastPosition: Number(row.last_position),
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toDelivery = (row: DeliveryRecord): DeliveryRow => ({
  id: Number(row.id),
  webhookId: Number(row.webhook_id),
  position: Number(row.position),
  eventId: Number(row.event_id),
  type: row.type,
  status: row.status,
  attempts: Number(row.attempts),
  nextAttemptAt: row.next_attempt_at,
  lastStatusCode: row.last_status_code,
  lastLatencyMs: row.last_latency_ms,
  lastError: row.last_error,
  createdAt: row.created_at,
  deliveredAt: row.delivered_at,
});

/** last_error is a varchar(1024) on MySQL. */
const MAX_ERROR_LENGTH = 1000;

export function webhookStatements(db: SqlDatabase): WebhookStore {
  const postgres = db.dialect === 'postgres';
  // Lists bound as one parameter: an array on PostgreSQL, expanded by mysql2 on MySQL.
  const inList = (column: string, n: number) =>
    postgres ? `${column} = any($${n}::bigint[])` : `${column} in ($${n})`;

  return {
    async insertWebhook(tx, webhook) {
      const params = [webhook.url, encodeTypes(webhook.eventTypes), webhook.secret, webhook.now, webhook.startAfter];
      const insert = `insert into webhooks (url, event_types, secret, status, consecutive_failures, last_position, created_at, updated_at)
                      values ($1, $2, $3, 'active', 0, $5, $4, $4)`;
      if (postgres) {
        const [row] = await tx.rows<WebhookRecord>(`${insert} returning ${WEBHOOK_COLUMNS}`, params);
        return toWebhook(row!);
      }
      const { insertId } = await tx.run(insert, params);
      const [row] = await tx.rows<WebhookRecord>(`select ${WEBHOOK_COLUMNS} from webhooks where id = $1`, [insertId]);
      return toWebhook(row!);
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

    async updateWebhook(tx, webhook) {
      await tx.run(
        `update webhooks
            set url = $2, event_types = $3, secret = $4, status = $5, consecutive_failures = $6, updated_at = $7
          where id = $1`,
        [
          webhook.id,
          webhook.url,
          encodeTypes(webhook.eventTypes),
          webhook.secret,
          webhook.status,
          webhook.consecutiveFailures,
          webhook.updatedAt,
        ],
      );
    },

    async deleteWebhook(tx, id) {
      const { affected } = await tx.run('delete from webhooks where id = $1', [id]);
      return affected > 0;
    },

    async listDeliveries({ webhookId, status, beforeId, limit }) {
      const rows =
        status === undefined
          ? await db.rows<DeliveryRecord>(
              `select ${DELIVERY_COLUMNS} from webhook_deliveries
                where webhook_id = $1 and id < $2 order by id desc limit $3`,
              [webhookId, beforeId, limit],
            )
          : await db.rows<DeliveryRecord>(
              `select ${DELIVERY_COLUMNS} from webhook_deliveries
                where webhook_id = $1 and id < $2 and status = $4 order by id desc limit $3`,
              [webhookId, beforeId, limit, status],
            );
      return rows.map(toDelivery);
    },

    async retryDelivery(tx, webhookId, deliveryId, now, notBefore) {
      const [row] = await tx.rows<DeliveryRecord>(
        `select ${DELIVERY_COLUMNS} from webhook_deliveries where id = $1 and webhook_id = $2 for update`,
        [deliveryId, webhookId],
      );
      if (row === undefined) return null;
      const delivery = toDelivery(row);
      if (delivery.status === 'pending' && delivery.nextAttemptAt <= notBefore) return delivery;
      await tx.run(`update webhook_deliveries set status = 'pending', next_attempt_at = $2 where id = $1`, [
        deliveryId,
        now,
      ]);
      return { ...delivery, status: 'pending', nextAttemptAt: now };
    },

    async webhooksBehind(position) {
      const rows = await db.rows<{ id: number; last_position: number }>(
        `select id, last_position from webhooks where status = 'active' and last_position < $1 order by id`,
        [position],
      );
      return rows.map((row) => ({ id: Number(row.id), lastPosition: Number(row.last_position) }));
    },

    async claimWebhookForFanOut(tx, id) {
      // skip locked: another worker fanning this webhook out has it, and will do this work.
      const [row] = await tx.rows<{ event_types: string; last_position: number }>(
        `select event_types, last_position from webhooks where id = $1 and status = 'active' for update skip locked`,
        [id],
      );
      return row === undefined
        ? null
        : { eventTypes: decodeTypes(row.event_types), lastPosition: Number(row.last_position) };
    },

    async insertDeliveries(tx, webhookId, deliveries, now) {
      if (deliveries.length === 0) return 0;
      if (postgres) {
        const { affected } = await tx.run(
          `insert into webhook_deliveries (webhook_id, position, event_id, type, payload, next_attempt_at, created_at)
           select $1::bigint, d.position, d.event_id, d.type, d.payload, $6::timestamptz, $6::timestamptz
             from unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[]) as d (position, event_id, type, payload)
           on conflict (webhook_id, position) do nothing`,
          [
            webhookId,
            deliveries.map((d) => d.position),
            deliveries.map((d) => d.eventId),
            deliveries.map((d) => d.type),
            deliveries.map((d) => d.payload),
            now,
          ],
        );
        return affected;
      }
      // Not `insert ignore`, which would also turn bad data into warnings.
      const { affected } = await tx.run(
        `insert into webhook_deliveries (webhook_id, position, event_id, type, payload, next_attempt_at, created_at)
         values $1 on duplicate key update id = id`,
        [deliveries.map((d) => [webhookId, d.position, d.eventId, d.type, d.payload, now, now])],
      );
      return affected;
    },

    async advanceWebhook(tx, id, lastPosition) {
      await tx.run('update webhooks set last_position = $2 where id = $1 and last_position < $2', [id, lastPosition]);
    },

    async lockDueDeliveries(tx, { now, limit, exclude }) {
      // The webhooks are read in subqueries, which lock nothing: a claim never waits on a
      // fan-out holding a webhook row. Only the oldest pending delivery of a (webhook, event) is
      // eligible; while it is leased it is still pending, so the next one waits behind it.
      const rows = await tx.rows<{
        id: number;
        webhook_id: number;
        payload: string;
        attempts: number;
        created_at: Date;
      }>(
        `select d.id, d.webhook_id, d.payload, d.attempts, d.created_at
           from webhook_deliveries d
          where d.status = 'pending' and d.next_attempt_at <= $1
            and d.webhook_id in (select w.id from webhooks w where w.status = 'active')
            and not ${inList('d.webhook_id', 3)}
            and not exists (select 1 from webhook_deliveries e
                             where e.webhook_id = d.webhook_id and e.event_id = d.event_id
                               and e.status = 'pending' and e.position < d.position)
          order by d.next_attempt_at, d.id
          limit $2
            for update skip locked`,
        // MySQL has no empty `in ()`; ids start at 1.
        [now, limit, exclude.length > 0 ? exclude : [0]],
      );
      return rows.map((row) => ({
        id: Number(row.id),
        webhookId: Number(row.webhook_id),
        payload: row.payload,
        attempts: Number(row.attempts),
        createdAt: row.created_at,
      }));
    },

    async leaseDeliveries(tx, ids, until) {
      if (ids.length === 0) return;
      await tx.run(
        `update webhook_deliveries set next_attempt_at = $1, attempts = attempts + 1 where ${inList('id', 2)}`,
        [until, ids],
      );
    },

    async webhookTargets(tx, ids) {
      if (ids.length === 0) return [];
      const rows = await tx.rows<{ id: number; url: string; secret: string }>(
        `select id, url, secret from webhooks where ${inList('id', 1)}`,
        [ids],
      );
      return rows.map((row) => ({ id: Number(row.id), url: row.url, secret: row.secret }));
    },

    async finishDelivery(delivery, record, next) {
      const error = record.error === null ? null : record.error.slice(0, MAX_ERROR_LENGTH);
      // `attempts` fences the lease: after a lease ran out and another worker took the delivery,
      // this late result changes nothing.
      const { affected } = await db.run(
        `update webhook_deliveries
            set status = $3, next_attempt_at = $4, delivered_at = $5,
                last_status_code = $6, last_latency_ms = $7, last_error = $8
          where id = $1 and attempts = $2 and status = 'pending'`,
        [
          delivery.id,
          delivery.attempts,
          next.status,
          next.status === 'pending' ? next.at : record.now,
          next.status === 'succeeded' ? record.now : null,
          record.statusCode,
          record.latencyMs,
          error,
        ],
      );
      return affected > 0;
    },

    async resetWebhookFailures(id, now) {
      // Most successes find the count at 0 already and write nothing.
      await db.run(
        'update webhooks set consecutive_failures = 0, updated_at = $2 where id = $1 and consecutive_failures <> 0',
        [id, now],
      );
    },

    async countWebhookFailure(id, maxFailures, now) {
      // `status` is assigned first: MySQL evaluates assignments left to right, and both
      // dialects then see the count before this failure.
      await db.run(
        `update webhooks
            set status = case when status = 'active' and consecutive_failures + 1 >= $2 then 'failed' else status end,
                consecutive_failures = consecutive_failures + 1,
                updated_at = $3
          where id = $1`,
        [id, maxFailures, now],
      );
    },

    async purgeDeliveries(before, limit) {
      // Bounded, and skip-locked on PostgreSQL, so a purge never waits on a claim or holds many
      // rows at once. Pending deliveries are never purged: they are still owed.
      const { affected } = await db.run(
        postgres
          ? `delete from webhook_deliveries
              where id in (select id from webhook_deliveries
                            where status <> 'pending' and created_at < $1
                            limit $2
                              for update skip locked)`
          : `delete from webhook_deliveries where status <> 'pending' and created_at < $1 limit $2`,
        [before, limit],
      );
      return affected;
    },
  };
}
