import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import type { Config } from '../config.ts';
import { BODY_ERRORS, Id, IdParams, PaymentToken, Timestamp, problems } from '../http/schemas.ts';
import { rateLimited } from '../http/rate-limit.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import type { BookingRow } from '../model.ts';
import type { BookingResult, BookingsService } from './bookings.service.ts';

const BookBody = Type.Object(
  {
    booking: Type.Object({ hold_id: Id, payment_token: PaymentToken }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

const Booked = Type.Object({ booking_id: Type.Integer() });

const Booking = Type.Object({
  booking_id: Type.Integer(),
  hold_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  customer: Type.Union([Type.String(), Type.Null()], { description: "Its hold's customer" }),
  status: Type.String({ enum: ['confirmed', 'cancelled'] }),
  created_at: Timestamp,
  cancelled_at: Type.Union([Timestamp, Type.Null()]),
});

const booked = (result: BookingResult): Rendered => ({
  status: result.created ? 201 : 200,
  body: { booking_id: result.bookingId },
});

const bookingBody = (booking: BookingRow) => ({
  booking_id: booking.id,
  hold_id: booking.holdId,
  event_id: booking.eventId,
  qty: booking.qty,
  customer: booking.customer,
  status: booking.status,
  created_at: booking.createdAt.toISOString(),
  cancelled_at: booking.cancelledAt?.toISOString() ?? null,
});
const ok = (booking: BookingRow): Rendered => ({ status: 200, body: bookingBody(booking) });

interface BookingRoutesOptions {
  bookings: BookingsService;
  requireAdmin: AdminGuard;
  config: Pick<Config, 'rateLimitBookPerMinute'>;
}

export async function bookingRoutes(app: App, { bookings, requireAdmin, config }: BookingRoutesOptions): Promise<void> {
  app.post(
    '/book',
    {
      ...rateLimited(config.rateLimitBookPerMinute),
      schema: {
        summary: 'Book a held hold',
        description:
          '201 the first time; 200 with the same booking_id on every retry. ' +
          '410 booking_cancelled once staff have cancelled that booking.',
        tags: ['bookings'],
        body: BookBody,
        response: {
          200: Booked,
          201: Booked,
          ...problems(
            ...BODY_ERRORS,
            'invalid_payment_token',
            'not_found',
            'hold_expired',
            'booking_cancelled',
            'rate_limited',
          ),
        },
      },
    },
    async (request, reply) => {
      const { hold_id, payment_token } = request.body.booking;
      const result = await bookings.book(hold_id, payment_token, recorderFor(request, booked));
      return sendRendered(reply, booked(result));
    },
  );

  app.get(
    '/bookings/:id',
    {
      schema: {
        summary: 'A booking',
        description:
          'For the holder, with the payment token of its hold in X-Payment-Token (403 if it does not match), ' +
          'or for staff with Authorization: Bearer <ADMIN_TOKEN> (open when ADMIN_TOKEN is unset, like /admin/*).',
        tags: ['bookings'],
        security: [{ adminBearer: [] }, {}],
        params: IdParams,
        headers: Type.Object({ 'x-payment-token': Type.Optional(PaymentToken) }),
        response: {
          200: Booking,
          ...problems('validation_failed', 'unauthorized', 'invalid_payment_token', 'not_found'),
        },
      },
    },
    async (request, reply) => {
      const token = request.headers['x-payment-token'];
      if (token === undefined) await requireAdmin(request, reply);
      return bookingBody(await bookings.get(Number(request.params.id), token));
    },
  );

  app.post(
    '/bookings/:id/cancel',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Cancel a booking (staff): its seats go back on sale',
        description: 'Cancelling a cancelled booking changes nothing and answers the same 200.',
        tags: ['bookings'],
        security: [{ adminBearer: [] }],
        params: IdParams,
        response: { 200: Booking, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request, reply) => {
      const booking = await bookings.cancel(Number(request.params.id), recorderFor(request, ok));
      return sendRendered(reply, ok(booking));
    },
  );
}
