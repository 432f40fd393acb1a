// Seats that come back go to the waiting list first, in the transaction that frees them.
//
// Every path that frees seats (a release, a reclaim of lapsed holds by the hold path, the sweeper
// or a resize, staff force-expiring a hold, a cancelled booking, an offer declined) calls
// offerFreedSeats with the event's row still locked, after moving the seats back. So a freed seat
// is already an offer hold when the transaction commits: nobody outside it ever sees it free.
// While entries wait (events.waiting > 0), public holds take no seats at all (decideHolds and the
// fast grant's `waiting = 0`): the seats left in `available` then are ones no waiting entry fits
// yet, and they are kept for the list until more come back.
//
// Cost per offer is independent of the list's length: the oldest waiting entries are read by an
// index seek, a batch at a time; under 'fill', an entry too big for what is left is passed over
// and, once a whole batch fits nothing, the next fitting entry is found by one seek per size
// (at most WAITLIST_MAX_QTY), never by reading the entries in between.
import type { Outbox } from '../changes/outbox.ts';
import type { NewChange } from '../model.ts';
import type { Reclaimed } from '../storage/holds.sql.ts';
import type { EntryEnd, WaitingEntry } from '../storage/waitlist.sql.ts';
import type { Store, Tx } from '../storage/store.ts';

/** The most seats one entry may ask for: bounds the per-size seeks of 'fill'. */
export const WAITLIST_MAX_QTY = 10;
/** Waiting entries read per seek; a freed seat serves at most one, so never more than are free. */
const OFFER_BATCH = 100;

export interface Offered {
  entryId: number;
  holdId: number;
  qty: number;
  customer: string;
}

export interface OfferResult {
  offered: Offered[];
  /** The event's counters after the offers. */
  available: number;
  waiting: number;
}

export interface WaitlistDeps {
  store: Store;
  outbox: Outbox;
  offerTtlSeconds: number;
}

type EndType = 'waitlist.expired' | 'waitlist.left' | 'waitlist.converted';
const END_CHANGE: Record<EntryEnd, EndType> = {
  expired: 'waitlist.expired',
  left: 'waitlist.left',
  removed: 'waitlist.left',
  converted: 'waitlist.converted',
};

/**
 * Turns the event's free seats into offers for the oldest entries that fit, by its policy (event
 * locked). `waitingSeen`: events.waiting as the caller locked it; 0 costs nothing more.
 */
export async function offerFreedSeats(
  deps: WaitlistDeps,
  tx: Tx,
  eventId: number,
  waitingSeen: number,
  now: Date,
): Promise<OfferResult | null> {
  if (waitingSeen === 0) return null;
  const { store } = deps;
  const state = await store.waitlistState(tx, eventId);
  let { available, waiting } = state;
  const offered: Offered[] = [];
  const overLimit: WaitingEntry[] = [];
  /** Entries whose customer has since taken seats enough that the offer would pass their limit. */
  const dropped: WaitingEntry[] = [];
  const expiresAt = new Date(now.getTime() + deps.offerTtlSeconds * 1000);
  let afterId = 0;
  let bySize = false;
  while (waiting > 0 && available > 0) {
    const batch = bySize
      ? [await store.oldestFitting(tx, eventId, afterId, Math.min(available, WAITLIST_MAX_QTY))].filter(
          (entry): entry is WaitingEntry => entry !== null,
        )
      : await store.oldestWaiting(tx, eventId, afterId, Math.min(available, OFFER_BATCH));
    if (batch.length === 0) break;
    let left = available;
    let blocked = false;
    const picked: WaitingEntry[] = [];
    for (const entry of batch) {
      if (entry.qty <= left) {
        picked.push(entry);
        left -= entry.qty;
      } else if (state.policy === 'strict') {
        blocked = true;
        break;
      }
    }
    afterId = batch[batch.length - 1]!.id;
    const within = await withinLimit(store, tx, eventId, state.maxSeatsPerCustomer, picked);
    overLimit.push(...picked.filter((entry) => !within.includes(entry)));
    const holdIds = await store.offerEntries(tx, eventId, within, now, expiresAt);
    within.forEach((entry, i) => {
      offered.push({ entryId: entry.id, holdId: holdIds[i]!, qty: entry.qty, customer: entry.customer });
      available -= entry.qty;
      waiting -= entry.qty;
    });
    if (overLimit.length > 0) {
      const ended = await store.endWaiting(
        tx,
        eventId,
        overLimit.map((entry) => entry.id),
        'expired',
        now,
      );
      const gone = overLimit.filter((entry) => ended.includes(entry.id));
      waiting -= gone.reduce((sum, entry) => sum + entry.qty, 0);
      dropped.push(...gone);
      // An entry over its limit leaves the list, and the head under 'strict' is then the next one.
      if (state.policy === 'strict') afterId = 0;
    }
    if (blocked && overLimit.length === 0) break;
    if (state.policy === 'strict') afterId = 0;
    // A whole batch that fitted nothing: from here on, seek each size rather than read on.
    if (picked.length === 0) bySize = true;
    overLimit.length = 0;
  }
  await recordWaitlist(
    deps,
    tx,
    eventId,
    [
      ...dropped.map((d) => ({ eventId, type: 'waitlist.expired' as const, qty: d.qty, customer: d.customer })),
      ...offered.map((o) => ({
        eventId,
        type: 'waitlist.offered' as const,
        holdId: o.holdId,
        qty: o.qty,
        customer: o.customer,
      })),
    ],
    now,
  );
  return { offered, available, waiting };
}

