// The waiting list: customers join an event's list, and every seat that comes back is offered to
// it in the transaction that frees it (offers.ts). An entry's secret lets its customer read the
// entry (and, once offered, the offer's hold and payment token) and leave it; staff list and
// remove entries. Every change locks the event row first, then the entry, like every writer.
import type { Clock } from '../clock.ts';
import { DomainError, notFound, present } from '../errors.ts';
import type { HoldRow } from '../model.ts';
import type { Store, Tx } from '../storage/store.ts';
import type { EntryEnd, WaitlistEntry, WaitlistStatus } from '../storage/waitlist.sql.ts';
import { WAITLIST_MAX_QTY, type WaitlistDeps, endOffers, offerFreedSeats, recordWaitlist } from './offers.ts';
import { newEntrySecret, offerTokenOf, secretMatches } from './secret.ts';

export interface JoinedEntry {
  entryId: number;
  eventId: number;
  secret: string;
  position: number;
  qty: number;
}

export interface OfferView {
  holdId: number;
  expiresAt: Date;
  paymentToken: string;
}

export interface EntryView {
  entryId: number;
  eventId: number;
  qty: number;
  /** 'expired' as soon as an offer's deadline passes, whether or not the sweeper has run. */
  status: WaitlistStatus;
  /** Place in line while waiting; null otherwise. */
  position: number | null;
  createdAt: Date;
  offeredAt: Date | null;
  endedAt: Date | null;
  /** While offered, to the secret's holder only. */
  offer: OfferView | null;
}

export interface StaffEntry {
  entryId: number;
  customer: string;
  qty: number;
  status: WaitlistStatus;
  holdId: number | null;
  createdAt: Date;
  offeredAt: Date | null;
  endedAt: Date | null;
}

export interface StaffPage {
  entries: StaffEntry[];
  nextAfterId: number | null;
}

// A wrong secret and a missing entry answer alike, so a guess learns nothing about which ids exist.
const noSuchEntry = (entryId: number): DomainError => notFound('waitlist entry', entryId);

