// The waiting room. Buyers join an event's queue and get a signed ticket; before the sale opens
// they wait in a pre-queue with no place; at sale_opens_at the pre-queue is shuffled once
// (places drawn from a per-event seed) and later joiners go to the back. Admission moves a
// watermark (admitted_through) forward at admit_per_minute, a little at every tick; a buyer
// whose place is under it gets an admission token, which POST /holds checks (holds.routes.ts).
//
// Who does what:
//   joins    batched per event like holds (one transaction per batch, on the queue's row lock).
//   ticks    every process tries every QUEUE_TICK_MS; the queue row's lock (skip locked) and
//            its ticked_at make one of them advance each event per tick, so admission runs once
//            however many processes there are, and survives any of them (or a failover: the
//            state is in the database).
//   status   answered from memory: the ticket carries its place (or the process loads the
//            pre-queue's draw once), and each process learns the watermark and when each step
//            was taken by polling one row per queued event per tick, and at once on
//            PostgreSQL by NOTIFY. No query per request, so 100,000 buyers polling cost what one
//            does, and status keeps answering while the database is away.
import { createHmac } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Clock } from '../clock.ts';
import type { Metrics } from '../metrics.ts';
import { DomainError, notFound } from '../errors.ts';
import { KeyedBatcher } from '../holds/keyed-batcher.ts';
import type { QueueRow, QueueStateRow, TicketRow } from '../storage/queue.sql.ts';
import type { Store, Tx } from '../storage/store.ts';
import {
  ANONYMOUS_PREFIX,
  type Admission,
  type AdmissionKeys,
  type Ticket,
  anonymousCustomer,
  signAdmission,
  signTicket,
  verifyAdmission,
  verifyTicket,
} from './tokens.ts';

export interface QueueConfig {
  admissionKeys: AdmissionKeys;
  queueTickMs: number;
  queueShuffleSeed: string | undefined;
  holdBatchMax: number;
  holdQueueMax: number;
}

/** A tick that comes late (a slow process, an outage) admits at most this much time's worth: no burst after a pause. */
const MAX_TICK_CATCHUP_MS = 2_000;
/** The tick used for the once-per-tick rule when QUEUE_TICK_MS=0 (tests tick by hand). */
const DEFAULT_TICK_MS = 500;
const NOTIFY_CHANNEL = 'box_office_queue';
/**
 * Tickets kept verified, by their text: a waiting buyer asks again every few seconds, and a
 * hit skips the HMAC, the base64 and the JSON (the dearest part of a status request). The
 * 100,000 waiting buyers issue 20 plans for fit, at a few hundred bytes each; past that the map
 * starts again.
 */
const VERIFIED_TICKETS_MAX = 100_000;

/**
 * Signed admission tokens kept, by ticket: an admitted buyer's status is asked again and again,
 * and the token it gets is always the same. Verified tokens are not kept (as tickets are): a
 * buyer usually holds once per admission, so under a sale such a map only grew (measured: 2 µs
 * more per hold, and more GC, with every hold's token its own). Past this many, the map starts
 * again.
 */
const ADMISSION_TOKENS_MAX = 100_000;

export type QueueState = 'prequeue' | 'waiting' | 'paused' | 'sold_out' | 'admitted' | 'expired' | 'closed';

export interface QueueStatus {
  eventId: number;
  state: QueueState;
  /** The place in line; null in the pre-queue. */
  position: number | null;
  /** Buyers before this one not yet admitted. */
  ahead: number | null;
  /** ahead ÷ the admission rate, in seconds; null when not waiting. */
  etaSeconds: number | null;
  saleOpensAt: Date | null;
  /** When admitted: the token for Admission-Token, and until when it works. */
  admissionToken: string | null;
  admissionExpiresAt: Date | null;
}

export interface Joined {
  ticket: string;
  status: QueueStatus;
}

/** What staff see of one event's queue. */
export interface QueueSummary {
  eventId: number;
  joined: number;
  /** Given a place and not yet admitted. */
  waiting: number;
  /** In the pre-queue, before the draw. */
  prequeue: number;
  admittedThrough: number;
  admitPerMinute: number;
  admissionTtlSeconds: number;
  paused: boolean;
  soldOut: boolean;
  /** When the last in line should be admitted at this rate; null with nobody waiting. */
  lastEtaSeconds: number | null;
  saleOpensAt: Date;
  prequeueOpensAt: Date | null;
}

