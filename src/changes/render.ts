// A change as clients see it, in the log (GET /changes, GET /events/:id/changes), in webhook
// bodies and on the stream: one shape everywhere. Positions travel as strings, so that a log
// longer than 2^53 changes is still read exactly. Staff (the admin log, webhooks) also see the
// hold's customer; public reads never do, since a customer may be an email address.
import type { Change } from '../model.ts';

export interface ChangeBody {
  position: string;
  type: Change['type'];
  event_id: number;
  hold_id: number | null;
  booking_id: number | null;
  qty: number | null;
  /** Staff only. */
  customer?: string | null;
  at: string;
  snapshot: { total: number; available: number; held: number; booked: number; waiting: number };
}

export type Audience = 'public' | 'staff';

export function renderChange(change: Change, audience: Audience = 'public'): ChangeBody {
  const { total, available, held, booked, waiting } = change.snapshot;
  return {
    position: String(change.position),
    type: change.type,
    event_id: change.eventId,
    hold_id: change.holdId,
    booking_id: change.bookingId,
    qty: change.qty,
    ...(audience === 'staff' ? { customer: change.customer } : {}),
    at: change.at.toISOString(),
    snapshot: { total, available, held, booked, waiting },
  };
}

/**
 * JSON.stringify(renderChange(change, 'staff')), written out: a webhook body renders every change
 * of a sale, and this is several times faster than building the object and stringifying it.
 */
export function staffChangeJson(change: Change): string {
  const { total, available, held, booked, waiting } = change.snapshot;
  return (
    `{"position":"${change.position}","type":"${change.type}","event_id":${change.eventId},` +
    `"hold_id":${change.holdId},"booking_id":${change.bookingId},"qty":${change.qty},` +
    `"customer":${JSON.stringify(change.customer)},"at":"${change.at.toISOString()}",` +
    `"snapshot":{"total":${total},"available":${available},"held":${held},"booked":${booked},"waiting":${waiting}}}`
  );
}
