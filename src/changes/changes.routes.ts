// The change feed over HTTP: the replayable log (GET /changes, GET /events/:id/changes) and live
// availability over Server-Sent Events (GET /events/:id/stream, GET /stream).
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminGuard, App } from '../app.ts';
import { CHANGE_TYPES, type Change, type Snapshot } from '../model.ts';
import { IdParams, Timestamp, problems } from '../http/schemas.ts';
import { renderChange } from './render.ts';
import type { ChangesService } from './changes.service.ts';

/** An event's availability messages are at most this often, however fast its seats change. */
export const STREAM_COALESCE_MS = 250;
/** A comment line this often keeps proxies from closing a quiet stream. */
export const STREAM_HEARTBEAT_MS = 15_000;
/** A client this far behind is disconnected; it resumes with Last-Event-ID. */
const STREAM_MAX_BUFFERED_BYTES = 1024 * 1024;
const PAGE_SIZE_DEFAULT = 100;

const Position = Type.String({ pattern: '^[0-9]{1,18}$', description: 'a change position' });

const ChangeSchema = Type.Object({
  position: Type.String({ description: 'Global, gapless, increasing' }),
  type: Type.String({ enum: [...CHANGE_TYPES] }),
  event_id: Type.Integer(),
  hold_id: Type.Union([Type.Integer(), Type.Null()]),
  booking_id: Type.Union([Type.Integer(), Type.Null()]),
  qty: Type.Union([Type.Integer(), Type.Null()]),
  at: Timestamp,
  snapshot: Type.Object(
    { total: Type.Integer(), available: Type.Integer(), held: Type.Integer(), booked: Type.Integer() },
    { description: "The event's snapshot just after this change" },
  ),
});

const ChangePage = Type.Object({
  changes: Type.Array(ChangeSchema),
  next_cursor: Type.String({ description: 'Pass as ?after= to read on; the same cursor again when nothing was new' }),
});

const PageQuery = Type.Object(
  {
    after: Type.Optional({
      ...Position,
      description: 'a change position, or the next_cursor of a previous page (default 0: from the start)',
    }),
    limit: Type.Optional(
      Type.String({
        pattern: '^([1-9]|[1-9][0-9]|[1-9][0-9][0-9]|1000)$',
        description: `a whole number from 1 to 1000 (default ${PAGE_SIZE_DEFAULT})`,
      }),
    ),
  },
  { additionalProperties: false },
);

const StreamQuery = Type.Object(
  {
    include: Type.Optional(
      Type.String({ enum: ['changes'], description: 'changes: every change too, gapless from Last-Event-ID' }),
    ),
    after: Type.Optional({ ...Position, description: 'resume after this position (as Last-Event-ID does)' }),
  },
  { additionalProperties: false },
);

const EventStream = {
  description:
    'text/event-stream. `availability` messages (the snapshot, first at once, then on every change, ' +
    `at most one per ${STREAM_COALESCE_MS} ms per event), \`change\` messages with include=changes; ` +
    '`id:` is the change position. A comment line every 15 s keeps proxies open.',
  content: { 'text/event-stream': { schema: Type.String() } },
};

export function changeRoutes(app: App, changes: ChangesService, requireAdmin: AdminGuard): void {
  const pageOf = async (query: { after?: string; limit?: string }, eventId?: number) => {
    const page = await changes.page(Number(query.after ?? 0), Number(query.limit ?? PAGE_SIZE_DEFAULT), eventId);
    return { changes: page.changes.map(renderChange), next_cursor: String(page.next) };
  };

  app.get(
    '/changes',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'The change log of every event, in position order',
        description: 'Replayable: a consumer that was away resumes with the last next_cursor and misses nothing.',
        tags: ['changes'],
        security: [{ adminBearer: [] }],
        querystring: PageQuery,
        response: { 200: ChangePage, ...problems('validation_failed', 'unauthorized') },
      },
    },
    async (request) => pageOf(request.query),
  );

  app.get(
    '/events/:id/changes',
    {
      schema: {
        summary: "One event's change log, in position order",
        tags: ['changes'],
        params: IdParams,
        querystring: PageQuery,
        response: { 200: ChangePage, ...problems('validation_failed', 'not_found') },
      },
    },
    async (request) => pageOf(request.query, Number(request.params.id)),
  );

  const streams = new Set<ServerResponse>();
  // Open streams never end by themselves: end them, or closing the server would wait forever.
  app.addHook('preClose', (done) => {
    for (const stream of streams) stream.end();
    done();
  });

  app.get(
    '/events/:id/stream',
    {
      schema: {
        summary: 'Live availability of one event (Server-Sent Events)',
        tags: ['changes'],
        params: IdParams,
        querystring: StreamQuery,
        response: { 200: EventStream, ...problems('validation_failed', 'not_found') },
      },
    },
    async (request, reply) => {
      const eventId = Number(request.params.id);
      const snapshot = await changes.snapshot(eventId);
      await stream(request, reply, changes, streams, eventId, [snapshot], request.query);
    },
  );

  app.get(
    '/stream',
    {
      schema: {
        summary: 'Live availability of every event (Server-Sent Events)',
        tags: ['changes'],
        querystring: StreamQuery,
        response: { 200: EventStream, ...problems('validation_failed') },
      },
    },
    async (request, reply) => {
      await stream(request, reply, changes, streams, 'all', await changes.snapshots(), request.query);
    },
  );
}