/** One event's queue as this process knows it. */
interface Known {
  row: QueueStateRow | null;
  /** Admission's steps in order: positions up to `through` were admitted at `at`. */
  advances: Array<{ through: number; at: Date }>;
  /** The pre-queue's drawn places, loaded once after the draw. */
  prequeue: Map<number, number> | null;
}

/** Buyers given a place and not yet admitted: places run 1..nextPosition - 1. */
const waitingIn = (queue: { nextPosition: number; admittedThrough: number }): number =>
  queue.nextPosition - 1 - queue.admittedThrough;

/** What a process knows of an event with no queue (or whose queue it could not read). */
const NOTHING_KNOWN: Known = Object.freeze({ row: null, advances: [], prequeue: null });

/**
 * The pre-queue's order: tickets sorted by an HMAC of their number under the event's seed.
 * Reproducible from the seed (tests set QUEUE_SHUFFLE_SEED), unpredictable without it, and
 * unrelated to join order.
 */
export function drawOrder(seed: string, ticketNos: readonly number[]): number[] {
  const keyed = ticketNos.map((no) => ({ no, key: createHmac('sha256', seed).update(String(no)).digest('hex') }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.no - b.no));
  return keyed.map((entry) => entry.no);
}

interface JoinRequest {
  customer: string | null;
}

