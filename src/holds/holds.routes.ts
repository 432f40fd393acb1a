import { Type } from '@sinclair/typebox';
import type { App } from '../http/types.ts';
import type { Config } from '../config.ts';
import { normalizeCustomer } from '../customer.ts';
import {
  BODY_ERRORS,
  CustomerText,
  Id,
  IdParams,
  Nullable,
  PaymentTokenHeaders,
  Timestamp,
  problems,
} from '../http/schemas.ts';
import { rateLimited } from '../http/rate-limit.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import type { QueueService } from '../admission/queue.service.ts';
import type { HoldLifecycleService, HoldView } from './hold-lifecycle.service.ts';
import type { GrantedHold, HoldsService } from './holds.service.ts';

const Customer = Nullable(Type.String(), {
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
  booking_id: Nullable(Type.Integer()),
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

const AdmissionHeaders = Type.Object({
  'admission-token': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        "On an event with a queue: the admission token its queue gave this buyer (GET /queue/:ticket). The hold's " +
        "customer must be the token's; left out, it is the token's.",
    }),
  ),
});

export async function holdRoutes(
  app: App,
  {
    holds,
    lifecycle,
    queue,
    config,
  }: { holds: HoldsService; lifecycle: HoldLifecycleService; queue: QueueService; config: HoldRoutesConfig },
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
          'max_seats_per_hold; 422 customer_required without a customer where the event needs one; 403 ' +
          'sale_not_open before sale_opens_at; on an event with a queue, 403 admission_required without an ' +
          'Admission-Token, admission_invalid or admission_expired with a bad one.',
        tags: ['holds'],
        headers: AdmissionHeaders,
        body: CreateHoldBody,
        response: {
          201: HoldCreated,
          ...problems(
            ...BODY_ERRORS,
            'admission_required',
            'admission_invalid',
            'admission_expired',
            'sale_not_open',
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
      // Checked here, before the request waits for its batch: a forged or stale token costs no
      // database work. Whether the event needs one is decided in the grant, on the locked row.
      const token = request.headers['admission-token'];
      const admitted = token === undefined ? null : queue.checkAdmission(token, event_id, normalized);
      const hold = await holds.createHold(
        event_id,
        qty,
        admitted?.customer ?? normalized,
        admitted?.ticketNo ?? null,
        recorderFor(request, created),
      );
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