/** The entries whose customer stays within max_seats_per_customer with the offer (event locked). */
async function withinLimit(
  store: Store,
  tx: Tx,
  eventId: number,
  max: number | null,
  entries: WaitingEntry[],
): Promise<WaitingEntry[]> {
  if (max === null || entries.length === 0) return entries;
  const seats = await store.seatsOfCustomers(
    tx,
    eventId,
    entries.map((entry) => entry.customer),
  );
  return entries.filter((entry) => (seats.get(entry.customer) ?? 0) + entry.qty <= max);
}

/**
 * Ends the entries of offer holds that have ended (lapsed, released, expired by staff) or been
 * booked, and records why (event locked).
 */
export async function endOffers(
  deps: WaitlistDeps,
  tx: Tx,
  eventId: number,
  offers: ReadonlyArray<{ entryId: number; holdId: number; qty: number; customer: string | null }>,
  status: EntryEnd,
  now: Date,
): Promise<void> {
  if (offers.length === 0) return;
  const ended = await deps.store.endOffered(
    tx,
    offers.map((offer) => offer.entryId),
    status,
    now,
  );
  const changes = offers
    .filter((offer) => ended.includes(offer.entryId))
    .map((offer) => ({
      eventId,
      type: END_CHANGE[status],
      holdId: offer.holdId,
      qty: offer.qty,
      customer: offer.customer,
    }));
  await recordWaitlist(deps, tx, eventId, changes, now);
}

/** Ends the entries of the offers among reclaimed (lapsed) holds: 'expired' (event locked). */
export async function expireOffers(
  deps: WaitlistDeps,
  tx: Tx,
  eventId: number,
  holds: Reclaimed['holds'],
  now: Date,
): Promise<void> {
  const offers = holds.flatMap((hold) =>
    hold.entry_id === null
      ? []
      : [{ entryId: Number(hold.entry_id), holdId: hold.id, qty: hold.qty, customer: hold.customer }],
  );
  await endOffers(deps, tx, eventId, offers, 'expired', now);
}

/**
 * Waiting-list changes carry the event's snapshot at the end of their work in this transaction,
 * read once for all of them.
 */
export async function recordWaitlist(
  deps: WaitlistDeps,
  tx: Tx,
  eventId: number,
  changes: Array<Omit<NewChange, 'snapshot'>>,
  now: Date,
): Promise<void> {
  if (changes.length === 0 || !deps.outbox.enabled) return;
  const snapshot = await deps.store.snapshotIn(tx, eventId, now);
  if (snapshot === null) return;
  const { total, available, held, booked, waiting } = snapshot;
  await deps.outbox.record(
    tx,
    changes.map((change) => ({ ...change, snapshot: { total, available, held, booked, waiting } })),
    now,
  );
}