export class WaitlistService {
  private readonly deps: WaitlistDeps;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    deps: WaitlistDeps,
  ) {
    this.deps = deps;
  }

  /**
   * Joins `customer` (normalised, or the admission token's) to the event's list. `admitted`: the
   * request carried a valid Admission-Token for this event (checked at the edge).
   */
  async join(eventId: number, customer: string, qty: number, admitted: boolean): Promise<JoinedEntry> {
    const now = this.clock.now();
    const { secret, secretHash, offerTokenHash } = newEntrySecret();
    let entryId: number;
    try {
      entryId = await this.store.transaction(async (tx) => {
        const event = await this.store.lockEventBooks(tx, eventId);
        if (event === null) throw notFound('event', eventId);
        const { limits } = event;
        if (limits.saleOpensAt !== null && now < limits.saleOpensAt) {
          throw new DomainError('sale_not_open', `the sale opens at ${limits.saleOpensAt.toISOString()}`, {
            sale_opens_at: limits.saleOpensAt.toISOString(),
          });
        }
        if (limits.queue !== null && !admitted) {
          throw new DomainError(
            'admission_required',
            'this event sells through its queue: join the waiting list with the Admission-Token the queue gave you',
            { queue: `/events/${eventId}/queue` },
          );
        }
        const most = Math.min(WAITLIST_MAX_QTY, limits.maxSeatsPerHold ?? Infinity);
        if (qty > most) {
          throw new DomainError('waitlist_too_large', `one waiting-list entry asks for at most ${most} seats`, {
            limit: most,
            requested: qty,
          });
        }
        // Before the limit and the seats: a customer who already waits, or holds an offer, hears
        // that, not "hold them instead" (the unique index below still settles a race).
        if (await this.store.hasLiveEntry(tx, eventId, customer)) throw duplicateEntry();
        if (limits.maxSeatsPerCustomer !== null) {
          const inUse = (await this.store.seatsOfCustomers(tx, eventId, [customer])).get(customer) ?? 0;
          if (inUse + qty > limits.maxSeatsPerCustomer) {
            throw new DomainError(
              'customer_limit_reached',
              `this customer already has ${inUse} of the ${limits.maxSeatsPerCustomer} seats one customer may hold or book`,
              { limit: limits.maxSeatsPerCustomer, in_use: inUse, requested: qty },
            );
          }
        }
        if (event.waiting === 0 && event.available >= qty) {
          throw new DomainError(
            'waitlist_not_needed',
            `${event.available} seats are available now: hold them with POST /holds`,
            { available: event.available },
          );
        }
        const id = await this.store.insertEntry(tx, { eventId, customer, qty, secretHash, offerTokenHash }, now);
        await recordWaitlist(this.deps, tx, eventId, [{ eventId, type: 'waitlist.joined', qty, customer }], now);
        // Seats the list could not use until now (a strict head too big for them) may fit this one.
        await offerFreedSeats(this.deps, tx, eventId, event.waiting + qty, now);
        return id;
      });
    } catch (error) {
      if (this.store.isUniqueViolation(error)) throw duplicateEntry();
      throw error;
    }
    this.deps.outbox.committed();
    const entry = present(await this.store.findEntry(entryId), `waitlist entry ${entryId}`);
    const position = entry.status === 'waiting' ? await this.store.entryPosition(eventId, entryId) : 0;
    return { entryId, eventId, secret, position, qty };
  }

  async get(entryId: number, secret: string): Promise<EntryView> {
    const entry = await this.authorized(entryId, secret);
    return this.view(entry, secret);
  }

  /** The customer leaves: a waiting entry ends; an offer is declined and its seats move on at once. */
  async leave(entryId: number, secret: string): Promise<EntryView> {
    const entry = await this.authorized(entryId, secret);
    const ended = await this.end(entry, 'left');
    return this.view(ended, secret);
  }

  /** Staff remove an entry, as the customer could leave it. */
  async remove(eventId: number, entryId: number): Promise<StaffEntry> {
    const entry = await this.store.findEntry(entryId);
    if (entry === null || entry.eventId !== eventId) throw noSuchEntry(entryId);
    return staffEntry(await this.end(entry, 'removed'));
  }

  async list(eventId: number, afterId: number, limit: number): Promise<StaffPage> {
    if ((await this.store.snapshot(eventId, this.clock.now())) === null) throw notFound('event', eventId);
    const rows = await this.store.listEntries(eventId, afterId, limit + 1);
    const entries = rows.slice(0, limit).map(staffEntry);
    return { entries, nextAfterId: rows.length > limit ? entries[entries.length - 1]!.entryId : null };
  }

  private async end(entry: WaitlistEntry, status: EntryEnd): Promise<WaitlistEntry> {
    const now = this.clock.now();
    await this.store.transaction(async (tx) => {
      const event = present(await this.store.lockEvent(tx, entry.eventId), `event ${entry.eventId}`);
      const locked = present(await this.store.lockEntry(tx, entry.id), `waitlist entry ${entry.id}`);
      if (locked.status === 'waiting') {
        await this.store.endWaiting(tx, entry.eventId, [entry.id], status, now);
        await recordWaitlist(
          this.deps,
          tx,
          entry.eventId,
          [{ eventId: entry.eventId, type: 'waitlist.left', qty: locked.qty, customer: locked.customer }],
          now,
        );
        // Under 'strict' the entry may have been the head that kept free seats from the rest.
        await offerFreedSeats(this.deps, tx, entry.eventId, event.waiting - locked.qty, now);
        return;
      }
      if (locked.status !== 'offered') {
        throw new DomainError('waitlist_ended', `waiting-list entry ${entry.id} has ended (${locked.status})`, {
          entry_status: locked.status,
        });
      }
      const hold = present(await this.store.lockHold(tx, locked.holdId!), `hold ${locked.holdId}`);
      await this.declineOffer(tx, event.waiting, locked, hold, status, now);
    });
    this.deps.outbox.committed();
    return present(await this.store.findEntry(entry.id), `waitlist entry ${entry.id}`);
  }

  /** Releases the offer's hold and offers its seats on, in this transaction (event locked). */
  private async declineOffer(
    tx: Tx,
    waiting: number,
    entry: WaitlistEntry,
    hold: HoldRow,
    status: EntryEnd,
    now: Date,
  ): Promise<void> {
    if (hold.status === 'booked') {
      throw new DomainError('waitlist_ended', `waiting-list entry ${entry.id} was booked`, {
        entry_status: 'converted',
      });
    }
    const offer = { entryId: entry.id, holdId: hold.id, qty: hold.qty, customer: hold.customer };
    if (hold.status === 'active' && hold.expiresAt > now) {
      await this.store.endHold(tx, hold, 'released', now);
      await recordWaitlist(
        this.deps,
        tx,
        entry.eventId,
        [{ eventId: entry.eventId, type: 'hold.released', holdId: hold.id, qty: hold.qty, customer: hold.customer }],
        now,
      );
      await endOffers(this.deps, tx, entry.eventId, [offer], status, now);
    } else {
      // The offer had lapsed already: it expired, whoever asks.
      const reclaimed = await this.store.reclaimLapsedHolds(tx, entry.eventId, now);
      await endOffers(
        this.deps,
        tx,
        entry.eventId,
        reclaimed.holds.flatMap((h) =>
          h.entry_id === null ? [] : [{ entryId: Number(h.entry_id), holdId: h.id, qty: h.qty, customer: h.customer }],
        ),
        'expired',
        now,
      );
      await endOffers(this.deps, tx, entry.eventId, [offer], 'expired', now);
    }
    await offerFreedSeats(this.deps, tx, entry.eventId, Math.max(waiting, 1), now);
  }

  private async view(entry: WaitlistEntry, secret: string): Promise<EntryView> {
    const now = this.clock.now();
    let status = entry.status;
    let offer: OfferView | null = null;
    if (entry.status === 'offered' && entry.holdId !== null) {
      const hold = await this.store.findHold(entry.holdId);
      if (hold !== null && hold.status === 'active' && hold.expiresAt > now) {
        offer = { holdId: hold.id, expiresAt: hold.expiresAt, paymentToken: offerTokenOf(secret) };
      } else if (hold?.status !== 'booked') {
        status = 'expired';
      }
    }
    const position = status === 'waiting' ? await this.store.entryPosition(entry.eventId, entry.id) : null;
    return {
      entryId: entry.id,
      eventId: entry.eventId,
      qty: entry.qty,
      status,
      position,
      createdAt: entry.createdAt,
      offeredAt: entry.offeredAt,
      endedAt: entry.endedAt,
      offer,
    };
  }

  private async authorized(entryId: number, secret: string): Promise<WaitlistEntry> {
    const entry = await this.store.findEntry(entryId);
    if (entry === null || !secretMatches(secret, entry.secretHash)) throw noSuchEntry(entryId);
    return entry;
  }
}

const staffEntry = (entry: WaitlistEntry): StaffEntry => ({
  entryId: entry.id,
  customer: entry.customer,
  qty: entry.qty,
  status: entry.status,
  holdId: entry.holdId,
  createdAt: entry.createdAt,
  offeredAt: entry.offeredAt,
  endedAt: entry.endedAt,
});

const duplicateEntry = () =>
  new DomainError('waitlist_duplicate', 'this customer is already on the waiting list of this event');
