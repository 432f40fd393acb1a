// The waiting room over HTTP: join (POST /events/:id/queue), wait (GET /queue/:ticket, or its
// Server-Sent Events stream), and staff's view and controls. Status is answered from the
// process's memory (queue.service.ts): no database query per request.
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { normalizeCustomer } from '../customer.ts';
import { notFound } from '../errors.ts';
import { rateLimited } from '../http/rate-limit.ts';
import { BODY_ERRORS, CustomerText, IdParams, Nullable, Timestamp, problems } from '../http/schemas.ts';
import type { AdminGuard, App } from '../http/types.ts';
import type { QueueService, QueueStatus, QueueSummary } from './queue.service.ts';
import type { Ticket } from './tokens.ts';

/** A stream's status messages are at most this often: the ETA moves at every tick. */
export const QUEUE_STREAM_COALESCE_MS = 1000;
const QUEUE_STREAM_HEARTBEAT_MS = 15_000;
const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

const STATES = ['prequeue', 'waiting', 'paused', 'sold_out', 'admitted', 'expired', 'closed'];

const StatusFields = {
  event_id: Type.Integer(),
  state: Type.String({
    enum: STATES,
    description:
      'prequeue: joined before the sale opens, place drawn then; waiting; paused by staff; sold_out: no seats ' +
      'now, admission resumes if some come back; admitted: hold with admission_token; expired: the admission ' +
      'window passed; closed: the event no longer has a queue',
  }),
  position: Nullable(Type.Integer(), { description: 'Place in line; null in the pre-queue' }),
  ahead: Nullable(Type.Integer(), { description: 'Buyers before this one not yet admitted' }),
  eta_seconds: Nullable(Type.Integer(), {
    description: 'Estimated wait: ahead ÷ the admission rate',
  }),
  sale_opens_at: Nullable(Timestamp),
  admission_token: Nullable(Type.String(), {
    description: 'When admitted: send it as Admission-Token with POST /holds',
  }),
  admission_expires_at: Nullable(Timestamp),
};
const Status = Type.Object(StatusFields);
const Joined = Type.Object({
  ticket: Type.String({ description: 'Opaque and signed: GET /queue/:ticket. Joining again gives the same one.' }),
  ...StatusFields,
});

const JoinBody = Type.Object(
  {
    customer: Type.Optional(
      CustomerText(
        'Who is joining, as holds name customers. One ticket per customer: joining again gives back the same ' +
          'ticket. Left out, the ticket is anonymous and its holds count against a customer of its own.',
      ),
    ),
  },
  { additionalProperties: false },
);

const TicketParams = Type.Object(
  { ticket: Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z0-9._-]+$' }) },
  { additionalProperties: false },
);

const Summary = Type.Object({
  event_id: Type.Integer(),
  joined: Type.Integer({ description: 'Tickets handed out' }),
  waiting: Type.Integer({ description: 'Given a place and not yet admitted' }),
  prequeue: Type.Integer({ description: 'In the pre-queue, before the draw' }),
  admitted_through: Type.Integer({ description: 'Every place up to this one is admitted' }),
  admit_per_minute: Type.Integer(),
  admission_ttl_seconds: Type.Integer(),
  paused: Type.Boolean(),
  sold_out: Type.Boolean(),
  last_eta_seconds: Nullable(Type.Integer(), {
    description: 'When the last in line should be admitted at this rate',
  }),
  sale_opens_at: Timestamp,
  prequeue_opens_at: Nullable(Timestamp),
});

/**
 * A sale's opening as text. Every status of an event carries the same Date (its queue's row, until
 * the row changes), so the last one's text is kept: formatting it was a sixth of the work the
 * route did itself per request.
 */
let lastOpening: { at: Date | null; text: string | null } = { at: null, text: null };
const openingText = (at: Date | null): string | null => {
  if (at !== lastOpening.at) lastOpening = { at, text: at?.toISOString() ?? null };
  return lastOpening.text;
};

