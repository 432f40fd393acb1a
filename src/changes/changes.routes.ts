// The change feed over HTTP: the replayable log (GET /changes, GET /events/:id/changes) and live
// availability over Server-Sent Events (GET /events/:id/stream, GET /stream).
import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminGuard, App } from '../http/types.ts';
import { CHANGE_TYPES, type Change, type Snapshot } from '../model.ts';
import { IdParams, Timestamp, problems } from '../http/schemas.ts';
import { type Audience, renderChange } from './render.ts';
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
  position: Type.String({
    description: 'Global and increasing; a number may be skipped (a change rolled back), never a change',
  }),
  type: Type.String({ enum: [...CHANGE_TYPES] }),
  event_id: Type.Integer(),
  hold_id: Type.Union([Type.Integer(), Type.Null()]),
  booking_id: Type.Union([Type.Integer(), Type.Null()]),
  qty: Type.Union([Type.Integer(), Type.Null()]),
  customer: Type.Optional(
    Type.Union([Type.String(), Type.Null()], { description: "The hold's customer: in the admin log only" }),
  ),
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

export async function changeRoutes(
  app: App,
  { changes, requireAdmin }: { changes: ChangesService; requireAdmin: AdminGuard },
): Promise<void> {
  const pageOf = async (query: { after?: string; limit?: string }, audience: Audience, eventId?: number) => {
    const page = await changes.page(Number(query.after ?? 0), Number(query.limit ?? PAGE_SIZE_DEFAULT), eventId);
    return { changes: page.changes.map((change) => renderChange(change, audience)), next_cursor: String(page.next) };
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
    async (request) => pageOf(request.query, 'staff'),
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
    async (request) => pageOf(request.query, 'public', Number(request.params.id)),
  );

  const broadcasts = new Broadcasts(changes);
  // Open streams never end by themselves: end them, or closing the server would wait forever.
  app.addHook('preClose', (done) => {
    broadcasts.endAll();
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
      await changes.snapshot(eventId); // a 404 now, before the stream starts
      await stream(
        request,
        reply,
        changes,
        broadcasts,
        eventId,
        async () => [await changes.snapshot(eventId)],
        request.query,
      );
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
      await stream(request, reply, changes, broadcasts, 'all', () => changes.snapshots(), request.query);
    },
  );
}

const availabilityMessage = (change: Change, name: string): string => {
  const { total, available, held, booked } = change.snapshot;
  const data = { event_id: change.eventId, name, total, available, held, booked, position: String(change.position) };
  return `event: availability\nid: ${change.position}\ndata: ${JSON.stringify(data)}\n\n`;
};
const changeMessage = (change: Change): string =>
  `event: change\nid: ${change.position}\ndata: ${JSON.stringify(renderChange(change))}\n\n`;

/** One open stream. */
interface Subscriber {
  res: ServerResponse;
  withChanges: boolean;
  /** The highest position sent, so nothing goes out twice or backwards. */
  sent: number;
  /** While it replays the log after Last-Event-ID, live changes wait here. */
  buffered: Change[] | null;
}

function write(sub: Subscriber, text: string): void {
  sub.res.write(text);
  if (sub.res.writableLength > STREAM_MAX_BUFFERED_BYTES) sub.res.end();
}

function sendChanges(sub: Subscriber, list: Change[], texts?: Map<number, string>): void {
  for (const change of list) {
    if (change.position <= sub.sent) continue;
    sub.sent = change.position;
    if (sub.withChanges) write(sub, texts?.get(change.position) ?? changeMessage(change));
  }
}

/**
 * Every stream of one scope (an event, or all events) shares one subscription to the feed:
 * each change is serialized once and each event's availability coalesced once, however many
 * streams are open, so that thousands of them cost the hot path next to nothing.
 */
class Broadcast {
  readonly subscribers = new Set<Subscriber>();
  readonly names = new Map<number, string>();
  private readonly pending = new Map<number, Change>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private readonly unsubscribe: () => void;

  constructor(
    changes: ChangesService,
    scope: number | 'all',
    private readonly learnName: (eventId: number) => Promise<string>,
  ) {
    this.unsubscribe = changes.feed.subscribe(scope, (list) => this.onChanges(list));
  }

  close(): void {
    this.unsubscribe();
    clearTimeout(this.timer);
  }

