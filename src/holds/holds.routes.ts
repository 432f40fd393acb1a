import { Type } from '@sinclair/typebox';
import type { App } from '../http/types.ts';
import type { Config } from '../config.ts';
import { normalizeCustomer } from '../customer.ts';
import { BODY_ERRORS, CustomerText, Id, IdParams, PaymentTokenHeaders, Timestamp, problems } from '../http/schemas.ts';
import { rateLimited } from '../http/rate-limit.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import type { HoldLifecycleService, HoldView } from './hold-lifecycle.service.ts';
import type { GrantedHold, HoldsService } from './holds.service.ts';

const Customer = Type.Union([Type.String(), Type.Null()], {
  description: 'Who the hold is for, as compared (an email address normalised); null when anonymous',
});

const HoldCreated = Type.Object({
  hold_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  customer: Customer,
  expires_at: Timestamp,
  payment_token: Type.String({ description: 'Secret proving ownership of the hold; shown only once' }),
});

const Hold = Type.Object({
  hold_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  customer: Customer,
  status: Type.String({
    enum: ['active', 'expired', 'booked', 'released'],
    description: "'expired' as soon as expires_at has passed, whether or not the sweeper has run",
  }),
  created_at: Timestamp,
  expires_at: Timestamp,
  booking_id: Type.Union([Type.Integer(), Type.Null()]),
});

const created = (hold: GrantedHold): Rendered => ({
  status: 201,
  body: {
    hold_id: hold.holdId,
    event_id: hold.eventId,
    qty: hold.qty,
    customer: hold.customer,
    expires_at: hold.expiresAt.toISOString(),
    payment_token: hold.paymentToken,
  },
});

const holdBody = (hold: HoldView) => ({
  hold_id: hold.id,
  event_id: hold.eventId,
  qty: hold.qty,
  customer: hold.customer,
  status: hold.status,
  created_at: hold.createdAt.toISOString(),
  expires_at: hold.expiresAt.toISOString(),
  booking_id: hold.bookingId,
});
const ok = (hold: HoldView): Rendered => ({ status: 200, body: holdBody(hold) });

/** Errors of every route that names a hold and proves ownership with its token. */
const HOLD_ERRORS = ['validation_failed', 'invalid_payment_token', 'not_found'] as const;

type HoldRoutesConfig = Pick<
  Config,
  'maxSeatsPerHold' | 'maxHoldLifetimeSeconds' | 'rateLimitHoldsPerMinute' | 'customerEmailNormalization'
>;

export async function holdRoutes(
  app: App,
  { holds, lifecycle, config }: { holds: HoldsService; lifecycle: HoldLifecycleService; config: HoldRoutesConfig },
): Promise<void> {
  const CreateHoldBody = Type.Object(
    {
      hold: Type.Object(
        {
          event_id: Id,
          qty: Type.Integer({ minimum: 1, maximum: config.maxSeatsPerHold, description: 'MAX_SEATS_PER_HOLD' }),
          customer: Type.Optional(
            CustomerText(
              "Who the hold is for: the integrator's account id, or an email address (compared trimmed, " +
                "lower-cased and without a +tag). Counts toward the event's max_seats_per_customer.",
            ),
          ),
        },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  );

  app.post(
    '/holds',
    {
      ...rateLimited(config.rateLimitHoldsPerMinute),
      schema: {
        summary: 'Hold seats for a limited time',
        description:
          'Grants all the seats asked for or none. 409 insufficient_seats when fewer are free; 409 ' +
          "customer_limit_reached past the event's max_seats_per_customer; 422 hold_too_large past its " +
          'max_seats_per_hold; 422 customer_required without a customer where the event needs one.',
        tags: ['holds'],
        body: CreateHoldBody,
        response: {
          201: HoldCreated,
          ...problems(
            ...BODY_ERRORS,
            'not_found',
            'insufficient_seats',
            'customer_limit_reached',
            'customer_required',
            'hold_too_large',
            'rate_limited',
            'overloaded',
          ),
        },
      },
    },
    async (request, reply) => {
      const { event_id, qty, customer } = request.body.hold;
      const normalized = customer === undefined ? null : normalizeCustomer(customer, config.customerEmailNormalization);
      const hold = await holds.createHold(event_id, qty, normalized, recorderFor(request, created));
      return sendRendered(reply, created(hold));
    },
  );

  app.get(
    '/holds/:id',
    {
      schema: {
        summary: 'A hold: status, seats and deadline',
        description: "Needs the hold's payment token in X-Payment-Token.",
        tags: ['holds'],
        params: IdParams,
        headers: PaymentTokenHeaders,
        response: { 200: Hold, ...problems(...HOLD_ERRORS) },
      },
    },
    async (request) => holdBody(await lifecycle.get(Number(request.params.id), request.headers['x-payment-token'])),
  );

  app.delete(
    '/holds/:id',
    {
      schema: {
        summary: 'Release a hold: its seats are available at once',
        description:
          'A released hold is gone: releasing again is 410 hold_released, a booked hold 409 hold_booked, ' +
          'an expired one 410 hold_expired.',
        tags: ['holds'],
        params: IdParams,
        headers: PaymentTokenHeaders,
        response: { 200: Hold, ...problems(...HOLD_ERRORS, 'hold_booked', 'hold_released', 'hold_expired') },
      },
    },
    async (request, reply) => {
      const id = Number(request.params.id);
      const hold = await lifecycle.release(id, request.headers['x-payment-token'], recorderFor(request, ok));
      return sendRendered(reply, ok(hold));
    },
  );

  app.post(
    '/holds/:id/extend',
    {
      schema: {
        summary: "Move a hold's deadline later",
        description:
          'Adds `seconds` to expires_at. A hold lives at most MAX_HOLD_LIFETIME_SECONDS from creation ' +
          '(409 hold_lifetime_exceeded past it); an expired hold is never revived (410 hold_expired).',
        tags: ['holds'],
        params: IdParams,
        headers: PaymentTokenHeaders,
        body: Type.Object(
          { seconds: Type.Integer({ minimum: 1, maximum: config.maxHoldLifetimeSeconds }) },
          { additionalProperties: false },
        ),
        response: {
          200: Hold,
          ...problems(
            ...BODY_ERRORS,
            ...HOLD_ERRORS,
            'hold_booked',
            'hold_released',
            'hold_expired',
            'hold_lifetime_exceeded',
          ),
        },
      },
    },
    async (request, reply) => {
      const id = Number(request.params.id);
      const token = request.headers['x-payment-token'];
      const hold = await lifecycle.extend(id, token, request.body.seconds, recorderFor(request, ok));
      return sendRendered(reply, ok(hold));
    },
  );
}