export const statusBody = (status: QueueStatus) => ({
  event_id: status.eventId,
  state: status.state,
  position: status.position,
  ahead: status.ahead,
  eta_seconds: status.etaSeconds,
  sale_opens_at: openingText(status.saleOpensAt),
  admission_token: status.admissionToken,
  admission_expires_at: status.admissionExpiresAt?.toISOString() ?? null,
});

const summaryBody = (summary: QueueSummary) => ({
  event_id: summary.eventId,
  joined: summary.joined,
  waiting: summary.waiting,
  prequeue: summary.prequeue,
  admitted_through: summary.admittedThrough,
  admit_per_minute: summary.admitPerMinute,
  admission_ttl_seconds: summary.admissionTtlSeconds,
  paused: summary.paused,
  sold_out: summary.soldOut,
  last_eta_seconds: summary.lastEtaSeconds,
  sale_opens_at: summary.saleOpensAt.toISOString(),
  prequeue_opens_at: summary.prequeueOpensAt?.toISOString() ?? null,
});

export async function queueRoutes(
  app: App,
  {
    queue,
    requireAdmin,
    config,
  }: {
    queue: QueueService;
    requireAdmin: AdminGuard;
    config: Pick<Config, 'customerEmailNormalization' | 'rateLimitHoldsPerMinute'>;
  },
): Promise<void> {
  const ticketOf = (text: string): Ticket => {
    const ticket = queue.ticketOf(text);
    if (ticket === null) throw notFound('queue ticket', text.length > 40 ? `${text.slice(0, 40)}…` : text);
    return ticket;
  };

  app.post(
    '/events/:id/queue',
    {
      ...rateLimited(config.rateLimitHoldsPerMinute),
      schema: {
        summary: "Join an event's queue",
        description:
          'Before sale_opens_at the ticket waits in the pre-queue, with no place: at the opening every pre-queue ' +
          'ticket is given a random place, once. Later joiners go to the back. 409 queue_not_open before the ' +
          "queue's prequeue_opens_at; 404 not_found when the event has no queue.",
        tags: ['queue'],
        params: IdParams,
        body: JoinBody,
        response: {
          200: Joined,
          ...problems(...BODY_ERRORS, 'not_found', 'queue_not_open', 'customer_required', 'rate_limited', 'overloaded'),
        },
      },
    },
    async (request, reply) => {
      const { customer } = request.body;
      const normalized = customer === undefined ? null : normalizeCustomer(customer, config.customerEmailNormalization);
      const joined = await queue.join(Number(request.params.id), normalized);
      return reply.header('cache-control', 'no-store').send({ ticket: joined.ticket, ...statusBody(joined.status) });
    },
  );

  app.get(
    '/queue/:ticket',
    {
      schema: {
        summary: "A queue ticket's place, wait and, once admitted, its admission token",
        description:
          'Answered from memory: ask as often as every second or two. 404 for a ticket this service did not sign.',
        tags: ['queue'],
        params: TicketParams,
        response: { 200: Status, ...problems('validation_failed', 'not_found') },
      },
    },
    async (request, reply) => {
      const ticket = ticketOf(request.params.ticket);
      // Awaited only for the first ticket of an event this process has not yet heard of.
      const status = queue.knownStatus(ticket) ?? (await queue.status(ticket));
      return reply.header('cache-control', 'no-store').send(statusBody(status));
    },
  );

  const streams = new QueueStreams(queue);
  app.addHook('preClose', (done) => {
    streams.endAll();
    done();
  });

  app.get(
    '/queue/:ticket/stream',
    {
      schema: {
        summary: "A queue ticket's status, live (Server-Sent Events)",
        description:
          `text/event-stream of \`status\` messages (the body of GET /queue/:ticket): one at once, then on every ` +
          `change, at most one per ${QUEUE_STREAM_COALESCE_MS} ms. Close it once admitted.`,
        tags: ['queue'],
        params: TicketParams,
        response: {
          200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: Type.String() } } },
          ...problems('validation_failed', 'not_found'),
        },
      },
    },
    async (request, reply) => {
      const ticket = ticketOf(request.params.ticket);
      const status = await queue.status(ticket);
      if (request.method === 'HEAD') return reply.code(200).headers(SSE_HEADERS).send('');
      reply.hijack();
      const res = reply.raw;
      if (res.destroyed) return;
      res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': request.id });
      streams.add(res, ticket, status);
    },
  );

  app.get(
    '/events/:id/queue',
    {
      onRequest: requireAdmin,
      schema: {
        summary: "An event's queue: waiting, admitted, rate (staff)",
        tags: ['queue'],
        security: [{ adminBearer: [] }],
        params: IdParams,
        response: { 200: Summary, ...problems('validation_failed', 'unauthorized', 'not_found') },
      },
    },
    async (request) => summaryBody(await queue.summary(Number(request.params.id))),
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post(
      `/events/:id/queue/${action}`,
      {
        onRequest: requireAdmin,
        schema: {
          summary: action === 'pause' ? 'Stop admitting buyers (staff)' : 'Admit buyers again (staff)',
          description: 'Those already admitted keep their window. The rate is changed with PATCH /events/:id.',
          tags: ['queue'],
          security: [{ adminBearer: [] }],
          params: IdParams,
          response: { 200: Summary, ...problems('validation_failed', 'unauthorized', 'not_found') },
        },
      },
      async (request) => summaryBody(await queue.setPaused(Number(request.params.id), action === 'pause')),
    );
  }
}

