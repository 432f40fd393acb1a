import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import { DomainError } from '../errors.ts';
import { BODY_ERRORS, IdParams, Timestamp, problems } from '../http/schemas.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import type { EventRow, Snapshot } from '../model.ts';
import type { EventsService } from './events.service.ts';

const MAX_TOTAL_SEATS = 1_000_000;
const PAGE_SIZE_DEFAULT = 20;

const Name = Type.String({ minLength: 1, maxLength: 200 });
const TotalSeats = Type.Integer({ minimum: 1, maximum: MAX_TOTAL_SEATS });

const CreateEventBody = Type.Object(
  { event: Type.Object({ name: Name, total_seats: TotalSeats }, { additionalProperties: false }) },
  { additionalProperties: false },
);

const UpdateEventBody = Type.Object(
  {
    event: Type.Object(
      { name: Type.Optional(Name), total_seats: Type.Optional(TotalSeats) },
      { additionalProperties: false, minProperties: 1 },
    ),
  },
  { additionalProperties: false },
);

const CreatedEvent = Type.Object({
  event_id: Type.Integer(),
  name: Type.String(),
  total_seats: Type.Integer(),
  created_at: Timestamp,
});

const EventSnapshot = Type.Object({
  event_id: Type.Integer(),
  name: Type.String(),
  total: Type.Integer(),
  available: Type.Integer({ description: 'total - held - booked, exact at the moment of the request' }),
  held: Type.Integer({ description: 'Seats in active holds that have not yet expired' }),
  booked: Type.Integer(),
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
    created_at: event.createdAt.toISOString(),
  },
});

const snapshotBody = (snapshot: Snapshot) => ({
  event_id: snapshot.eventId,
  name: snapshot.name,
  total: snapshot.total,
  available: snapshot.available,
  held: snapshot.held,
  booked: snapshot.booked,
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
  { events, requireAdmin }: { events: EventsService; requireAdmin: AdminGuard },
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
      const event = await events.create(name, total_seats, recorderFor(request, createdBody));
      return sendRendered(reply, createdBody(event));
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
        summary: 'Rename or resize an event (staff)',
        description:
          'total_seats may change but never below held + booked (409 seats_in_use with the numbers); ' +
          'available moves by the difference.',
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
      };
      const snapshot = await events.update(Number(request.params.id), changes, recorderFor(request, ok));
      return sendRendered(reply, ok(snapshot));
    },
  );
}
