// Staff routes for webhooks: register, list, read, edit, delete, rotate the secret, the
// attempts made at one, and a way to retry its head batch now. The secret is in the answer of POST
// /webhooks and of rotate-secret only.
import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import { DomainError } from '../errors.ts';
import { BODY_ERRORS, IdParams, Timestamp, problems } from '../http/schemas.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import { CHANGE_TYPES } from '../model.ts';
import { type AttemptRow, CONTENT_ENCODINGS, type ContentEncoding, type WebhookRow } from './webhooks.model.ts';
import type { WebhooksService } from './webhooks.service.ts';

const PAGE_SIZE_DEFAULT = 20;

const Url = Type.String({ minLength: 1, maxLength: 2048, description: 'http:// or https:// URL of the endpoint' });
const EventTypes = Type.Array(Type.String({ enum: [...CHANGE_TYPES] }), {
  maxItems: CHANGE_TYPES.length * 2,
  description: 'The change types to deliver; empty or omitted means every type',
});

const ContentEncodingField = Type.String({
  enum: [...CONTENT_ENCODINGS],
  description:
    'identity (the default): batches are plain JSON. gzip: compressed, with Content-Encoding: gzip, about a ' +
    'tenth of the bytes under a sale; the signature is over the JSON, so the receiver inflates before it verifies',
});

const CreateWebhookBody = Type.Object(
  { url: Url, event_types: Type.Optional(EventTypes), content_encoding: Type.Optional(ContentEncodingField) },
  { additionalProperties: false },
);

