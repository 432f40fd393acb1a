// Staff listings behind the operator console: an event's holds and bookings a page at a time,
// and its bookings as CSV.
import { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import { CursorQuery, NextCursor, decodeCursor, encodeCursor } from '../http/cursor.ts';
import type { Config } from '../config.ts';
import { normalizeCustomer } from '../customer.ts';
import { CustomerText, IdParams, Timestamp, problems } from '../http/schemas.ts';
import type { ListedBooking, ListedHold } from '../model.ts';
import type { ListingsService, PageRequest } from './listings.service.ts';

const PAGE_SIZE_DEFAULT = 20;
const HOLD_STATUSES = ['active', 'expired', 'booked', 'released'] as const;
const BOOKING_STATUSES = ['confirmed', 'cancelled'] as const;
const ORDERS = ['asc', 'desc'] as const;
const CSV_COLUMNS = ['booking_id', 'hold_id', 'event_id', 'qty', 'status', 'created_at', 'cancelled_at', 'customer'];

/** A query parameter that takes one of `values`, typed as their union. */
const oneOf = <V extends string>(values: readonly V[], description: string) =>
  Type.Unsafe<V>(Type.String({ enum: [...values], description: `one of ${values.join(', ')}: ${description}` }));

const pageQuery = <S extends string>(statuses: readonly S[], statusHelp: string) =>
  Type.Object(
    {
      status: Type.Optional(oneOf(statuses, statusHelp)),
      // Query strings are text and are not coerced, so numbers are checked by pattern.
      limit: Type.Optional(
        Type.String({
          pattern: '^([1-9]|[1-9][0-9]|100)$',
          description: `a whole number from 1 to 100 (default ${PAGE_SIZE_DEFAULT})`,
        }),
      ),
      order: Type.Optional(oneOf(ORDERS, 'oldest first (asc, the default) or newest first (desc)')),
      cursor: Type.Optional(CursorQuery),
      customer: Type.Optional(
        CustomerText('only those of this customer (an email address is normalised as holds are)'),
      ),
    },
    { additionalProperties: false },
  );

const HoldsQuery = pageQuery(
  HOLD_STATUSES,
  "only holds in this status ('expired' includes active holds past expires_at)",
);
const BookingsQuery = pageQuery(BOOKING_STATUSES, 'only bookings in this status');

const ListedHoldSchema = Type.Object({
  hold_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  customer: Type.Union([Type.String(), Type.Null()]),
  status: Type.String({
    enum: [...HOLD_STATUSES],
    description: "'expired' as soon as expires_at has passed, whether or not the sweeper has run",
  }),
  created_at: Timestamp,
  expires_at: Timestamp,
  booking_id: Type.Union([Type.Integer(), Type.Null()]),
});

const ListedBookingSchema = Type.Object({
  booking_id: Type.Integer(),
  hold_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  customer: Type.Union([Type.String(), Type.Null()]),
  status: Type.String({ enum: [...BOOKING_STATUSES] }),
  created_at: Timestamp,
  cancelled_at: Type.Union([Timestamp, Type.Null()]),
});

const HoldPage = Type.Object({ holds: Type.Array(ListedHoldSchema), next_cursor: NextCursor });
const BookingPage = Type.Object({ bookings: Type.Array(ListedBookingSchema), next_cursor: NextCursor });

const BookingsCsv = {
  description: `text/csv with a header row: ${CSV_COLUMNS.join(',')}; times in ISO 8601 UTC, cancelled_at empty when confirmed`,
  // Documented as text; sent as a stream of it.
  content: { 'text/csv': { schema: Type.Unsafe<Readable>(Type.String()) } },
};

const holdBody = (hold: ListedHold) => ({
  hold_id: hold.id,
  event_id: hold.eventId,
  qty: hold.qty,
  customer: hold.customer,
  status: hold.status,
  created_at: hold.createdAt.toISOString(),
  expires_at: hold.expiresAt.toISOString(),
  booking_id: hold.bookingId,
});

const bookingBody = (booking: ListedBooking) => ({
  booking_id: booking.id,
  hold_id: booking.holdId,
  event_id: booking.eventId,
  qty: booking.qty,
  customer: booking.customer,
  status: booking.status,
  created_at: booking.createdAt.toISOString(),
  cancelled_at: booking.cancelledAt?.toISOString() ?? null,
});

// Every value but the customer is a number, a fixed status word or an ISO time: nothing to quote.
// The customer is the integrator's text: quoted, and kept from reading as a spreadsheet formula.
const csvText = (text: string | null): string =>
  text === null ? '' : `"${(/^[=+\-@\t\r]/.test(text) ? `'${text}` : text).replace(/"/g, '""')}"`;
const csvLine = (booking: ListedBooking): string =>
  `${booking.id},${booking.holdId},${booking.eventId},${booking.qty},${booking.status},` +
  `${booking.createdAt.toISOString()},${booking.cancelledAt?.toISOString() ?? ''},${csvText(booking.customer)}\r\n`;

async function* csvLines(pages: AsyncGenerator<ListedBooking[]>): AsyncGenerator<string> {
  yield `${CSV_COLUMNS.join(',')}\r\n`;
  for await (const page of pages) yield page.map(csvLine).join('');
}

const pageRequest = (
  kind: string,
  query: { limit?: string; order?: 'asc' | 'desc'; cursor?: string },
): PageRequest => ({
  afterId: decodeCursor(kind, query.cursor),
  limit: Number(query.limit ?? PAGE_SIZE_DEFAULT),
  order: query.order ?? 'asc',
});

export async function listingRoutes(
  app: App,
  {
    listings,
    requireAdmin,
    config,
  }: { listings: ListingsService; requireAdmin: AdminGuard; config: Pick<Config, 'customerEmailNormalization'> },
): Promise<void> {
  const staff = { onRequest: requireAdmin };
  const customerOf = (customer: string | undefined) =>
    customer === undefined ? undefined : normalizeCustomer(customer, config.customerEmailNormalization);
  const documented = { tags: ['listings'], security: [{ adminBearer: [] }], params: IdParams };

  app.get(
    '/events/:id/holds',
    {
      ...staff,
      schema: {
        ...documented,
        summary: "An event's holds, a page at a time (staff)",
        querystring: HoldsQuery,
        response: { 200: HoldPage, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request) => {
      const page = await listings.holds(
        Number(request.params.id),
        { status: request.query.status, customer: customerOf(request.query.customer) },
        pageRequest('h', request.query),
      );
      return {
        holds: page.rows.map(holdBody),
        next_cursor: page.nextAfterId === null ? null : encodeCursor('h', page.nextAfterId),
      };
    },
  );

  app.get(
    '/events/:id/bookings',
    {
      ...staff,
      schema: {
        ...documented,
        summary: "An event's bookings, a page at a time (staff)",
        querystring: BookingsQuery,
        response: { 200: BookingPage, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request) => {
      const page = await listings.bookings(
        Number(request.params.id),
        { status: request.query.status, customer: customerOf(request.query.customer) },
        pageRequest('b', request.query),
      );
      return {
        bookings: page.rows.map(bookingBody),
        next_cursor: page.nextAfterId === null ? null : encodeCursor('b', page.nextAfterId),
      };
    },
  );

  app.get(
    '/events/:id/bookings.csv',
    {
      ...staff,
      schema: {
        ...documented,
        summary: 'Every booking of an event as CSV, oldest first (staff)',
        description:
          'Streamed a page at a time, so an export of any size uses little memory; each page is read as of ' +
          'when it is sent. Bookings made during the export appear at its end.',
        response: { 200: BookingsCsv, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request, reply) => {
      const eventId = Number(request.params.id);
      const pages = await listings.exportBookings(eventId);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="event-${eventId}-bookings.csv"`)
        .send(Readable.from(csvLines(pages)));
    },
  );
}
