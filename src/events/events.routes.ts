import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import { DomainError } from '../errors.ts';
import { BODY_ERRORS, CustomerText, IdParams, Timestamp, problems } from '../http/schemas.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import type { Config } from '../config.ts';
import { normalizeCustomer } from '../customer.ts';
import { type EventLimits, type EventRow, NO_LIMITS, type QueueSettings, type Snapshot } from '../model.ts';
import { ADMISSION_TTL_SECONDS_DEFAULT, type EventsService } from './events.service.ts';

const MAX_TOTAL_SEATS = 1_000_000;
const PAGE_SIZE_DEFAULT = 20;

const Name = Type.String({ minLength: 1, maxLength: 200 });
const TotalSeats = Type.Integer({ minimum: 1, maximum: MAX_TOTAL_SEATS });
const SeatLimit = (description: string) =>
  Type.Union([Type.Integer({ minimum: 1, maximum: MAX_TOTAL_SEATS }), Type.Null()], {
    description: `${description}; null: no limit. At most total_seats.`,
  });
const LimitFields = {
  max_seats_per_customer: Type.Optional(
    SeatLimit('The seats one customer may have in active holds plus confirmed bookings for this event'),
  ),
  max_seats_per_hold: Type.Optional(SeatLimit('The largest qty of one hold')),
  customer_required: Type.Optional(Type.Boolean({ description: 'Refuse holds without a customer' })),
  waitlist_policy: Type.Optional(
    Type.String({
      enum: ['fill', 'strict'],
      description:
        "Who a freed seat goes to while entries wait: 'fill' (default) the oldest entry it can serve; " +
        "'strict' the oldest entry, and those behind it wait until its seats are free together",
    }),
  ),
  sale_opens_at: Type.Optional(
    Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'No hold before this instant; with a queue, the pre-queue is drawn and admission starts then',
    }),
  ),
};

const MAX_ADMIT_PER_MINUTE = 1_000_000;
const QueueFields = {
  admit_per_minute: Type.Integer({
    minimum: 1,
    maximum: MAX_ADMIT_PER_MINUTE,
    description: 'Buyers admitted per minute, a few at every tick',
  }),
  admission_ttl_seconds: Type.Integer({
    minimum: 60,
    maximum: 86_400,
    description: `How long an admitted buyer may hold seats (default ${ADMISSION_TTL_SECONDS_DEFAULT})`,
  }),
  prequeue_opens_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'From when buyers may join, before sale_opens_at; null: as soon as the queue is set',
  }),
};
const QueueInput = (required: boolean) =>
  Type.Optional(
    Type.Union(
      [
        Type.Object(
          {
            admit_per_minute: required ? QueueFields.admit_per_minute : Type.Optional(QueueFields.admit_per_minute),
            admission_ttl_seconds: Type.Optional(QueueFields.admission_ttl_seconds),
            prequeue_opens_at: Type.Optional(QueueFields.prequeue_opens_at),
          },
          { additionalProperties: false, ...(required ? {} : { minProperties: 1 }) },
        ),
        Type.Null(),
      ],
      {
        description:
          'A waiting room: only buyers it admits may hold seats (Admission-Token). Needs sale_opens_at and ' +
          'max_seats_per_customer. Null: none.',
      },
    ),
  );