  private onChanges(list: Change[]): void {
    const wantChanges = [...this.subscribers].some((sub) => sub.withChanges && sub.buffered === null);
    const texts = wantChanges ? new Map(list.map((change) => [change.position, changeMessage(change)])) : undefined;
    for (const sub of this.subscribers) {
      if (sub.buffered !== null) sub.buffered.push(...list);
      else sendChanges(sub, list, texts);
    }
    for (const change of list) {
      this.pending.set(change.eventId, change);
      if (change.type === 'event.updated') this.names.delete(change.eventId); // perhaps renamed
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => void this.flush(), Math.max(0, STREAM_COALESCE_MS - (Date.now() - this.lastFlush)));
    }
  }

  private async flush(): Promise<void> {
    this.lastFlush = Date.now();
    const changes = [...this.pending.values()];
    this.pending.clear();
    // An event created after the stream opened: its name is read once, before its first message.
    await Promise.all(
      changes
        .filter((change) => !this.names.has(change.eventId))
        .map(async (change) => this.names.set(change.eventId, await this.learnName(change.eventId))),
    );
    this.timer = undefined;
    for (const change of changes) {
      const latest = this.pending.get(change.eventId);
      if (latest !== undefined && latest.position > change.position) continue; // newer one queued meanwhile
      const text = availabilityMessage(change, this.names.get(change.eventId) ?? '');
      for (const sub of this.subscribers) if (sub.buffered === null) write(sub, text);
    }
    if (this.pending.size > 0) this.timer = setTimeout(() => void this.flush(), STREAM_COALESCE_MS);
  }
}

class Broadcasts {
  private readonly byScope = new Map<number | 'all', Broadcast>();

  constructor(private readonly changes: ChangesService) {}

  join(scope: number | 'all', sub: Subscriber): () => void {
    let broadcast = this.byScope.get(scope);
    if (broadcast === undefined) {
      broadcast = new Broadcast(
        this.changes,
        scope,
        async (eventId) => (await this.changes.snapshot(eventId).catch(() => null))?.name ?? '',
      );
      this.byScope.set(scope, broadcast);
    }
    broadcast.subscribers.add(sub);
    const joined = broadcast;
    return () => {
      joined.subscribers.delete(sub);
      if (joined.subscribers.size === 0) {
        joined.close();
        this.byScope.delete(scope);
      }
    };
  }

  /** Names of events, from snapshots, for the availability messages of a scope. */
  learn(scope: number | 'all', snapshots: Snapshot[]): void {
    const broadcast = this.byScope.get(scope);
    for (const snapshot of snapshots) broadcast?.names.set(snapshot.eventId, snapshot.name);
  }

  nameOf(scope: number | 'all', eventId: number): string {
    return this.byScope.get(scope)?.names.get(eventId) ?? '';
  }

  endAll(): void {
    for (const broadcast of this.byScope.values()) for (const sub of broadcast.subscribers) sub.res.end();
  }
}

async function stream(
  request: FastifyRequest,
  reply: FastifyReply,
  changes: ChangesService,
  broadcasts: Broadcasts,
  scope: number | 'all',
  /** What the stream starts with; read after it has joined, so no change falls in between. */
  loadInitial: () => Promise<Snapshot[]>,
  query: { include?: string; after?: string },
): Promise<void> {
  const headers = {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
  };
  // HEAD (Fastify answers it with the GET handler): the stream's headers, and no stream, which
  // would never end.
  if (request.method === 'HEAD') {
    await reply.code(200).headers(headers).send();
    return;
  }
  const lastEventId = request.headers['last-event-id'];
  const resumeText = typeof lastEventId === 'string' && /^[0-9]{1,18}$/.test(lastEventId) ? lastEventId : query.after;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...headers, 'x-request-id': request.id });
  const sub: Subscriber = { res, withChanges: query.include === 'changes', sent: 0, buffered: [] };
  // Joined before anything is read, so that nothing published meanwhile is missed.
  const leave = broadcasts.join(scope, sub);
  const heartbeat = setInterval(() => write(sub, ': hb\n\n'), STREAM_HEARTBEAT_MS);
  res.on('close', () => {
    leave();
    clearInterval(heartbeat);
  });

  const position = Math.max(changes.feed.position, await changes.lastPosition().catch(() => changes.feed.position));
  const initial = await loadInitial().catch(() => []);
  broadcasts.learn(scope, initial);
  for (const { eventId, name, total, available, held, booked } of initial) {
    const data = { event_id: eventId, name, total, available, held, booked, position: String(position) };
    write(sub, `event: availability\nid: ${position}\ndata: ${JSON.stringify(data)}\n\n`);
  }
  // Gapless resume of the changes after Last-Event-ID, from the log, before the live ones.
  if (sub.withChanges && resumeText !== undefined) {
    let after = Number(resumeText);
    for (let page = 0; page < 100; page++) {
      const { changes: list, next } = await changes
        .page(after, 1000, scope === 'all' ? undefined : scope)
        .catch(() => ({ changes: [], next: after }));
      sendChanges(sub, list);
      if (list.length < 1000) break;
      after = next;
    }
  } else {
    sub.sent = position;
  }
  const buffered = (sub.buffered ?? []).filter((change) => change.position > sub.sent);
  sub.buffered = null;
  sendChanges(sub, buffered);
  // Availability moved while the stream was starting: say where it is now.
  const latest = new Map(buffered.map((change) => [change.eventId, change]));
  for (const change of latest.values())
    write(sub, availabilityMessage(change, broadcasts.nameOf(scope, change.eventId)));
  changes.feed.pullSoon();
}
