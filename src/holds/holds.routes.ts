import { Type } from '@sinclair/typebox';
import type { App } from '../app.ts';
import { BODY_ERRORS, Id, Timestamp, problems } from '../http/schemas.ts';
import type { HoldsService } from './holds.service.ts';

const HoldCreated = Type.Object({
  hold_id: Type.Integer(),
  event_id: Type.Integer(),
  qty: Type.Integer(),
  expires_at: Timestamp,
  payment_token: Type.String({ description: 'Secret proving ownership of the hold; shown only once' }),
});

export function holdRoutes(app: App, holds: Pick<HoldsService, 'createHold'>, maxSeatsPerHold: number): void {
  const CreateHoldBody = Type.Object(
    {
      hold: Type.Object(
        { event_id: Id, qty: Type.Integer({ minimum: 1, maximum: maxSeatsPerHold }) },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  );

  app.post('/holds', {
    schema: {
      summary: 'Hold seats for a limited time',
      description: 'Grants all the seats asked for or none. 409 insufficient_seats when fewer are free.',
      tags: ['holds'],
      body: CreateHoldBody,
      response: {
        201: HoldCreated,
        ...problems(...BODY_ERRORS, 'not_found', 'insufficient_seats', 'overloaded'),
      },
    },
  }, async (request, reply) => {
    const { event_id, qty } = request.body.hold;
    const hold = await holds.createHold(event_id, qty);
    return reply.code(201).send({
      hold_id: hold.holdId,
      event_id: hold.eventId,
      qty: hold.qty,
      expires_at: hold.expiresAt.toISOString(),
      payment_token: hold.paymentToken,
    });
  });
}
