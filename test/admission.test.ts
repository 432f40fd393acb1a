// The waiting room, tested as a buyer, an operator and an attacker would use it: joining before
// and after the opening, the pre-queue's draw, admission at its rate over simulated minutes (a
// manual clock, ticked by hand), tokens tampered with, expired, moved to another event or
// customer, or shared past the limit, two processes ticking one queue, and the database going
// away during the sale.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { drawOrder } from '../src/admission/queue.service.ts';
import { parseAdmissionKeys, signAdmission, signTicket } from '../src/admission/tokens.ts';
import { DatabaseUnavailable } from '../src/errors.ts';
import { redactedUrl } from '../src/http/hooks.ts';
import type { Store } from '../src/storage/store.ts';
import { contractHarness, contractTest, isProblem, twoProcesses } from './support/contract.ts';
import { type Harness, backends, books } from './support/helpers.ts';

type H = Harness & { close: () => Promise<void> };

const SECRET = 'k1:admission-test-secret-0123456789abcdef';
const SEED = 'admission-test-seed';
const ADMIN = { authorization: 'Bearer queue-admin-token-01234' };
// QUEUE_TICK_MS=0: no timer; the tests tick by hand, one simulated second at a time.
const ENV = {
  ADMIN_TOKEN: 'queue-admin-token-01234',
  ADMISSION_SECRET: SECRET,
  QUEUE_SHUFFLE_SEED: SEED,
  QUEUE_TICK_MS: '0',
};
const LIMIT = 4;

interface Status {
  event_id: number;
  state: string;
  position: number | null;
  ahead: number | null;
  eta_seconds: number | null;
  admission_token: string | null;
  admission_expires_at: string | null;
}
type Joined = Status & { ticket: string };

const iso = (h: H, seconds: number) => new Date(h.clock.now().getTime() + seconds * 1000).toISOString();

