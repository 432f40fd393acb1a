import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { normalizeCustomer } from '../customer.ts';
import { DomainError } from '../errors.ts';
import type { QueueService } from '../admission/queue.service.ts';
import { CursorQuery, NextCursor, decodeCursor, encodeCursor } from '../http/cursor.ts';
import { BODY_ERRORS, CustomerText, IdParams, Timestamp, problems } from '../http/schemas.ts';
import type { AdminGuard, App } from '../http/types.ts';
import { WAITLIST_MAX_QTY } from './offers.ts';
import type { EntryView, StaffEntry, WaitlistService } from './waitlist.service.ts';

const STATUSES = ['waiting', 'offered', 'converted', 'expired', 'left', 'removed'];
const PAGE_SIZE_DEFAULT = 50;

const Joined = Type.Object({
  entry_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  secret: Type.String({
    description: 'Proves the entry is yours: send it in Waitlist-Secret to read or leave it. Shown only once',
  }),
  position: Type.Integer({ description: 'Place in line: 1 is next; 0 when already offered seats' }),
});

const Entry = Type.Object({
  entry_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  status: Type.String({
    enum: STATUSES,
    description: "'expired' as soon as an offer's deadline passes, whether or not the sweeper has run",
  }),
  position: Type.Union([Type.Integer(), Type.Null()], { description: 'Place in line while waiting' }),
  created_at: Timestamp,
  offered_at: Type.Union([Timestamp, Type.Null()]),
  ended_at: Type.Union([Timestamp, Type.Null()]),
  offer: Type.Union(
    [
      Type.Object({
        hold_id: Type.Integer(),
        expires_at: Timestamp,
        payment_token: Type.String({ description: 'Book the offer with POST /book, like any hold' }),
      }),
      Type.Null(),
    ],
    { description: 'While offered: the hold made for this entry' },
  ),
});

const StaffEntryBody = Type.Object({
  entry_id: Type.Integer(),
  customer: Type.String(),
  qty: Type.Integer(),
  status: Type.String({ enum: STATUSES }),
  hold_id: Type.Union([Type.Integer(), Type.Null()]),
  created_at: Timestamp,
  offered_at: Type.Union([Timestamp, Type.Null()]),
  ended_at: Type.Union([Timestamp, Type.Null()]),
});

const SecretHeaders = Type.Object({
  'waitlist-secret': Type.Optional(
    Type.String({ minLength: 1, maxLength: 256, description: 'The secret given when joining' }),
  ),
});
const SecretQuery = Type.Object(
  {
    secret: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'The secret, when a header cannot be sent' }),
    ),
  },
  { additionalProperties: false },
);

const EntryParams = Type.Object(
  { id: IdParams.properties.id, entry_id: IdParams.properties.id },
  { additionalProperties: false },
);

const entryBody = (entry: EntryView) => ({
  entry_id: entry.entryId,
  event_id: entry.eventId,
  qty: entry.qty,
  status: entry.status,
  position: entry.position,
  created_at: entry.createdAt.toISOString(),
  offered_at: entry.offeredAt?.toISOString() ?? null,
  ended_at: entry.endedAt?.toISOString() ?? null,
  offer:
    entry.offer === null
      ? null
      : {
          hold_id: entry.offer.holdId,
          expires_at: entry.offer.expiresAt.toISOString(),
          payment_token: entry.offer.paymentToken,
        },
});

const staffBody = (entry: StaffEntry) => ({
  entry_id: entry.entryId,
  customer: entry.customer,
  qty: entry.qty,
  status: entry.status,
  hold_id: entry.holdId,
  created_at: entry.createdAt.toISOString(),
  offered_at: entry.offeredAt?.toISOString() ?? null,
  ended_at: entry.endedAt?.toISOString() ?? null,
});

/** The secret from the header, else the query; a missing one reads as a wrong one (404). */
function secretOf(request: { headers: { 'waitlist-secret'?: string }; query: { secret?: string } }): string {
  return request.headers['waitlist-secret'] ?? request.query.secret ?? '';
}