interface Availability {
  event_id: number;
  name: string;
  total: number;
  available: number;
  held: number;
  booked: number;
  position: string;
}

async function stream(
  request: FastifyRequest,
  reply: FastifyReply,
  changes: ChangesService,
  streams: Set<ServerResponse>,
  scope: number | 'all',
  initial: Snapshot[],
  query: { include?: string; after?: string },
): Promise<void> {
  const lastEventId = request.headers['last-event-id'];
  const resumeText = typeof lastEventId === 'string' && /^[0-9]{1,18}$/.test(lastEventId) ? lastEventId : query.after;
  const withChanges = query.include === 'changes';
  const names = new Map(initial.map((snapshot) => [snapshot.eventId, snapshot.name]));
  const feed = changes.feed;
  // Subscribe before reading anything, so that nothing numbered meanwhile is missed.
  const live: Change[] = [];
  let replaying = true;
  const unsubscribe = feed.subscribe(scope, (list) => {
    if (replaying) live.push(...list);
    else deliver(list);
  });

  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
    'x-request-id': request.id,
  });
  streams.add(res);

  let sent = 0; // the highest position sent, so nothing goes out twice or backwards
  const write = (text: string) => {
    res.write(text);
    if (res.writableLength > STREAM_MAX_BUFFERED_BYTES) res.end();
  };
  const availability = (data: Availability) =>
    write(`event: availability\nid: ${data.position}\ndata: ${JSON.stringify(data)}\n\n`);

  const position = Math.max(feed.position, await changes.lastPosition().catch(() => feed.position));
  for (const snapshot of initial) {
    const { eventId, name, total, available, held, booked } = snapshot;
    availability({ event_id: eventId, name, total, available, held, booked, position: String(position) });
  }

  // Coalesced availability: the newest snapshot per event, sent at most every STREAM_COALESCE_MS.
  const pending = new Map<number, Change>();
  let lastFlush = Date.now();
  let flushTimer: NodeJS.Timeout | undefined;
  const flush = () => {
    flushTimer = undefined;
    lastFlush = Date.now();
    for (const change of pending.values()) {
      const { total, available, held, booked } = change.snapshot;
      const name = names.get(change.eventId) ?? '';
      availability({
        event_id: change.eventId,
        name,
        total,
        available,
        held,
        booked,
        position: String(change.position),
      });
    }
    pending.clear();
  };
  const deliver = (list: Change[]) => {
    for (const change of list) {
      if (change.position <= sent) continue;
      sent = change.position;
      if (withChanges)
        write(`event: change\nid: ${change.position}\ndata: ${JSON.stringify(renderChange(change))}\n\n`);
      pending.set(change.eventId, change);
      if (change.type === 'event.created' && !names.has(change.eventId)) void learnName(change.eventId);
    }
    if (pending.size > 0 && flushTimer === undefined) {
      flushTimer = setTimeout(flush, Math.max(0, STREAM_COALESCE_MS - (Date.now() - lastFlush)));
    }
  };
  const learnName = async (eventId: number) => {
    names.set(eventId, (await changes.snapshot(eventId).catch(() => null))?.name ?? '');
  };

  // Gapless resume of the changes after Last-Event-ID, from the log, before the live ones.
  if (withChanges && resumeText !== undefined) {
    let after = Number(resumeText);
    for (let page = 0; page < 100; page++) {
      const { changes: list, next } = await changes
        .page(after, 1000, scope === 'all' ? undefined : scope)
        .catch(() => ({ changes: [], next: after }));
      deliver(list);
      if (list.length < 1000) break;
      after = next;
    }
  } else {
    sent = position;
  }
  replaying = false;
  deliver(live.splice(0));

  const heartbeat = setInterval(() => write(': hb\n\n'), STREAM_HEARTBEAT_MS);
  const close = () => {
    unsubscribe();
    clearInterval(heartbeat);
    clearTimeout(flushTimer);
    streams.delete(res);
  };
  res.on('close', close);
  feed.pullSoon();
}