interface Watcher {
  res: ServerResponse;
  ticket: Ticket;
  /** The last message sent, so that only a change goes out. */
  last: string;
}

/**
 * The open status streams, by event. The service says when an event's queue moved; each of its
 * streams is then recomputed from memory and sent only what changed, at most once per
 * QUEUE_STREAM_COALESCE_MS per event.
 */
class QueueStreams {
  private readonly byEvent = new Map<number, Set<Watcher>>();
  private readonly pending = new Map<number, NodeJS.Timeout>();
  private readonly lastFlush = new Map<number, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;

  constructor(private readonly queue: QueueService) {}

  add(res: ServerResponse, ticket: Ticket, status: QueueStatus): void {
    const watcher: Watcher = { res, ticket, last: '' };
    send(watcher, status);
    let set = this.byEvent.get(ticket.eventId);
    if (set === undefined) this.byEvent.set(ticket.eventId, (set = new Set()));
    set.add(watcher);
    this.unwatch ??= this.queue.watch((eventIds) => {
      for (const eventId of eventIds) this.schedule(eventId);
    });
    this.heartbeat ??= setInterval(() => {
      for (const watchers of this.byEvent.values()) for (const w of watchers) w.res.write(': hb\n\n');
    }, QUEUE_STREAM_HEARTBEAT_MS).unref();
    res.on('close', () => {
      set.delete(watcher);
      if (set.size === 0 && this.byEvent.get(ticket.eventId) === set) this.byEvent.delete(ticket.eventId);
    });
  }

  private schedule(eventId: number): void {
    if (!this.byEvent.has(eventId) || this.pending.has(eventId)) return;
    const wait = Math.max(0, (this.lastFlush.get(eventId) ?? 0) + QUEUE_STREAM_COALESCE_MS - Date.now());
    this.pending.set(
      eventId,
      setTimeout(() => {
        this.pending.delete(eventId);
        this.lastFlush.set(eventId, Date.now());
        void this.flush(eventId);
      }, wait),
    );
  }

  private async flush(eventId: number): Promise<void> {
    for (const watcher of this.byEvent.get(eventId) ?? []) {
      // From memory: the event is known by now, so this never waits on the database.
      const status = await this.queue.status(watcher.ticket).catch(() => null);
      if (status !== null) send(watcher, status);
    }
  }

  endAll(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    clearInterval(this.heartbeat);
    this.unwatch?.();
    for (const watchers of this.byEvent.values()) for (const w of watchers) w.res.end();
  }
}

function send(watcher: Watcher, status: QueueStatus): void {
  const message = `event: status\ndata: ${JSON.stringify(statusBody(status))}\n\n`;
  if (message === watcher.last || watcher.res.writableEnded) return;
  watcher.last = message;
  watcher.res.write(message);
}