export async function waitlistRoutes(
  app: App,
  {
    waitlist,
    queue,
    requireAdmin,
    config,
  }: {
    waitlist: WaitlistService;
    queue: QueueService;
    requireAdmin: AdminGuard;
    config: Pick<Config, 'customerEmailNormalization'>;
  },
): Promise<void> {
  app.post(
    '/events/:id/waitlist',
    {
      schema: {
        summary: 'Join the waiting list of an event',
        description:
          'One live entry per customer per event (409 waitlist_duplicate). While anyone waits, every seat that ' +
          'comes back is offered to the list, oldest entry first, as a hold with its own payment token (see ' +
          'GET /waitlist/:entry_id). 409 waitlist_not_needed while seats are on sale; 422 waitlist_too_large past ' +
          `${WAITLIST_MAX_QTY} seats or max_seats_per_hold; 409 customer_limit_reached past max_seats_per_customer. ` +
          'On an event with a queue, send the Admission-Token: its customer joins.',
        tags: ['waitlist'],
        params: IdParams,
        headers: Type.Object({
          'admission-token': Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
        }),
        body: Type.Object(
          {
            customer: Type.Optional(CustomerText('Who waits: an account id or an email address (normalised)')),
            qty: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Seats wanted together' }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Joined,
          ...problems(
            ...BODY_ERRORS,
            'not_found',
            'waitlist_duplicate',
            'waitlist_not_needed',
            'waitlist_too_large',
            'customer_limit_reached',
            'sale_not_open',
            'admission_required',
            'admission_invalid',
            'admission_expired',
          ),
        },
      },
    },
    async (request, reply) => {
      const eventId = Number(request.params.id);
      const { qty } = request.body;
      const given =
        request.body.customer === undefined
          ? null
          : normalizeCustomer(request.body.customer, config.customerEmailNormalization);
      const token = request.headers['admission-token'];
      const admitted = token === undefined ? null : queue.checkAdmission(token, eventId, given);
      const customer = admitted?.customer ?? given;
      if (customer === null) {
        throw new DomainError('validation_failed', 'body/customer is required', {
          errors: [{ path: 'body/customer', message: 'is required (or an Admission-Token whose customer joins)' }],
        });
      }
      const joined = await waitlist.join(eventId, customer, qty, admitted !== null);
      return reply.code(201).send({
        entry_id: joined.entryId,
        event_id: joined.eventId,
        qty: joined.qty,
        secret: joined.secret,
        position: joined.position,
      });
    },
  );

  const entrySchema = (summary: string, description: string, errors: Array<'waitlist_ended'>) => ({
    summary,
    description,
    tags: ['waitlist'],
    params: IdParams,
    headers: SecretHeaders,
    querystring: SecretQuery,
    response: { 200: Entry, ...problems('validation_failed', 'not_found', ...errors) },
  });

  app.get(
    '/waitlist/:id',
    {
      schema: entrySchema(
        'A waiting-list entry: its place, or its offer',
        'Needs the secret (Waitlist-Secret, or ?secret=); a wrong one is 404, as for an entry that does not exist. ' +
          "While offered, shows the offer's hold and payment token.",
        [],
      ),
    },
    async (request) => entryBody(await waitlist.get(Number(request.params.id), secretOf(request))),
  );

  app.delete(
    '/waitlist/:id',
    {
      schema: entrySchema(
        'Leave the waiting list, or decline an offer',
        'A waiting entry leaves the list; an offered one declines: its seats go to the next entry at once. ' +
          '409 waitlist_ended once it has ended.',
        ['waitlist_ended'],
      ),
    },
    async (request) => entryBody(await waitlist.leave(Number(request.params.id), secretOf(request))),
  );

  app.get(
    '/events/:id/waitlist',
    {
      onRequest: requireAdmin,
      schema: {
        summary: "An event's waiting list (staff)",
        description: 'Every entry, live or ended, in join order; paged with ?cursor=.',
        tags: ['waitlist'],
        params: IdParams,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: PAGE_SIZE_DEFAULT })),
            cursor: Type.Optional(CursorQuery),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ entries: Type.Array(StaffEntryBody), next_cursor: NextCursor }),
          ...problems('validation_failed', 'unauthorized', 'not_found'),
        },
      },
    },
    async (request) => {
      const afterId = decodeCursor('w', request.query.cursor) ?? 0;
      const page = await waitlist.list(Number(request.params.id), afterId, request.query.limit ?? PAGE_SIZE_DEFAULT);
      return {
        entries: page.entries.map(staffBody),
        next_cursor: page.nextAfterId === null ? null : encodeCursor('w', page.nextAfterId),
      };
    },
  );

  app.delete(
    '/events/:id/waitlist/:entry_id',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Remove an entry from the waiting list (staff)',
        description: 'As if its customer had left: an offer is withdrawn and its seats go to the next entry.',
        tags: ['waitlist'],
        params: EntryParams,
        response: {
          200: StaffEntryBody,
          ...problems('validation_failed', 'unauthorized', 'not_found', 'waitlist_ended'),
        },
      },
    },
    async (request) => staffBody(await waitlist.remove(Number(request.params.id), Number(request.params.entry_id))),
  );
}
