// What the load generator sends, and the books check afterwards.
//   holds     POST /holds for the hot event(s)
//   bookings  POST /holds until enough holds exist (not measured), then POST /book each once
//   mixed     per four requests: two holds, one booking of a hold granted earlier in the run,
//             one GET /events/:id snapshot
// Every acknowledged response is counted per event, so afterwards the books can be checked
// exactly against GET /events/:id and (on servers the bench started) against SUMs over rows.
import { type LoadResult, type OpenLoopResult, httpRequest, runLoad, runOpenLoop } from './load.ts';
import type { Scenario } from './options.ts';

export interface Target {
  host: string;
  port: number;
  adminToken: string | undefined;
  /** The server is bench/server.ts, with the /__bench routes. */
  benchRoutes: boolean;
}

export interface HotEvent {
  id: number;
  total: number;
}

export interface LoadShape {
  scenario: Scenario;
  /** Closed loop: this many connections, one request in flight on each. */
  connections: number;
  /** Open loop instead: a fixed arrival rate (connections above then only prepare bookings). */
  open?: OpenArrivals;
  durationMs: number;
  graceMs: number;
  qty: number;
  /** Every hold carries a customer of its own (--customers unique). */
  uniqueCustomers?: boolean;
  /** --features: each hold also carries this Admission-Token for its event and customer. */
  admissionToken?: ((eventId: number, customer: string) => string) | undefined;
}

export interface OpenArrivals {
  ratePerSecond: number;
  initialConnections: number;
  maxConnections: number;
}

/** Called around the measured load only (not the bookings' preparation, not the books check). */
export interface MeasureHooks {
  started?(): Promise<void> | void;
  finished?(load: LoadResult): Promise<void> | void;
}

interface Tally {
  holds: number;
  holdSeats: number;
  bookings: number;
  bookedSeats: number;
}

export interface ScenarioOutcome {
  load: LoadResult;
  /** The same object as `load`, for an open-loop run. */
  openLoop: OpenLoopResult | null;
  holds: number;
  refused: number;
  bookings: number;
  snapshots: number;
  holdsPerSecond: number;
  bookingsPerSecond: number;
  requestsPerSecond: number;
  books: BooksCheck;
}

export interface BooksCheck {
  ok: boolean;
  exact: boolean;
  problems: string[];
}

