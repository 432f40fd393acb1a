import { Type } from '@sinclair/typebox';
import type { App } from '../app.ts';
import { BODY_ERRORS, Id, problems } from '../http/schemas.ts';
import type { BookingsService } from './bookings.service.ts';

const BookBody = Type.Object(
  {
    booking: Type.Object(
      { hold_id: Id, payment_token: Type.String({ minLength: 1, maxLength: 256 }) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const Booked = Type.Object({ booking_id: Type.Integer() });

export function bookingRoutes(app: App, bookings: BookingsService): void {
  app.post('/book', {
    schema: {
      summary: 'Book a held hold',
      description: '201 the first time; 200 with the same booking_id on every retry.',
      tags: ['bookings'],
      body: BookBody,
      response: {
        200: Booked,
        201: Booked,
        ...problems(...BODY_ERRORS, 'invalid_payment_token', 'not_found', 'hold_expired'),
      },
    },
  }, async (request, reply) => {
    const { hold_id, payment_token } = request.body.booking;
    const result = await bookings.book(hold_id, payment_token);
    return reply.code(result.created ? 201 : 200).send({ booking_id: result.bookingId });
  });
}
