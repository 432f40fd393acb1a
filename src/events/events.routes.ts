import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../app.ts';
import { BODY_ERRORS, IdParams, Timestamp, problems } from '../http/schemas.ts';
import type { EventsService } from './events.service.ts';

const MAX_TOTAL_SEATS = 1_000_000;

const CreateEventBody = Type.Object(
  {
    event: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: 200 }),
        total_seats: Type.Integer({ minimum: 1, maximum: MAX_TOTAL_SEATS }),
      },
      { additionalProperties: false },
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

export function eventRoutes(app: App, events: EventsService, requireAdmin: AdminGuard): void {
  app.post('/events', {
    preHandler: requireAdmin,
    schema: {
      summary: 'Create an event',
      tags: ['events'],
      security: [{ adminBearer: [] }],
      body: CreateEventBody,
      response: { 201: CreatedEvent, ...problems(...BODY_ERRORS, 'unauthorized') },
    },
  }, async (request, reply) => {
    const { name, total_seats } = request.body.event;
    const event = await events.create(name, total_seats);
    return reply.code(201).send({
      event_id: event.id,
      name: event.name,
      total_seats: event.totalSeats,
      created_at: event.createdAt.toISOString(),
    });
  });

  app.get('/events/:id', {
    schema: {
      summary: "An event's seat snapshot",
      tags: ['events'],
      params: IdParams,
      response: { 200: EventSnapshot, ...problems('validation_failed', 'not_found') },
    },
  }, async (request) => {
    const snapshot = await events.snapshot(Number(request.params.id));
    return {
      event_id: snapshot.eventId,
      name: snapshot.name,
      total: snapshot.total,
      available: snapshot.available,
      held: snapshot.held,
      booked: snapshot.booked,
    };
  });
}