export class QueueService {
  private readonly known = new Map<number, Known>();
  private readonly verified = new Map<string, Readonly<Ticket>>();
  /** By `event:ticket`: the token and what it was signed from, so a changed TTL signs anew. */
  private readonly signedAdmissions = new Map<string, { issuedAtMs: number; ttlSeconds: number; token: string }>();
  private readonly batcher: KeyedBatcher<number, JoinRequest, Ticket>;
  private readonly watchers = new Set<(eventIds: ReadonlySet<number>) => void>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopListening: (() => Promise<void>) | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: QueueConfig,
    private readonly log?: FastifyBaseLogger,
    private readonly metrics?: Metrics,
  ) {
    this.batcher = new KeyedBatcher(
      (eventId, requests) => this.joinBatch(eventId, requests),
      config.holdBatchMax,
      config.holdQueueMax,
    );
  }

  private get tickMs(): number {
    return this.config.queueTickMs > 0 ? this.config.queueTickMs : DEFAULT_TICK_MS;
  }

  async start(): Promise<void> {
    if (this.config.queueTickMs === 0) return;
    this.stopListening = await this.store.sql
      .listen?.(NOTIFY_CHANNEL, () => void this.refresh().catch(() => {}))
      .catch(() => undefined);
    const loop = () => {
      this.running = this.tick()
        .catch((error: unknown) => this.log?.warn({ err: error }, 'queue tick failed; retrying next tick'))
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(loop, this.config.queueTickMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    clearTimeout(timer);
    await this.running;
    await this.stopListening?.().catch(() => {});
  }

  /** Calls `watcher` with the events whose queue this process saw move; returns the unsubscribe. */
  watch(watcher: (eventIds: ReadonlySet<number>) => void): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  // -- joining ---------------------------------------------------------------------------

  /** `customer` normalised already; null for an anonymous join. */
  async join(eventId: number, customer: string | null): Promise<Joined> {
    if (customer?.startsWith(ANONYMOUS_PREFIX)) {
      throw new DomainError('validation_failed', `a customer may not start with ${ANONYMOUS_PREFIX}`, {
        errors: [
          { path: 'body/customer', message: `must not start with ${ANONYMOUS_PREFIX} (kept for anonymous tickets)` },
        ],
      });
    }
    const ticket = await this.batcher.submit(eventId, { customer });
    this.metrics?.queueJoins.inc();
    const known = await this.knownOf(eventId).catch(() => NOTHING_KNOWN);
    return { ticket: signTicket(this.config.admissionKeys, ticket), status: this.statusOf(ticket, known) };
  }

  private async joinBatch(eventId: number, requests: JoinRequest[]): Promise<Array<Ticket | Error>> {
    const now = this.clock.now();
    const fast = await this.joinFast(eventId, requests, now);
    if (fast !== null) return fast;
    const result = await this.store.transaction(async (tx) => {
      const queue = await this.store.lockQueue(tx, eventId);
      const rules = queue === null ? null : await this.store.snapshotIn(tx, eventId, now);
      if (queue === null || rules === null || rules.limits.queue === null || rules.limits.saleOpensAt === null) {
        return requests.map(() => notFound('queue of event', eventId));
      }
      const { saleOpensAt, queue: settings, customerRequired } = rules.limits;
      if (settings.prequeueOpensAt !== null && now < settings.prequeueOpensAt) {
        const error = new DomainError(
          'queue_not_open',
          `the queue opens at ${settings.prequeueOpensAt.toISOString()}; join then`,
          { prequeue_opens_at: settings.prequeueOpensAt.toISOString() },
        );
        return requests.map(() => error);
      }
      const open = now >= saleOpensAt;
      if (open && !queue.shuffled) await this.draw(tx, queue);
      const named = [...new Set(requests.flatMap((r) => (r.customer === null ? [] : [r.customer])))];
      const existing = new Map(
        (await this.store.ticketsOfCustomers(tx, eventId, named)).map((row) => [row.customer!, row]),
      );
      const fresh: TicketRow[] = [];
      const take = (customer: string | null): TicketRow => {
        queue.joined += 1;
        const row = { ticketNo: queue.joined, customer, prequeue: !open, position: open ? queue.nextPosition++ : null };
        fresh.push(row);
        return row;
      };
      const rows = requests.map((request): TicketRow | DomainError => {
        if (request.customer === null) {
          return customerRequired
            ? new DomainError('customer_required', 'this event sells only to a named customer: give customer')
            : take(null);
        }
        let row = existing.get(request.customer);
        if (row === undefined) existing.set(request.customer, (row = take(request.customer)));
        return row;
      });
      await this.store.insertTickets(tx, eventId, fresh, now);
      await this.store.saveQueue(tx, queue);
      return rows.map((row) =>
        row instanceof DomainError
          ? row
          : // A pre-queue ticket's place is drawn later: it does not carry one, even once drawn,
            // so that joining again gives back the very same ticket.
            { eventId, ticketNo: row.ticketNo, customer: row.customer, position: row.prequeue ? null : row.position },
      );
    });
    return result;
  }

  /** A batch on an open, drawn queue in one statement (PostgreSQL); null when it takes the full path. */
  private async joinFast(eventId: number, requests: JoinRequest[], now: Date): Promise<Ticket[] | null> {
    if (this.store.joinOpenQueue === undefined) return null;
    // Each named customer once (a customer joining twice in one batch gets one ticket), each
    // anonymous join its own, in join order.
    const named = new Set<string>();
    const asked: Array<string | null> = [];
    for (const { customer } of requests) {
      if (customer === null) asked.push(null);
      else if (!named.has(customer)) {
        named.add(customer);
        asked.push(customer);
      }
    }
    const rows = await this.store.joinOpenQueue(eventId, asked, now);
    if (rows === null) return null;
    const byCustomer = new Map<string, TicketRow>();
    const anonymous: TicketRow[] = [];
    for (const row of rows) {
      if (row.customer === null) anonymous.push(row);
      else byCustomer.set(row.customer, row);
    }
    // Numbered in join order: the lowest ticket goes to the first anonymous request.
    anonymous.sort((a, b) => a.ticketNo - b.ticketNo);
    let nextAnonymous = 0;
    return requests.map(({ customer }) => {
      const row = customer === null ? anonymous[nextAnonymous++]! : byCustomer.get(customer)!;
      return { eventId, ticketNo: row.ticketNo, customer, position: row.prequeue ? null : row.position };
    });
  }

  /** The pre-queue's draw, once, when the sale opens: places 1..n by drawOrder (queue locked). */
  private async draw(tx: Tx, queue: QueueRow): Promise<void> {
    const ticketNos = await this.store.prequeueTicketNos(tx, queue.eventId);
    const order = drawOrder(this.config.queueShuffleSeed ?? queue.seed, ticketNos);
    await this.store.assignPositions(
      tx,
      queue.eventId,
      order.map((ticketNo, i) => [ticketNo, queue.nextPosition + i] as const),
    );
    queue.nextPosition += order.length;
    queue.shuffled = true;
  }

  // -- admitting ----------------------------------------------------------------------------

  /** One tick: advances every queued event (where no other process just did), then learns where each got to. */
  async tick(): Promise<void> {
    await this.refresh();
    const moved: number[] = [];
    const now = this.clock.now();
    for (const [eventId, known] of this.known) {
      if (known.row === null || !hasWorkAt(known.row, now)) continue;
      if (await this.advance(eventId)) moved.push(eventId);
    }
    if (moved.length > 0) {
      await this.store.sql.notify?.(NOTIFY_CHANNEL, moved.join(',')).catch(() => {});
      await this.refresh();
    }
  }

  /** Admits what the rate allows since the last tick; true when admission moved. */
  private async advance(eventId: number): Promise<boolean> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const queue = await this.store.lockQueue(tx, eventId, true);
      if (queue === null) return false; // another process is ticking it
      const event = await this.store.snapshotIn(tx, eventId, now);
      if (event?.limits.queue == null || event.limits.saleOpensAt === null || now < event.limits.saleOpensAt)
        return false;
      const drawing = !queue.shuffled;
      if (drawing) await this.draw(tx, queue);
      // The first tick earns from the opening (its draw may have come with a join meanwhile).
      let since = now.getTime() - (queue.tickedAt ?? event.limits.saleOpensAt).getTime();
      // Another process ticked this event within the tick: once per tick, whoever comes.
      if (since < this.tickMs && !drawing) return false;
      const waiting = waitingIn(queue);
      // Ticks skip a queue with nobody waiting (hasWorkAt), so its ticked_at is as old as its
      // last buyer: earn from when the first one now waiting joined, or a crowd arriving at an
      // idle queue would be let in MAX_TICK_CATCHUP_MS' worth at once.
      if (since > 2 * this.tickMs && waiting > 0 && !drawing) {
        const joinedAt = await this.store.joinedAtOfPosition(tx, eventId, queue.admittedThrough + 1);
        if (joinedAt !== null) since = Math.max(0, Math.min(since, now.getTime() - joinedAt.getTime()));
      }
      let admitted = 0;
      // Paused, or nothing to sell: admitting buyers who could only be refused would use up
      // their window; the credit is kept and nothing is earned meanwhile.
      if (!queue.paused && event.available > 0) {
        queue.credit += (event.limits.queue.admitPerMinute * Math.min(since, MAX_TICK_CATCHUP_MS)) / 60_000;
        admitted = Math.min(Math.floor(queue.credit), waiting);
        queue.credit -= admitted;
        // With nobody left to admit the credit is not banked, or a later crowd would get in at once.
        if (admitted === waiting) queue.credit = Math.min(queue.credit, 1);
        queue.admittedThrough += admitted;
      }
      queue.tickedAt = now;
      await this.store.saveQueue(tx, queue);
      if (admitted > 0) await this.store.insertAdvance(tx, eventId, queue.admittedThrough, now);
      return admitted > 0 || drawing;
    });
  }

  /** Learns every queued event's state: one statement, plus the admission steps it has not seen. */
  async refresh(eventId?: number): Promise<void> {
    const rows = await this.store.queueStates(this.clock.now(), eventId);
    const seen = new Set<number>();
    const changed = new Set<number>();
    for (const row of rows) {
      seen.add(row.eventId);
      const known = this.known.get(row.eventId) ?? { row: null, advances: [], prequeue: null };
      const last = known.advances.at(-1)?.through ?? 0;
      if (row.admittedThrough > last) {
        const steps = await this.store.advances(row.eventId, last);
        // A refresh that ran meanwhile (a NOTIFY's) may have added some of them already.
        const now = known.advances.at(-1)?.through ?? 0;
        known.advances.push(...steps.filter((step) => step.through > now));
      }
      if (row.shuffled && known.prequeue === null) known.prequeue = await this.store.prequeuePositions(row.eventId);
      if (!sameState(known.row, row)) changed.add(row.eventId);
      known.row = row;
      this.known.set(row.eventId, known);
      const label = { event_id: String(row.eventId) };
      this.metrics?.queueWaiting.set(label, waitingIn(row));
      this.metrics?.queueAdmittedThrough.set(label, row.admittedThrough);
    }
    for (const [id, known] of this.known) {
      if ((eventId === undefined || id === eventId) && !seen.has(id)) {
        if (known.row !== null) changed.add(id);
        known.row = null;
      }
    }
    if (eventId !== undefined && !seen.has(eventId) && !this.known.has(eventId)) {
      this.known.set(eventId, { row: null, advances: [], prequeue: null });
    }
    if (changed.size > 0) for (const watcher of this.watchers) watcher(changed);
  }

  private async knownOf(eventId: number): Promise<Known> {
    const known = this.known.get(eventId);
    if (known !== undefined) return known;
    await this.refresh(eventId);
    return this.known.get(eventId)!;
  }

  async setPaused(eventId: number, paused: boolean): Promise<QueueSummary> {
    if (!(await this.store.setPaused(eventId, paused, this.clock.now()))) throw notFound('queue of event', eventId);
    await this.store.sql.notify?.(NOTIFY_CHANNEL, String(eventId)).catch(() => {});
    return this.summary(eventId);
  }

  async summary(eventId: number): Promise<QueueSummary> {
    await this.refresh(eventId);
    const row = this.known.get(eventId)?.row;
    if (row == null) throw notFound('queue of event', eventId);
    const waiting = waitingIn(row);
    return {
      eventId,
      joined: row.joined,
      waiting,
      prequeue: row.shuffled ? 0 : row.joined,
      admittedThrough: row.admittedThrough,
      admitPerMinute: row.settings.admitPerMinute,
      admissionTtlSeconds: row.settings.admissionTtlSeconds,
      paused: row.paused,
      soldOut: row.available <= 0,
      lastEtaSeconds: waiting > 0 ? Math.ceil((waiting * 60) / row.settings.admitPerMinute) : null,
      saleOpensAt: row.saleOpensAt,
      prequeueOpensAt: row.settings.prequeueOpensAt,
    };
  }

  // -- status -------------------------------------------------------------------------------

  /** The signed ticket, or null for anything this service did not issue. */
  ticketOf(text: string): Ticket | null {
    // The keys are fixed for the process's life, so a string that verified once always would.
    const known = this.verified.get(text);
    if (known !== undefined) return known;
    const ticket = verifyTicket(this.config.admissionKeys, text);
    if (ticket === null) return null;
    if (this.verified.size >= VERIFIED_TICKETS_MAX) this.verified.clear();
    this.verified.set(text, Object.freeze(ticket));
    return ticket;
  }

  /**
   * A ticket's status, from memory. The database is asked only the first time this process
   * hears of the ticket's event; after that, however many buyers ask, never.
   */
  async status(ticket: Ticket): Promise<QueueStatus> {
    return this.knownStatus(ticket) ?? this.statusOf(ticket, await this.knownOf(ticket.eventId));
  }

  /**
   * The status without waiting, once this process knows the ticket's event (else undefined):
   * GET /queue/:ticket answers from it with no promise of its own, as 100,000 buyers poll it.
   */
  knownStatus(ticket: Ticket): QueueStatus | undefined {
    const known = this.known.get(ticket.eventId);
    return known === undefined ? undefined : this.statusOf(ticket, known);
  }

  private statusOf(ticket: Ticket, known: Known): QueueStatus {
    const { row } = known;
    const { eventId } = ticket;
    const opens = row?.saleOpensAt ?? null;
    if (row === null) return statusAs(eventId, 'closed', ticket.position, null, null, opens);
    const position = ticket.position ?? known.prequeue?.get(ticket.ticketNo) ?? null;
    if (position === null) return statusAs(eventId, 'prequeue', null, null, null, opens);
    if (position <= row.admittedThrough) {
      // Dated by the step that admitted it, which every process knows alike: the same token everywhere.
      const admittedAt = admittedAtOf(known.advances, position) ?? this.clock.now();
      const admission: Admission = {
        eventId,
        ticketNo: ticket.ticketNo,
        customer: ticket.customer ?? anonymousCustomer(eventId, ticket.ticketNo),
        issuedAt: admittedAt,
        expiresAt: new Date(admittedAt.getTime() + row.settings.admissionTtlSeconds * 1000),
      };
      if (this.clock.now() >= admission.expiresAt) return statusAs(eventId, 'expired', position, 0, null, opens);
      const token = this.admissionTokenOf(admission, row.settings.admissionTtlSeconds);
      return statusAs(eventId, 'admitted', position, 0, 0, opens, token, admission.expiresAt);
    }
    const ahead = position - row.admittedThrough - 1;
    const state: QueueState = row.available <= 0 ? 'sold_out' : row.paused ? 'paused' : 'waiting';
    const etaSeconds = state === 'waiting' ? Math.ceil(((ahead + 1) * 60) / row.settings.admitPerMinute) : null;
    return statusAs(eventId, state, position, ahead, etaSeconds, opens);
  }

  /** The admission's signed token: the same claims always sign to the same token, so it is kept. */
  private admissionTokenOf(admission: Admission, ttlSeconds: number): string {
    const key = `${admission.eventId}:${admission.ticketNo}`;
    const issuedAtMs = admission.issuedAt.getTime();
    const kept = this.signedAdmissions.get(key);
    if (kept !== undefined && kept.issuedAtMs === issuedAtMs && kept.ttlSeconds === ttlSeconds) return kept.token;
    const token = signAdmission(this.config.admissionKeys, admission);
    if (this.signedAdmissions.size >= ADMISSION_TOKENS_MAX) this.signedAdmissions.clear();
    this.signedAdmissions.set(key, { issuedAtMs, ttlSeconds, token });
    return token;
  }

  // -- admission tokens on holds --------------------------------------------------------------

  /**
   * Checks the Admission-Token of a hold on `eventId` for `customer` (null: none given): the
   * signature, the event, the expiry, the customer. Returns the ticket admitted and the
   * customer the hold must carry.
   */
  checkAdmission(text: string, eventId: number, customer: string | null): { ticketNo: number; customer: string } {
    const admission = verifyAdmission(this.config.admissionKeys, text);
    if (admission === null)
      throw new DomainError('admission_invalid', 'Admission-Token is not a token this service issued', {
        queue: `/events/${eventId}/queue`,
      });
    if (admission.eventId !== eventId)
      throw new DomainError('admission_invalid', `Admission-Token is for event ${admission.eventId}, not ${eventId}`, {
        queue: `/events/${eventId}/queue`,
      });
    if (this.clock.now() >= admission.expiresAt)
      throw new DomainError('admission_expired', `Admission-Token expired at ${admission.expiresAt.toISOString()}`, {
        expired_at: admission.expiresAt.toISOString(),
      });
    if (customer !== null && customer !== admission.customer)
      throw new DomainError('admission_invalid', 'Admission-Token was issued to another customer');
    return { ticketNo: admission.ticketNo, customer: admission.customer };
  }
}