export async function api<T = Record<string, unknown>>(
  target: Target,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 600_000,
): Promise<{ status: number; json: T }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (target.adminToken !== undefined) headers.authorization = `Bearer ${target.adminToken}`;
  const response = await fetch(`http://${target.host}:${target.port}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: response.status, json: (await response.json()) as T };
}

export async function createEvent(
  target: Target,
  name: string,
  totalSeats: number,
  maxSeatsPerCustomer?: number,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const limit = maxSeatsPerCustomer === undefined ? {} : { max_seats_per_customer: maxSeatsPerCustomer };
  const { status, json } = await api<{ event_id: number }>(target, 'POST', '/events', {
    event: { name, total_seats: totalSeats, ...limit, ...extra },
  });
  if (status !== 201) throw new Error(`POST /events answered ${status}: ${JSON.stringify(json)}`);
  return json.event_id;
}

type Kind = 'hold' | 'book' | 'snapshot';

/**
 * Per-customer hold requests built before a closed-loop window, per second of it: above any
 * rate this box reaches (past them, requests are built as they are sent).
 */
const PREBUILT_HOLDS_PER_SECOND = 25_000;

/** Drives one scenario at the events and checks the books. */
export async function runScenario(
  target: Target,
  events: HotEvent[],
  shape: LoadShape,
  hooks: MeasureHooks = {},
): Promise<ScenarioOutcome> {
  const hostHeader = `${target.host}:${target.port}`;
  const tallies = events.map((): Tally => ({ holds: 0, holdSeats: 0, bookings: 0, bookedSeats: 0 }));
  const kinds = new WeakMap<Buffer, { kind: Kind; event: number }>();
  const tag = (request: Buffer, kind: Kind, event: number) => {
    kinds.set(request, { kind, event });
    return request;
  };
  const holdRequests = events.map((event, i) =>
    tag(
      httpRequest('POST', '/holds', hostHeader, JSON.stringify({ hold: { event_id: event.id, qty: shape.qty } })),
      'hold',
      i,
    ),
  );
  // --customers unique: a request of its own per hold (c-1, c-2, …), built before the clock
  // starts (prebuilt, below) or, past those, when sent.
  let customers = 0;
  const perCustomer = shape.uniqueCustomers === true || shape.admissionToken !== undefined;
  const buildHoldRequest = (i: number) => {
    const customer = `c-${++customers}`;
    const eventId = events[i]!.id;
    const headers: Record<string, string> =
      shape.admissionToken === undefined ? {} : { 'admission-token': shape.admissionToken(eventId, customer) };
    const body = JSON.stringify({ hold: { event_id: eventId, qty: shape.qty, customer } });
    return tag(httpRequest('POST', '/holds', hostHeader, body, headers), 'hold', i);
  };
  // Each buyer has its request, token included, before it sends it: the queue signed the token
  // when the buyer's turn came, not when the seat is asked for. Built in the window, the
  // generator's signing and encoding (19 µs per hold) took the two cores' CPU from the service.
  const prebuilt: Buffer[][] = events.map(() => []);
  if (perCustomer) {
    const expected =
      ((shape.open?.ratePerSecond ?? PREBUILT_HOLDS_PER_SECOND) * shape.durationMs * 1.2) / 1000 / events.length;
    for (const [i, pool] of prebuilt.entries()) {
      for (let n = 0; n < expected; n++) pool.push(buildHoldRequest(i));
      pool.reverse();
    }
  }
  const holdRequest = (i: number) => (perCustomer ? (prebuilt[i]!.pop() ?? buildHoldRequest(i)) : holdRequests[i]!);
  const snapshotRequests = events.map((event, i) =>
    tag(httpRequest('GET', `/events/${event.id}`, hostHeader), 'snapshot', i),
  );
  // Holds acknowledged and not yet booked, oldest first: what the bookings go through.
  const bookable: Array<{ holdId: number; token: string; event: number }> = [];
  let bookableHead = 0;
  const bookRequest = () => {
    const hold = bookable[bookableHead++]!;
    return tag(
      httpRequest(
        'POST',
        '/book',
        hostHeader,
        JSON.stringify({ booking: { hold_id: hold.holdId, payment_token: hold.token } }),
      ),
      'book',
      hold.event,
    );
  };
  let refused = 0;
  let snapshots = 0;
  const keepHolds = shape.scenario !== 'holds';
  const onResponse = (status: number, body: Buffer, request: Buffer) => {
    const { kind, event } = kinds.get(request)!;
    const tally = tallies[event]!;
    if (kind === 'hold' && status === 201) {
      tally.holds++;
      tally.holdSeats += shape.qty;
      if (keepHolds) {
        const hold = JSON.parse(body.toString()) as { hold_id: number; payment_token: string };
        bookable.push({ holdId: hold.hold_id, token: hold.payment_token, event });
      }
    } else if (kind === 'hold' && status === 409) {
      refused++;
    } else if (kind === 'book' && status === 201) {
      tally.bookings++;
      tally.bookedSeats += shape.qty;
    } else if (kind === 'snapshot' && status === 200) {
      snapshots++;
    }
  };
  const base = {
    host: target.host,
    port: target.port,
    connections: shape.connections,
    graceMs: shape.graceMs,
    onResponse,
    kindOf: (request: Buffer) => kinds.get(request)!.kind,
    // Every connection is accepted (and has answered once) before the clock starts.
    prime: httpRequest('GET', '/healthz', hostHeader),
  };

  let seq = 0;
  if (shape.scenario === 'bookings') {
    // Grant the holds to book first, more than the run can book, unmeasured.
    const openNeeds =
      shape.open === undefined ? 0 : Math.ceil(((shape.open.ratePerSecond * shape.durationMs) / 1000) * 1.2);
    const wanted = Math.max(20_000, Math.ceil(shape.durationMs * 3), openNeeds);
    const prepared = await runLoad({
      ...base,
      durationMs: 600_000,
      next: () => (seq < wanted ? holdRequest(seq++ % events.length) : null),
    });
    if (prepared.unknownOutcome > 0) throw new Error('some holds to book had no answer');
    refused = 0;
  }
  const next: Record<Scenario, () => Buffer | null> = {
    holds: () => holdRequest(seq++ % events.length),
    bookings: () => (bookableHead < bookable.length ? bookRequest() : null),
    mixed: () => {
      const slot = seq++ % 4;
      if (slot === 2 && bookableHead < bookable.length) return bookRequest();
      if (slot === 3) return snapshotRequests[seq % events.length]!;
      return holdRequest(seq % events.length);
    },
  };
  const holdsBefore = sum(tallies.map((t) => t.holds));
  await hooks.started?.();
  let load: LoadResult;
  let openLoop: OpenLoopResult | null = null;
  if (shape.open === undefined) {
    load = await runLoad({ ...base, durationMs: shape.durationMs, next: next[shape.scenario] });
  } else {
    const { connections: _closed, ...rest } = base;
    load = openLoop = await runOpenLoop({
      ...rest,
      ...shape.open,
      durationMs: shape.durationMs,
      next: next[shape.scenario],
    });
  }
  await hooks.finished?.(load);
  const seconds = load.elapsedMs / 1000;
  const holds = sum(tallies.map((t) => t.holds)) - holdsBefore;
  const bookings = sum(tallies.map((t) => t.bookings));
  return {
    load,
    openLoop,
    holds,
    refused,
    bookings,
    snapshots,
    holdsPerSecond: holds / seconds,
    bookingsPerSecond: bookings / seconds,
    requestsPerSecond: load.completed / seconds,
    books: await checkBooks(target, events, tallies, load.unknownOutcome, shape.qty),
  };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Waits (up to 2 minutes) until two reads of the event 1 s apart agree. */
async function settled(target: Target, eventId: number): Promise<void> {
  let last = '';
  for (let tries = 0; tries < 120; tries++) {
    const { json } = await api<Snapshot>(target, 'GET', `/events/${eventId}`);
    const now = `${json.available}/${json.held}/${json.booked}`;
    if (now === last) return;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

interface Snapshot {
  total: number;
  available: number;
  held: number;
  booked: number;
}

/**
 * The books: for every event, available + held + booked == total with none negative (no
 * oversell), held and booked equal to what was acknowledged, and on
 * bench servers the counters equal SUMs over the hold and booking rows.
 */
async function checkBooks(
  target: Target,
  events: HotEvent[],
  tallies: Tally[],
  unknown: number,
  qty: number,
): Promise<BooksCheck> {
  const problems: string[] = [];
  const exact = unknown === 0;
  for (const [i, event] of events.entries()) {
    const tally = tallies[i]!;
    // Requests the generator gave up on may still be queued in the server and commit later: the
    // snapshot and the recount below are two reads, so wait for the event to stop moving first.
    if (!exact) await settled(target, event.id);
    const { status, json: snap } = await api<Snapshot>(target, 'GET', `/events/${event.id}`);
    if (status !== 200) {
      problems.push(`event ${event.id}: GET answered ${status}`);
      continue;
    }
    const expectHeld = tally.holdSeats - tally.bookedSeats;
    const expectBooked = tally.bookedSeats;
    if (snap.available + snap.held + snap.booked !== snap.total || snap.total !== event.total) {
      problems.push(
        `event ${event.id}: ${snap.available} available + ${snap.held} held + ${snap.booked} booked != ${event.total}`,
      );
    }
    if (snap.available < 0 || snap.held < 0 || snap.booked < 0)
      problems.push(`event ${event.id}: oversold ${JSON.stringify(snap)}`);
    // With requests of unknown outcome the server may have granted up to that many more seats.
    const slack = exact ? 0 : unknown * qty;
    const extra = snap.held + snap.booked - (expectHeld + expectBooked);
    if (extra < 0 || extra > slack || (exact && snap.booked !== expectBooked)) {
      problems.push(
        `event ${event.id}: held ${snap.held}, booked ${snap.booked}; acknowledged ${expectHeld} held, ${expectBooked} booked`,
      );
    }
    if (!target.benchRoutes) continue;
    const { json: rows } = await api<{ held: number; booked: number; active_holds?: number }>(
      target,
      'GET',
      `/__bench/recount/${event.id}`,
    );
    if (rows.held !== snap.held || rows.booked !== snap.booked) {
      problems.push(
        `event ${event.id}: counters say ${snap.held} held, ${snap.booked} booked; rows say ${rows.held}, ${rows.booked}`,
      );
    }
    const expectActive = tally.holds - tally.bookings;
    if (exact && rows.active_holds !== undefined && rows.active_holds !== expectActive) {
      problems.push(`event ${event.id}: ${rows.active_holds} active hold rows; ${expectActive} acknowledged`);
    }
  }
  return { ok: problems.length === 0, exact, problems };
}