async function queuedEvent(
  h: H,
  { seats = 100, opensIn = 60, rate = 60, ttl = 600, prequeueIn = null as number | null, limits = {} } = {},
): Promise<number> {
  const res = await h.app.inject({
    method: 'POST',
    url: '/events',
    headers: ADMIN,
    payload: {
      event: {
        name: 'On sale',
        total_seats: seats,
        max_seats_per_customer: LIMIT,
        sale_opens_at: iso(h, opensIn),
        queue: {
          admit_per_minute: rate,
          admission_ttl_seconds: ttl,
          prequeue_opens_at: prequeueIn === null ? null : iso(h, prequeueIn),
        },
        ...limits,
      },
    },
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ event_id: number }>().event_id;
}

async function join(app: App, eventId: number, customer?: string): Promise<Joined> {
  const res = await app.inject({
    method: 'POST',
    url: `/events/${eventId}/queue`,
    payload: customer === undefined ? {} : { customer },
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Joined>();
}

async function status(app: App, ticket: string): Promise<Status> {
  const res = await app.inject({ method: 'GET', url: `/queue/${ticket}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Status>();
}

const holdWith = (app: App, eventId: number, qty: number, token?: string, customer?: string) =>
  app.inject({
    method: 'POST',
    url: '/holds',
    headers: token === undefined ? {} : { 'admission-token': token },
    payload: { hold: { event_id: eventId, qty, ...(customer === undefined ? {} : { customer }) } },
  });

/** Moves the clock on one second at a time, ticking after each, as the timer would. */
async function run(h: H, seconds: number, apps: App[] = [h.app]): Promise<void> {
  for (let s = 0; s < seconds; s++) {
    h.clock.advanceSeconds(1);
    for (const app of apps) await app.queue.tick();
  }
}

async function summary(app: App, eventId: number) {
  const res = await app.inject({ method: 'GET', url: `/events/${eventId}/queue`, headers: ADMIN });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ joined: number; waiting: number; admitted_through: number; paused: boolean; sold_out: boolean }>();
}

/** A buyer who joins, waits until admitted, and returns the token. */
async function admitted(h: H, eventId: number, customer?: string): Promise<{ joined: Joined; token: string }> {
  const joined = await join(h.app, eventId, customer);
  for (let i = 0; i < 600; i++) {
    const now = await status(h.app, joined.ticket);
    if (now.state === 'admitted') return { joined, token: now.admission_token! };
    await run(h, 1);
  }
  throw new Error('never admitted');
}

describe('the access log', () => {
  test('never shows a queue ticket', () => {
    assert.equal(redactedUrl('/queue/qt1.k1.abc.def'), '/queue/[ticket]');
    assert.equal(redactedUrl('/queue/qt1.k1.abc.def/stream?x=1'), '/queue/[ticket]/stream?x=1');
    assert.equal(redactedUrl('/events/1/queue'), '/events/1/queue');
  });
});

describe('the pre-queue draw', () => {
  test('is reproducible from its seed, differs with another seed, and is not the join order', () => {
    const tickets = Array.from({ length: 200 }, (_, i) => i + 1);
    const order = drawOrder(SEED, tickets);
    assert.deepEqual(drawOrder(SEED, tickets), order);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      tickets,
      'a permutation: every ticket once',
    );
    assert.notDeepEqual(order, tickets);
    assert.notDeepEqual(drawOrder(`${SEED}-other`, tickets), order);
  });
});

for (const backend of backends()) {
  describe(`admission on ${backend.name}`, () => {
    let h: H;
    before(async () => {
      h = await contractHarness(backend, { env: ENV });
    });
    after(() => h.close());

    test('a queue needs sale_opens_at and max_seats_per_customer; the event shows its queue', async () => {
      const bad = await h.app.inject({
        method: 'POST',
        url: '/events',
        headers: ADMIN,
        payload: { event: { name: 'x', total_seats: 10, queue: { admit_per_minute: 10 } } },
      });
      const body = isProblem(bad, 400, 'validation_failed');
      const paths = (body.errors as Array<{ path: string }>).map((e) => e.path);
      assert.deepEqual(paths.sort(), ['body/event/max_seats_per_customer', 'body/event/sale_opens_at']);
      const eventId = await queuedEvent(h, { ttl: 300 });
      const event = (await h.app.inject({ method: 'GET', url: `/events/${eventId}` })).json<Record<string, unknown>>();
      assert.deepEqual(event.queue, { admit_per_minute: 60, admission_ttl_seconds: 300, prequeue_opens_at: null });
      assert.equal(event.sale_opens_at, iso(h, 60));
      // Staff change the rate alone: the rest stays.
      const patched = await h.app.inject({
        method: 'PATCH',
        url: `/events/${eventId}`,
        headers: ADMIN,
        payload: { event: { queue: { admit_per_minute: 120 } } },
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(patched.json<Record<string, unknown>>().queue, {
        admit_per_minute: 120,
        admission_ttl_seconds: 300,
        prequeue_opens_at: null,
      });
      // A queue cannot lose its cap per customer.
      const uncapped = await h.app.inject({
        method: 'PATCH',
        url: `/events/${eventId}`,
        headers: ADMIN,
        payload: { event: { max_seats_per_customer: null } },
      });
      isProblem(uncapped, 400, 'validation_failed');
    });

    test('before the pre-queue opens joins are refused; in it, no place; the same customer gets the same ticket', async () => {
      const eventId = await queuedEvent(h, { opensIn: 120, prequeueIn: 60 });
      isProblem(
        await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue`, payload: {} }),
        409,
        'queue_not_open',
      );
      h.clock.advanceSeconds(60);
      const first = await join(h.app, eventId, 'Ann+sale@Example.com');
      assert.equal(first.state, 'prequeue');
      assert.equal(first.position, null);
      const again = await join(h.app, eventId, 'ann@example.com');
      assert.equal(again.ticket, first.ticket, 'one ticket per customer, however the address is written');
      const anonymous = [await join(h.app, eventId), await join(h.app, eventId)];
      assert.notEqual(anonymous[0]!.ticket, anonymous[1]!.ticket);
      // Nobody can take an anonymous ticket's allowance by naming it.
      isProblem(
        await h.app.inject({
          method: 'POST',
          url: `/events/${eventId}/queue`,
          payload: { customer: `queue-ticket:${eventId}:2` },
        }),
        400,
        'validation_failed',
      );
      // Holds are refused before the opening, token or not.
      isProblem(await holdWith(h.app, eventId, 1), 403, 'sale_not_open');
    });

    test('at the opening the pre-queue is drawn from the seed, once; later joiners go to the back in order', async () => {
      const eventId = await queuedEvent(h, { opensIn: 30, rate: 1 });
      const early = [];
      for (let i = 0; i < 40; i++) early.push(await join(h.app, eventId, `early-${i}`));
      await run(h, 30);
      const places = await Promise.all(early.map(async (joined) => (await status(h.app, joined.ticket)).position));
      // Ticket numbers are 1..40 in join order; the draw gives ticket drawOrder[k] place k + 1.
      const order = drawOrder(
        SEED,
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        places,
        early.map((_, i) => order.indexOf(i + 1) + 1),
      );
      assert.notDeepEqual(
        places,
        early.map((_, i) => i + 1),
        'not the join order',
      );
      const late = [await join(h.app, eventId, 'late-1'), await join(h.app, eventId, 'late-2')];
      assert.deepEqual(
        late.map((j) => j.position),
        [41, 42],
      );
      assert.equal(late[0]!.state, 'waiting');
      assert.ok(late[0]!.ahead! >= 39 && late[0]!.eta_seconds! > 0);
      // Joining again after the draw gives back the very same ticket, now with its place.
      const again = await join(h.app, eventId, 'early-0');
      assert.equal(again.ticket, early[0]!.ticket);
      assert.equal(again.position, places[0]);
    });

    test('admission keeps its rate over simulated minutes, smoothly, in the order of the places', async () => {
      const eventId = await queuedEvent(h, { seats: 1000, opensIn: 0, rate: 90 });
      const joined = [];
      for (let i = 0; i < 500; i++) joined.push(await join(h.app, eventId));
      let before = 0;
      for (let second = 1; second <= 240; second++) {
        await run(h, 1);
        const now = (await summary(h.app, eventId)).admitted_through;
        // 90 a minute is 1.5 a second: 1 or 2 each second, never a burst.
        assert.ok(now - before >= 1 && now - before <= 2, `second ${second}: ${now - before} admitted`);
        before = now;
      }
      assert.equal(before, 360, '4 minutes at 90 a minute');
      // Exactly the first 360 places are admitted, and the 361st is next.
      for (const index of [0, 1, 359, 360, 361, 499]) {
        const now = await status(h.app, joined[index]!.ticket);
        assert.equal(now.position, index + 1);
        assert.equal(now.state, index < 360 ? 'admitted' : 'waiting', `place ${index + 1}`);
        if (index >= 360) assert.equal(now.ahead, index - 360);
      }
    });

    test('ticks leave an idle or paused queue alone; a crowd arriving later, or a resume, gets the rate, not a burst', async () => {
      const eventId = await queuedEvent(h, { seats: 1000, opensIn: 0, rate: 120 });
      const state = async () => {
        const [row] = await h.store.sql.rows<{ ticked_at: Date | null; xmin: string }>(
          `select ticked_at${h.store.sql.dialect === 'postgres' ? ', xmin::text as xmin' : ", '' as xmin"}
             from event_queues where event_id = $1`,
          [eventId],
        );
        return row!;
      };
      await run(h, 1); // the opening's draw, of an empty pre-queue
      const drawn = await state();
      await run(h, 60);
      // Nobody waits: a minute of ticks wrote nothing (the row's version is the draw's).
      assert.deepEqual(await state(), drawn, 'an idle queue is not written');
      // 120 a minute is 2 a second. The crowd joins after a minute of skipped ticks: the first
      // second admits what one second earns, not MAX_TICK_CATCHUP_MS' worth.
      for (let i = 0; i < 50; i++) await join(h.app, eventId);
      let before = 0;
      for (let second = 1; second <= 10; second++) {
        await run(h, 1);
        const now = (await summary(h.app, eventId)).admitted_through;
        assert.ok(now - before <= 3, `second ${second}: ${now - before} admitted at once`);
        before = now;
      }
      assert.ok(before >= 18 && before <= 21, `${before} admitted in 10 s at 2 a second`);
      await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue/pause`, headers: ADMIN });
      await run(h, 1);
      const paused = await state();
      await run(h, 30);
      assert.deepEqual(await state(), paused, 'a paused queue is not written');
      assert.equal((await summary(h.app, eventId)).admitted_through, before, 'nobody admitted while paused');
      await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue/resume`, headers: ADMIN });
      await run(h, 1);
      const resumed = (await summary(h.app, eventId)).admitted_through;
      assert.ok(
        resumed - before >= 1 && resumed - before <= 3,
        `${resumed - before} admitted in the first second back`,
      );
    });

    test('holds need a valid admission token: missing, tampered, other event, expired, other customer, replayed', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0, rate: 600, ttl: 120 });
      const other = await queuedEvent(h, { opensIn: 0, rate: 600 });
      const missing = isProblem(await holdWith(h.app, eventId, 1), 403, 'admission_required');
      assert.equal(missing.queue, `/events/${eventId}/queue`);
      const { joined, token } = await admitted(h, eventId, 'buyer@example.com');
      assert.equal((await status(h.app, joined.ticket)).admission_token, token, 'the same token on every ask');

      const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
      isProblem(await holdWith(h.app, eventId, 1, tampered), 403, 'admission_invalid');
      // Claims changed and re-encoded, under the old signature.
      const [kind, kid, payload, mac] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      const forged = Buffer.from(JSON.stringify({ ...claims, exp: (claims.exp as number) + 3600 })).toString(
        'base64url',
      );
      isProblem(await holdWith(h.app, eventId, 1, `${kind}.${kid}.${forged}.${mac}`), 403, 'admission_invalid');
      // Signed with a key this service does not have.
      const stranger = parseAdmissionKeys('k1:someone-elses-secret-0123456789abcdef');
      const foreign = signAdmission(stranger, {
        eventId,
        ticketNo: 1,
        customer: 'buyer@example.com',
        issuedAt: h.clock.now(),
        expiresAt: new Date(h.clock.now().getTime() + 60_000),
      });
      isProblem(await holdWith(h.app, eventId, 1, foreign), 403, 'admission_invalid');
      // A ticket is not an admission token.
      isProblem(await holdWith(h.app, eventId, 1, joined.ticket), 403, 'admission_invalid');
      isProblem(await holdWith(h.app, other, 1, token), 403, 'admission_invalid');
      isProblem(await holdWith(h.app, eventId, 1, token, 'someone-else@example.com'), 403, 'admission_invalid');

      // The right customer, written another way, or left out: granted, under the token's customer.
      const granted = await holdWith(h.app, eventId, 2, token, 'Buyer+x@Example.com');
      assert.equal(granted.statusCode, 201, granted.body);
      assert.equal(granted.json<{ customer: string }>().customer, 'buyer@example.com');
      const alsoGranted = await holdWith(h.app, eventId, 2, token);
      assert.equal(alsoGranted.statusCode, 201, alsoGranted.body);
      // Replayed past what one admission may take.
      isProblem(await holdWith(h.app, eventId, 1, token), 409, 'customer_limit_reached');
      const [row] = await h.store.sql.rows<{ admission_ticket: number; n: number }>(
        'select admission_ticket, count(*) as n from holds where event_id = $1 group by admission_ticket',
        [eventId],
      );
      assert.equal(Number(row!.n), 2);
      assert.equal(Number(row!.admission_ticket), 1, 'the jti is recorded with the hold');

      h.clock.advanceSeconds(121);
      isProblem(await holdWith(h.app, eventId, 1, token), 403, 'admission_expired');
      assert.equal((await status(h.app, joined.ticket)).state, 'expired');
      assert.ok((await books(h.store, eventId, h.clock.now())).balanced);
    });

    test('an anonymous admission counts against an allowance of its own', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0, rate: 600 });
      const { token } = await admitted(h, eventId);
      const granted = await holdWith(h.app, eventId, LIMIT, token);
      assert.equal(granted.statusCode, 201, granted.body);
      assert.match(granted.json<{ customer: string }>().customer, new RegExp(`^queue-ticket:${eventId}:\\d+$`));
      isProblem(await holdWith(h.app, eventId, 1, token), 409, 'customer_limit_reached');
    });

    test('admission pauses while sold out and when staff pause it, and resumes', async () => {
      const eventId = await queuedEvent(h, { seats: 4, opensIn: 0, rate: 60 });
      const { token } = await admitted(h, eventId, 'first');
      const waiting = await join(h.app, eventId, 'second');
      const granted = await holdWith(h.app, eventId, 4, token);
      assert.equal(granted.statusCode, 201, granted.body);
      const through = (await summary(h.app, eventId)).admitted_through;
      await run(h, 10);
      assert.equal((await summary(h.app, eventId)).admitted_through, through, 'no admission while sold out');
      assert.equal((await status(h.app, waiting.ticket)).state, 'sold_out');
      const { hold_id, payment_token } = granted.json<{ hold_id: number; payment_token: string }>();
      const released = await h.app.inject({
        method: 'DELETE',
        url: `/holds/${hold_id}`,
        headers: { 'x-payment-token': payment_token },
      });
      assert.equal(released.statusCode, 200);
      const paused = await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue/pause`, headers: ADMIN });
      assert.equal(paused.json<{ paused: boolean }>().paused, true);
      await run(h, 5);
      assert.equal((await status(h.app, waiting.ticket)).state, 'paused');
      await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue/resume`, headers: ADMIN });
      await run(h, 2);
      assert.equal((await status(h.app, waiting.ticket)).state, 'admitted');
    });

    test('an event without a queue sells as before; sale_opens_at alone only holds the sale back', async () => {
      const res = await h.app.inject({
        method: 'POST',
        url: '/events',
        headers: ADMIN,
        payload: { event: { name: 'plain', total_seats: 5, sale_opens_at: iso(h, 10) } },
      });
      const eventId = res.json<{ event_id: number }>().event_id;
      isProblem(await holdWith(h.app, eventId, 1), 403, 'sale_not_open');
      isProblem(await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue`, payload: {} }), 404, 'not_found');
      h.clock.advanceSeconds(10);
      assert.equal((await holdWith(h.app, eventId, 1)).statusCode, 201);
    });

    test('the status stream (fetch over a socket) says the place at once, then the admission', async () => {
      const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
      const eventId = await queuedEvent(h, { opensIn: 0, rate: 60 });
      const first = await join(h.app, eventId, 'streamer-1');
      const second = await join(h.app, eventId, 'streamer-2');
      const head = await fetch(`${base}/queue/${second.ticket}/stream`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.match(String(head.headers.get('content-type')), /^text\/event-stream/);
      const controller = new AbortController();
      const res = await fetch(`${base}/queue/${second.ticket}/stream`, { signal: controller.signal });
      assert.equal(res.status, 200);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      const nextStatus = async (): Promise<Status> => {
        for (;;) {
          const end = text.indexOf('\n\n');
          if (end >= 0) {
            const message = text.slice(0, end);
            text = text.slice(end + 2);
            const data = /^event: status\ndata: (.*)$/m.exec(message);
            if (data !== null) return JSON.parse(data[1]!) as Status;
            continue;
          }
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          text += value;
        }
      };
      const opening = await nextStatus();
      assert.equal(opening.state, 'waiting');
      assert.equal(opening.position, 2);
      // Two seconds at 60 a minute admit places 1 and 2; the stream says so without being asked.
      await run(h, 2);
      let now = await nextStatus();
      while (now.state !== 'admitted') now = await nextStatus();
      assert.equal(now.position, 2);
      assert.equal(now.admission_token, (await status(h.app, second.ticket)).admission_token);
      assert.equal((await status(h.app, first.ticket)).state, 'admitted');
      controller.abort();
    });

    test('bad tickets are 404; bad joins 4xx and change nothing', async () => {
      isProblem(await h.app.inject({ method: 'GET', url: '/queue/not-a-ticket' }), 404, 'not_found');
      const forged = signTicket(parseAdmissionKeys('k1:someone-elses-secret-0123456789abcdef'), {
        eventId: 1,
        ticketNo: 1,
        customer: null,
        position: 1,
      });
      isProblem(await h.app.inject({ method: 'GET', url: `/queue/${forged}` }), 404, 'not_found');
      const eventId = await queuedEvent(h, { opensIn: 0 });
      for (const payload of [{ customer: '' }, { customer: 5 }, { who: 'x' }]) {
        isProblem(
          await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue`, payload }),
          400,
          'validation_failed',
        );
      }
      assert.equal((await summary(h.app, eventId)).joined, 0);
    });

    test('a ticket asked about already still cannot be altered: a changed place is 404', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0 });
      for (const customer of ['a@example.com', 'b@example.com']) await join(h.app, eventId, customer);
      const late = await join(h.app, eventId, 'c@example.com');
      // Asked twice, so the process has seen (and kept) the genuine ticket.
      for (let i = 0; i < 2; i++) assert.equal((await status(h.app, late.ticket)).position, 3);
      const [kind, kid, payload, mac] = late.ticket.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      const moved = Buffer.from(JSON.stringify({ ...claims, p: 1 })).toString('base64url');
      isProblem(await h.app.inject({ method: 'GET', url: `/queue/${kind}.${kid}.${moved}.${mac}` }), 404, 'not_found');
      assert.equal((await status(h.app, late.ticket)).position, 3);
    });

    test('one batch of joins: a customer twice gets one ticket, anonymous joins one each, places follow on', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0 });
      const first = await join(h.app, eventId, 'before@example.com');
      // Sent together, so that they share a batch (one statement on PostgreSQL).
      const who = [
        ...Array.from({ length: 30 }, (_, i) => `batch-${i % 25}@example.com`),
        ...Array(10).fill(undefined),
      ];
      const joined = await Promise.all(who.map((customer) => join(h.app, eventId, customer as string | undefined)));
      const byCustomer = new Map<string, Joined>();
      for (const [i, customer] of who.entries()) {
        if (customer === undefined) continue;
        const seen = byCustomer.get(customer as string);
        if (seen === undefined) byCustomer.set(customer as string, joined[i]!);
        else assert.equal(joined[i]!.ticket, seen.ticket, `${customer as string} joined twice, one ticket`);
      }
      const tickets = new Set(joined.map((j) => j.ticket));
      assert.equal(tickets.size, 25 + 10, 'a ticket per customer and per anonymous join');
      const places = [...new Set(joined.map((j) => j.position!))].sort((a, b) => a - b);
      assert.deepEqual(
        places,
        Array.from({ length: 35 }, (_, i) => first.position! + 1 + i),
        'the places after the earlier joiner, none skipped or shared',
      );
      // Asked again, each ticket tells the place it was given.
      for (const j of joined.slice(0, 3)) assert.equal((await status(h.app, j.ticket)).position, j.position);
      assert.equal((await summary(h.app, eventId)).joined, 36);

      // An event that needs customers refuses the anonymous joins of a batch and takes the rest.
      const named = await queuedEvent(h, { opensIn: 0, limits: { customer_required: true } });
      const mixed = await Promise.all(
        ['n1', undefined, 'n2', undefined].map((customer) =>
          h.app.inject({
            method: 'POST',
            url: `/events/${named}/queue`,
            payload: customer === undefined ? {} : { customer },
          }),
        ),
      );
      assert.deepEqual(
        mixed.map((res) => res.statusCode),
        [200, 422, 200, 422],
      );
      isProblem(mixed[1]!, 422, 'customer_required');
      assert.deepEqual(
        mixed.filter((res) => res.statusCode === 200).map((res) => res.json<Joined>().position),
        [1, 2],
      );
    });
  });

  describe(`admission while the database is away, on ${backend.name}`, () => {
    let h: H;
    let down = false;
    before(async () => {
      h = await contractHarness(backend, {
        env: ENV,
        wrapStore: (store) =>
          new Proxy(store, {
            get(target, prop, receiver) {
              const value = Reflect.get(target, prop, receiver) as unknown;
              if (typeof value !== 'function') return value;
              return (...args: unknown[]) => {
                if (down) throw new DatabaseUnavailable('test: the database is away');
                return (value as (...a: unknown[]) => unknown).apply(target, args);
              };
            },
          }),
      });
    });
    after(() => h.close());

    test('joins get 503, status keeps answering, nobody is admitted twice, no place is lost', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0, rate: 60 });
      const joined = [];
      for (let i = 0; i < 10; i++) joined.push(await join(h.app, eventId, `buyer-${i}`));
      await run(h, 3);
      const before = await Promise.all(joined.map((j) => status(h.app, j.ticket)));
      down = true;
      const refused = await h.app.inject({ method: 'POST', url: `/events/${eventId}/queue`, payload: {} });
      isProblem(refused, 503, 'database_unavailable');
      assert.equal(refused.headers['retry-after'], '1');
      await assert.rejects(h.app.queue.tick(), DatabaseUnavailable);
      const during = await Promise.all(joined.map((j) => status(h.app, j.ticket)));
      assert.deepEqual(during, before, 'status answered from memory');
      down = false;
      await run(h, 5);
      const after = await Promise.all(joined.map((j) => status(h.app, j.ticket)));
      assert.deepEqual(
        after.map((s) => s.position),
        before.map((s) => s.position),
        'every place kept',
      );
      const through = (await summary(h.app, eventId)).admitted_through;
      assert.equal(after.filter((s) => s.state === 'admitted').length, through);
      const [steps] = await h.store.sql.rows<{ n: number; top: number }>(
        'select count(*) as n, max(through) as top from queue_advances where event_id = $1',
        [eventId],
      );
      assert.equal(Number(steps!.top), through);
    });
  });

  if (backend.name === 'pglite') continue;

  describe(`admission with two processes on one ${backend.name} database`, () => {
    let h: H;
    let second: { app: App; store: Store };
    let close: () => Promise<void>;
    before(async () => {
      ({ h, second, close } = await twoProcesses(backend, ENV));
    });
    after(() => close());

    test('both tick every second, concurrently: the queue is admitted once, at its rate', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0, rate: 120 });
      const joined = [];
      for (let i = 0; i < 300; i++) joined.push(await join(i % 2 === 0 ? h.app : second.app, eventId));
      for (let s = 0; s < 60; s++) {
        h.clock.advanceSeconds(1);
        await Promise.all([h.app.queue.tick(), second.app.queue.tick()]);
      }
      assert.equal((await summary(h.app, eventId)).admitted_through, 120, 'one minute at 120 a minute, not twice');
      // Each process learns where admission got within a tick (at once by NOTIFY on PostgreSQL);
      // then both give the same answer, the same token included.
      await Promise.all([h.app.queue.refresh(), second.app.queue.refresh()]);
      for (const index of [0, 119, 120]) {
        const [a, b]: Status[] = await Promise.all([
          status(h.app, joined[index]!.ticket),
          status(second.app, joined[index]!.ticket),
        ]);
        assert.deepEqual(a, b);
      }
      const positions = new Set(
        (await Promise.all(joined.map((j) => status(second.app, j.ticket)))).map((s) => s.position),
      );
      assert.equal(positions.size, 300, 'every ticket its own place');
    });

    test('the same customers joining through both at once get one ticket each, and the places stay dense', async () => {
      const eventId = await queuedEvent(h, { opensIn: 0 });
      const customers = Array.from({ length: 60 }, (_, i) => `race-${i}@example.com`);
      // Every customer joins through both processes at the same moment, twice over.
      const joined = await Promise.all(
        [0, 1].flatMap(() =>
          customers.flatMap((customer) => [join(h.app, eventId, customer), join(second.app, eventId, customer)]),
        ),
      );
      const ticketOf = new Map<string, string>();
      for (const [i, j] of joined.entries()) {
        const customer = customers[Math.floor(i / 2) % customers.length]!;
        const seen = ticketOf.get(customer);
        if (seen === undefined) ticketOf.set(customer, j.ticket);
        else assert.equal(j.ticket, seen, `${customer} has one ticket`);
      }
      const places = [...ticketOf.values()].map((ticket) => joined.find((j) => j.ticket === ticket)!.position!);
      assert.deepEqual(
        places.sort((a, b) => a - b),
        Array.from({ length: 60 }, (_, i) => i + 1),
      );
      assert.equal((await summary(second.app, eventId)).joined, 60);
    });
  });
}

contractTest();
