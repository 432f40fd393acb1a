import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import { IdParams, Timestamp, problems } from '../http/schemas.ts';
import { recorderFor, sendRendered } from '../idempotency/idempotency.http.ts';
import type { Rendered } from '../idempotency/recorder.ts';
import type { HoldRow } from '../model.ts';
import type { AdminService } from './admin.service.ts';

const ExpiredHold = Type.Object({
  hold_id: Type.Integer(),
  status: Type.String({ enum: ['active', 'expired', 'booked', 'released'] }),
  expires_at: Timestamp,
});

const expired = (hold: HoldRow): Rendered => ({
  status: 200,
  body: { hold_id: hold.id, status: hold.status, expires_at: hold.expiresAt.toISOString() },
});

export async function adminRoutes(
  app: App,
  { admin, requireAdmin }: { admin: AdminService; requireAdmin: AdminGuard },
): Promise<void> {
  app.post(
    '/admin/holds/:id/expire',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Force-expire a hold now',
        description: 'Its seats become available at once. Expiring an expired hold changes nothing.',
        tags: ['admin'],
        security: [{ adminBearer: [] }],
        params: IdParams,
        response: {
          200: ExpiredHold,
          ...problems('validation_failed', 'unauthorized', 'not_found', 'hold_not_active'),
        },
      },
    },
    async (request, reply) => {
      const hold = await admin.expireHold(Number(request.params.id), recorderFor(request, expired));
      return sendRendered(reply, expired(hold));
    },
  );

  app.post(
    '/admin/sweep',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Run one expiry pass now',
        description:
          'Also purges expired Idempotency-Keys. A pass spans many short transactions, so an ' +
          'Idempotency-Key stores its response after the pass; running a pass twice is harmless anyway.',
        tags: ['admin'],
        security: [{ adminBearer: [] }],
        response: { 200: Type.Object({ expired: Type.Integer() }), ...problems('unauthorized') },
      },
    },
    async () => ({ expired: await admin.sweep() }),
  );
}