const CreateEventBody = Type.Object(
  {
    event: Type.Object(
      { name: Name, total_seats: TotalSeats, ...LimitFields, queue: QueueInput(true) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const UpdateEventBody = Type.Object(
  {
    event: Type.Object(
      { name: Type.Optional(Name), total_seats: Type.Optional(TotalSeats), ...LimitFields, queue: QueueInput(false) },
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

const Limits = {
  max_seats_per_customer: Type.Union([Type.Integer(), Type.Null()]),
  max_seats_per_hold: Type.Union([Type.Integer(), Type.Null()]),
  customer_required: Type.Boolean(),
  waitlist_policy: Type.String({ enum: ['fill', 'strict'] }),
  sale_opens_at: Type.Union([Timestamp, Type.Null()]),
  queue: Type.Union([
    Type.Object({
      admit_per_minute: Type.Integer(),
      admission_ttl_seconds: Type.Integer(),
      prequeue_opens_at: Type.Union([Timestamp, Type.Null()]),
    }),
    Type.Null(),
  ]),
};

const CustomerParams = Type.Object(
  { id: IdParams.properties.id, customer: CustomerText('the customer, as holds carry it') },
  { additionalProperties: false },
);

const CustomerBody = Type.Object({
  customer: Type.String({ description: 'As compared: an email address normalised' }),
  held: Type.Integer({ description: 'Seats in active holds that have not expired' }),
  booked: Type.Integer({ description: 'Seats in confirmed bookings' }),
  limit: Type.Union([Type.Integer(), Type.Null()], { description: 'max_seats_per_customer' }),
});

const CreatedEvent = Type.Object({
  event_id: Type.Integer(),
  name: Type.String(),
  total_seats: Type.Integer(),
  ...Limits,
  created_at: Timestamp,
});

const EventSnapshot = Type.Object({
  event_id: Type.Integer(),
  name: Type.String(),
  total: Type.Integer(),
  available: Type.Integer({ description: 'total - held - booked, exact at the moment of the request' }),
  held: Type.Integer({ description: 'Seats in active holds that have not yet expired' }),
  booked: Type.Integer(),
  waiting: Type.Integer({
    description: 'Seats asked for by waiting-list entries not yet offered any; while above 0, public holds get none',
  }),
  ...Limits,
});

const ListQuery = Type.Object(
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

const EventPage = Type.Object({
  events: Type.Array(EventSnapshot),
  next_cursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as ?cursor= for the next page; null on the last',
  }),
});

const createdBody = (event: EventRow): Rendered => ({
  status: 201,
  body: {
    event_id: event.id,
    name: event.name,
    total_seats: event.totalSeats,
    ...limitsBody(event.limits),
    created_at: event.createdAt.toISOString(),
  },
});

const limitsBody = (limits: EventLimits) => ({
  max_seats_per_customer: limits.maxSeatsPerCustomer,
  max_seats_per_hold: limits.maxSeatsPerHold,
  customer_required: limits.customerRequired,
  waitlist_policy: limits.waitlistPolicy,
  sale_opens_at: limits.saleOpensAt?.toISOString() ?? null,
  queue:
    limits.queue === null
      ? null
      : {
          admit_per_minute: limits.queue.admitPerMinute,
          admission_ttl_seconds: limits.queue.admissionTtlSeconds,
          prequeue_opens_at: limits.queue.prequeueOpensAt?.toISOString() ?? null,
        },
});

const dateOf = (text: string | null): Date | null => (text === null ? null : new Date(text));

/** The limits a body sets; a field left out keeps its value. */
function limitsOf(body: {
  max_seats_per_customer?: number | null;
  max_seats_per_hold?: number | null;
  customer_required?: boolean;
  waitlist_policy?: string;
  sale_opens_at?: string | null;
}): Partial<Omit<EventLimits, 'queue'>> {
  return {
    ...(body.max_seats_per_customer === undefined ? {} : { maxSeatsPerCustomer: body.max_seats_per_customer }),
    ...(body.max_seats_per_hold === undefined ? {} : { maxSeatsPerHold: body.max_seats_per_hold }),
    ...(body.customer_required === undefined ? {} : { customerRequired: body.customer_required }),
    ...(body.waitlist_policy === undefined
      ? {}
      : { waitlistPolicy: body.waitlist_policy === 'strict' ? 'strict' : 'fill' }),
    ...(body.sale_opens_at === undefined ? {} : { saleOpensAt: dateOf(body.sale_opens_at) }),
  };
}

/** The queue a body sets: undefined leaves it, null removes it, fields left out keep theirs. */
function queueOf(body: {
  queue?: { admit_per_minute?: number; admission_ttl_seconds?: number; prequeue_opens_at?: string | null } | null;
}): Partial<QueueSettings> | null | undefined {
  const { queue } = body;
  if (queue === undefined || queue === null) return queue;
  return {
    ...(queue.admit_per_minute === undefined ? {} : { admitPerMinute: queue.admit_per_minute }),
    ...(queue.admission_ttl_seconds === undefined ? {} : { admissionTtlSeconds: queue.admission_ttl_seconds }),
    ...(queue.prequeue_opens_at === undefined ? {} : { prequeueOpensAt: dateOf(queue.prequeue_opens_at) }),
  };
}

const snapshotBody = (snapshot: Snapshot) => ({
  event_id: snapshot.eventId,
  name: snapshot.name,
  total: snapshot.total,
  available: snapshot.available,
  held: snapshot.held,
  booked: snapshot.booked,
  waiting: snapshot.waiting,
  ...limitsBody(snapshot.limits),
});
const ok = (snapshot: Snapshot): Rendered => ({ status: 200, body: snapshotBody(snapshot) });

// The cursor is opaque to clients, so its encoding can change without breaking them.
const encodeCursor = (afterId: number): string => Buffer.from(`e:${afterId}`).toString('base64url');
function decodeCursor(cursor: string | undefined): number | null {
  if (cursor === undefined) return 0;
  const match = /^e:([1-9][0-9]{0,14})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return match === null ? null : Number(match[1]);
}

export async function eventRoutes(
  app: App,
  {
    events,
    requireAdmin,
    config,
  }: { events: EventsService; requireAdmin: AdminGuard; config: Pick<Config, 'customerEmailNormalization'> },
): Promise<void> {
  app.post(
    '/events',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Create an event',
        tags: ['events'],
        security: [{ adminBearer: [] }],
        body: CreateEventBody,
        response: { 201: CreatedEvent, ...problems(...BODY_ERRORS, 'unauthorized') },
      },
    },
    async (request, reply) => {
      const { name, total_seats } = request.body.event;
      const queue = queueOf(request.body.event);
      const limits = {
        ...NO_LIMITS,
        ...limitsOf(request.body.event),
        queue:
          queue == null
            ? null
            : {
                admitPerMinute: queue.admitPerMinute!,
                admissionTtlSeconds: queue.admissionTtlSeconds ?? ADMISSION_TTL_SECONDS_DEFAULT,
                prequeueOpensAt: queue.prequeueOpensAt ?? null,
              },
      };
      const event = await events.create(name, total_seats, limits, recorderFor(request, createdBody));
      return sendRendered(reply, createdBody(event));
    },
  );

  app.get(
    '/events/:id/customers/:customer',
    {
      onRequest: requireAdmin,
      schema: {
        summary: "One customer's seats in an event (staff)",
        description:
          "held and booked are exact now; limit is the event's max_seats_per_customer. An email address is " +
          'normalised as holds are (CUSTOMER_EMAIL_NORMALIZATION).',
        tags: ['events'],
        security: [{ adminBearer: [] }],
        params: CustomerParams,
        response: { 200: CustomerBody, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request) => {
      const customer = normalizeCustomer(request.params.customer, config.customerEmailNormalization);
      return events.customer(Number(request.params.id), customer);
    },
  );

  app.get(
    '/events',
    {
      schema: {
        summary: 'Events with their seat snapshots, by id, a page at a time',
        tags: ['events'],
        querystring: ListQuery,
        response: { 200: EventPage, ...problems('validation_failed') },
      },
    },
    async (request) => {
      const afterId = decodeCursor(request.query.cursor);
      if (afterId === null) {
        throw new DomainError('validation_failed', 'request querystring is invalid', {
          errors: [{ path: 'querystring/cursor', message: 'is not a cursor this service issued' }],
        });
      }
      const page = await events.list(afterId, Number(request.query.limit ?? PAGE_SIZE_DEFAULT));
      return {
        events: page.events.map(snapshotBody),
        next_cursor: page.nextAfterId === null ? null : encodeCursor(page.nextAfterId),
      };
    },
  );

  app.get(
    '/events/:id',
    {
      schema: {
        summary: "An event's seat snapshot",
        tags: ['events'],
        params: IdParams,
        response: { 200: EventSnapshot, ...problems('validation_failed', 'not_found') },
      },
    },
    async (request) => snapshotBody(await events.snapshot(Number(request.params.id))),
  );

  app.patch(
    '/events/:id',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Rename, resize or set the limits of an event (staff)',
        description:
          'total_seats may change but never below held + booked (409 seats_in_use with the numbers); ' +
          'available moves by the difference. A limit lowered below what a customer already has refuses ' +
          'that customer more seats; it takes nothing back.',
        tags: ['events'],
        security: [{ adminBearer: [] }],
        params: IdParams,
        body: UpdateEventBody,
        response: { 200: EventSnapshot, ...problems(...BODY_ERRORS, 'unauthorized', 'not_found', 'seats_in_use') },
      },
    },
    async (request, reply) => {
      const { name, total_seats } = request.body.event;
      const changes = {
        ...(name === undefined ? {} : { name }),
        ...(total_seats === undefined ? {} : { totalSeats: total_seats }),
        limits: limitsOf(request.body.event),
        queue: queueOf(request.body.event),
      };
      const snapshot = await events.update(Number(request.params.id), changes, recorderFor(request, ok));
      return sendRendered(reply, ok(snapshot));
    },
  );
}