const UpdateWebhookBody = Type.Object(
  {
    url: Type.Optional(Url),
    event_types: Type.Optional(EventTypes),
    content_encoding: Type.Optional(ContentEncodingField),
    status: Type.Optional(
      Type.String({
        enum: ['active', 'paused'],
        description: 'paused holds deliveries back; active resumes them, and revives a failed endpoint',
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const webhookFields = {
  webhook_id: Type.Integer(),
  url: Type.String(),
  event_types: Type.Array(Type.String()),
  content_encoding: Type.String({ enum: [...CONTENT_ENCODINGS] }),
  status: Type.String({
    enum: ['active', 'paused', 'failed'],
    description: `failed: WEBHOOK_MAX_CONSECUTIVE_FAILURES batches were given up on in a row; nothing more is sent until it is set active (or retried)`,
  }),
  consecutive_failures: Type.Integer({ description: 'Batches given up on in a row; a success resets it' }),
  cursor_position: Type.String({
    pattern: '^[0-9]+$',
    description:
      'Changes up to this position were delivered (a 2xx answered) or given up on; the next request starts after it',
  }),
  attempts: Type.Integer({ description: 'Failed attempts at the batch now at the head; 0 after a success' }),
  next_attempt_at: Type.Union([Timestamp, Type.Null()], {
    description: 'When the head batch is tried next, if it is waiting after a failure (null otherwise)',
  }),
  last_attempt_at: NullableTimestamp,
  last_success_at: NullableTimestamp,
  last_status_code: Type.Union([Type.Integer(), Type.Null()]),
  last_latency_ms: Type.Union([Type.Integer(), Type.Null()]),
  last_error: Type.Union([Type.String(), Type.Null()], {
    description: 'Why the last attempt failed; null after a 2xx',
  }),
  created_at: Timestamp,
  updated_at: Timestamp,
};
const Webhook = Type.Object(webhookFields);
const WebhookWithSecret = Type.Object({
  ...webhookFields,
  secret: Type.String({
    description: 'whsec_ and the base64 of the signing key. Shown only now: keep it to verify webhook-signature',
  }),
});

const Attempt = Type.Object({
  attempt_id: Type.Integer(),
  webhook_id: Type.Integer(),
  first_position: Type.String({ pattern: '^[0-9]+$', description: "The position of the batch's first change" }),
  last_position: Type.String({
    pattern: '^[0-9]+$',
    description: 'The cursor after this batch (its last change, or a later position none of whose changes were wanted)',
  }),
  change_count: Type.Integer({ description: 'Changes in the request' }),
  outcome: Type.String({
    enum: ['succeeded', 'retrying', 'failed'],
    description: 'succeeded: 2xx; retrying: failed, tried again later; failed: failed, and the batch given up on',
  }),
  status_code: Type.Union([Type.Integer(), Type.Null()]),
  latency_ms: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  at: Timestamp,
});

const AttemptQuery = Type.Object(
  {
    // Query strings are text and are not coerced, so numbers are checked by pattern.
    limit: Type.Optional(
      Type.String({
        pattern: '^([1-9]|[1-9][0-9]|100)$',
        description: `a whole number from 1 to 100 (default ${PAGE_SIZE_DEFAULT})`,
      }),
    ),
    cursor: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$', description: 'the next_cursor of a previous page' }),
    ),
  },
  { additionalProperties: false },
);

const AttemptPage = Type.Object({
  attempts: Type.Array(Attempt),
  next_cursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as ?cursor= for the next page; null on the last',
  }),
});

const iso = (date: Date | null) => date?.toISOString() ?? null;
const webhookBody = (webhook: WebhookRow) => ({
  webhook_id: webhook.id,
  url: webhook.url,
  event_types: webhook.eventTypes,
  content_encoding: webhook.contentEncoding,
  status: webhook.status,
  consecutive_failures: webhook.consecutiveFailures,
  cursor_position: String(webhook.cursorPosition),
  attempts: webhook.attempts,
  next_attempt_at: webhook.attempts > 0 ? webhook.nextAttemptAt.toISOString() : null,
  last_attempt_at: iso(webhook.lastAttemptAt),
  last_success_at: iso(webhook.lastSuccessAt),
  last_status_code: webhook.lastStatusCode,
  last_latency_ms: webhook.lastLatencyMs,
  last_error: webhook.lastError,
  created_at: webhook.createdAt.toISOString(),
  updated_at: webhook.updatedAt.toISOString(),
});
const withSecret = (status: number) => (webhook: WebhookRow) => ({
  status,
  body: { ...webhookBody(webhook), secret: webhook.secret },
});
const edited = (webhook: WebhookRow): Rendered => ({ status: 200, body: webhookBody(webhook) });
const deleted = (): Rendered => ({ status: 204, body: null });

const attemptBody = (attempt: AttemptRow) => ({
  attempt_id: attempt.id,
  webhook_id: attempt.webhookId,
  first_position: String(attempt.firstPosition),
  last_position: String(attempt.lastPosition),
  change_count: attempt.changeCount,
  outcome: attempt.outcome,
  status_code: attempt.statusCode,
  latency_ms: attempt.latencyMs,
  error: attempt.error,
  at: attempt.at.toISOString(),
});

// The cursor is opaque to clients, so its encoding can change without breaking them.
const encodeCursor = (beforeId: number): string => Buffer.from(`a:${beforeId}`).toString('base64url');
function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return Number.MAX_SAFE_INTEGER;
  const match = /^a:([1-9][0-9]{0,14})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (match === null) {
    throw new DomainError('validation_failed', 'request querystring is invalid', {
      errors: [{ path: 'querystring/cursor', message: 'is not a cursor this service issued' }],
    });
  }
  return Number(match[1]);
}

export async function webhookRoutes(
  app: App,
  { webhooks, requireAdmin }: { webhooks: WebhooksService; requireAdmin: AdminGuard },
): Promise<void> {
  const admin = { onRequest: requireAdmin };
  const doc = { tags: ['webhooks'], security: [{ adminBearer: [] }] };

  app.post(
    '/webhooks',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'Register a webhook endpoint',
        description:
          'The endpoint receives every change made from now on (of the types asked for), signed with the ' +
          'Standard Webhooks scheme, in batches of changes in position order, at least once. The secret is in ' +
          'this answer only. ' +
          'A URL that is not http(s), or that resolves to a private, loopback or link-local address, is refused ' +
          '(400 webhook_url_refused) unless WEBHOOK_ALLOW_PRIVATE_URLS is set.',
        body: CreateWebhookBody,
        response: { 201: WebhookWithSecret, ...problems(...BODY_ERRORS, 'unauthorized', 'webhook_url_refused') },
      },
    },
    async (request, reply) => {
      const { url, event_types, content_encoding } = request.body;
      const render = withSecret(201);
      const webhook = await webhooks.create(
        url,
        (event_types ?? []) as WebhookRow['eventTypes'],
        (content_encoding ?? 'identity') as ContentEncoding,
        recorderFor(request, render),
      );
      return sendRendered(reply, render(webhook));
    },
  );

  app.get(
    '/webhooks',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'Every webhook endpoint, without secrets',
        response: { 200: Type.Object({ webhooks: Type.Array(Webhook) }), ...problems('unauthorized') },
      },
    },
    async () => ({ webhooks: (await webhooks.list()).map(webhookBody) }),
  );

  app.get(
    '/webhooks/:id',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'One webhook endpoint, without its secret',
        params: IdParams,
        response: { 200: Webhook, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request) => webhookBody(await webhooks.get(Number(request.params.id))),
  );

  app.patch(
    '/webhooks/:id',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'Change the URL, event types or content encoding, pause or resume',
        description:
          'A paused endpoint gets nothing until it is set active again; it then receives what happened meanwhile ' +
          '(while the change log keeps it). Setting a failed endpoint active resets its failure count.',
        params: IdParams,
        body: UpdateWebhookBody,
        response: {
          200: Webhook,
          ...problems(...BODY_ERRORS, 'unauthorized', 'not_found', 'webhook_url_refused'),
        },
      },
    },
    async (request, reply) => {
      const { url, event_types, content_encoding, status } = request.body;
      const webhook = await webhooks.update(
        Number(request.params.id),
        {
          ...(url === undefined ? {} : { url }),
          ...(event_types === undefined ? {} : { eventTypes: event_types as WebhookRow['eventTypes'] }),
          ...(content_encoding === undefined ? {} : { contentEncoding: content_encoding as ContentEncoding }),
          ...(status === undefined ? {} : { status: status as 'active' | 'paused' }),
        },
        recorderFor(request, edited),
      );
      return sendRendered(reply, edited(webhook));
    },
  );

  app.delete(
    '/webhooks/:id',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'Delete a webhook endpoint and its attempts',
        description: 'Deleting it again answers 404; a retry with the same Idempotency-Key replays the 204 instead.',
        params: IdParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...problems('validation_failed', 'unauthorized', 'not_found'),
        },
      },
    },
    async (request, reply) => {
      await webhooks.remove(Number(request.params.id), recorderFor(request, deleted));
      return sendRendered(reply, deleted());
    },
  );

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'Replace the signing secret',
        description: 'The new secret is in this answer only, and signs every attempt from now on.',
        params: IdParams,
        response: { 200: WebhookWithSecret, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request, reply) => {
      const render = withSecret(200);
      const webhook = await webhooks.rotateSecret(Number(request.params.id), recorderFor(request, render));
      return sendRendered(reply, render(webhook));
    },
  );

  app.get(
    '/webhooks/:id/attempts',
    {
      ...admin,
      schema: {
        ...doc,
        summary: "A webhook's attempts (one per request), newest first, a page at a time",
        description: `Kept CHANGE_RETENTION_SECONDS. The endpoint's current state (cursor, attempts at the head batch, last error) is on GET /webhooks/:id.`,
        params: IdParams,
        querystring: AttemptQuery,
        response: { 200: AttemptPage, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const page = await webhooks.attempts(Number(request.params.id), {
        beforeId: decodeCursor(cursor),
        limit: Number(limit ?? PAGE_SIZE_DEFAULT),
      });
      return {
        attempts: page.attempts.map(attemptBody),
        next_cursor: page.nextBeforeId === null ? null : encodeCursor(page.nextBeforeId),
      };
    },
  );

  app.post(
    '/webhooks/:id/retry',
    {
      ...admin,
      schema: {
        ...doc,
        summary: 'Try the head batch now',
        description:
          'The batch waiting after a failure is tried now instead of at its next backoff; a failed endpoint is set ' +
          'active again with a fresh count of failures (a paused one stays paused). A batch in flight right now is ' +
          'left to finish.',
        params: IdParams,
        response: { 200: Webhook, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request, reply) => {
      const webhook = await webhooks.retry(Number(request.params.id), recorderFor(request, edited));
      return sendRendered(reply, edited(webhook));
    },
  );
}