/**
 * Whether a tick has anything to do for this queue, from what the last refresh learned: the
 * draw at the opening, or someone waiting on an open, running queue. Ticking the others would
 * be a transaction with a write per queued event twice a second, for every event that ever had
 * a queue, from every process; skipped, an idle queue costs nothing but its row in the one
 * refresh statement. A paused queue is skipped too: resuming it sets ticked_at (queue.sql.ts),
 * so the pause is not earned. A sold-out one is not skipped (its tick keeps ticked_at fresh,
 * and seats can come back at any moment).
 */
function hasWorkAt(row: QueueStateRow, now: Date): boolean {
  if (now < row.saleOpensAt) return false;
  if (!row.shuffled) return true;
  return !row.paused && waitingIn(row) > 0;
}

const sameState = (a: QueueStateRow | null, b: QueueStateRow): boolean =>
  a !== null &&
  a.admittedThrough === b.admittedThrough &&
  a.nextPosition === b.nextPosition &&
  a.joined === b.joined &&
  a.paused === b.paused &&
  a.shuffled === b.shuffled &&
  a.available > 0 === b.available > 0 &&
  a.settings.admitPerMinute === b.settings.admitPerMinute;

/** A status, always built in this one shape (the route reads every field of every one). */
const statusAs = (
  eventId: number,
  state: QueueState,
  position: number | null,
  ahead: number | null,
  etaSeconds: number | null,
  saleOpensAt: Date | null,
  admissionToken: string | null = null,
  admissionExpiresAt: Date | null = null,
): QueueStatus => ({ eventId, state, position, ahead, etaSeconds, saleOpensAt, admissionToken, admissionExpiresAt });

/** When `position` was admitted: the first step that reached it (binary search; the steps are in order). */
function admittedAtOf(advances: ReadonlyArray<{ through: number; at: Date }>, position: number): Date | undefined {
  let low = 0;
  let high = advances.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (advances[middle]!.through >= position) high = middle;
    else low = middle + 1;
  }
  return advances[low]?.at;
}
