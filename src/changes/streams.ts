// Live availability over Server-Sent Events: the fan-out behind GET /events/:id/stream and
// GET /stream. Every stream of one scope (an event, or all events) shares one subscription to
// the change feed (a Broadcast), so each change is serialized once and each event's availability
// coalesced once, however many streams are open.
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Change, Snapshot } from '../model.ts';
import { renderChange } from './render.ts';
import type { ChangesService } from './changes.service.ts';

/** An event's availability messages are at most this often, however fast its seats change. */
export const STREAM_COALESCE_MS = 250;
/** A comment line this often keeps proxies from closing a quiet stream. */
export const STREAM_HEARTBEAT_MS = 15_000;
/** A client this far behind is disconnected; it resumes with Last-Event-ID. */
const STREAM_MAX_BUFFERED_BYTES = 1024 * 1024;
/** Changes read per statement while a stream replays the log after Last-Event-ID. */
const RESUME_PAGE_CHANGES = 1000;
/** Statements read at most while replaying: a resume replays at most 100 × 1000 changes. */
const RESUME_MAX_PAGES = 100;

export type StreamScope = number | 'all';

export interface StreamQuery {
  include?: string;
  after?: string;
}

const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
};

/** The one `availability` message: an event's seats as of `position`. */
function availabilityMessage(
  eventId: number,
  name: string,
  { total, available, held, booked }: Change['snapshot'],
  position: number,
): string {
  const data = { event_id: eventId, name, total, available, held, booked, position: String(position) };
  return `event: availability\nid: ${position}\ndata: ${JSON.stringify(data)}\n\n`;
}

const changeAvailability = (change: Change, name: string): string =>
  availabilityMessage(change.eventId, name, change.snapshot, change.position);

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

/** The streams of one scope, and their one subscription to the feed. */
class Broadcast {
  readonly subscribers = new Set<Subscriber>();
  readonly names = new Map<number, string>();
  private readonly pending = new Map<number, Change>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private readonly unsubscribe: () => void;

  constructor(
    changes: ChangesService,
    scope: StreamScope,
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
      const text = changeAvailability(change, this.names.get(change.eventId) ?? '');
      for (const sub of this.subscribers) if (sub.buffered === null) write(sub, text);
    }
    if (this.pending.size > 0) this.timer = setTimeout(() => void this.flush(), STREAM_COALESCE_MS);
  }
}

/** Every open stream of this process, by scope. */
export class Streams {
  private readonly byScope = new Map<StreamScope, Broadcast>();

  constructor(private readonly changes: ChangesService) {}

  /** Ends every open stream (they never end by themselves; closing the server would wait forever). */
  endAll(): void {
    for (const broadcast of this.byScope.values()) for (const sub of broadcast.subscribers) sub.res.end();
  }

  /** Answers a stream request: HEAD with the headers alone, GET with the stream, until the client leaves. */
  async open(request: FastifyRequest, reply: FastifyReply, scope: StreamScope, query: StreamQuery): Promise<void> {
    // HEAD (Fastify answers it with the GET handler): the stream's headers, and no stream, which
    // would never end.
    if (request.method === 'HEAD') {
      await reply.code(200).headers(HEADERS).send();
      return;
    }
    const { changes } = this;
    const lastEventId = request.headers['last-event-id'];
    const resumeText = typeof lastEventId === 'string' && /^[0-9]{1,18}$/.test(lastEventId) ? lastEventId : query.after;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...HEADERS, 'x-request-id': request.id });
    const sub: Subscriber = { res, withChanges: query.include === 'changes', sent: 0, buffered: [] };
    // Joined before anything is read, so that nothing published meanwhile is missed.
    const leave = this.join(scope, sub);
    const heartbeat = setInterval(() => write(sub, ': hb\n\n'), STREAM_HEARTBEAT_MS);
    res.on('close', () => {
      leave();
      clearInterval(heartbeat);
    });

    const position = Math.max(changes.feed.position, await changes.lastPosition().catch(() => changes.feed.position));
    const initial = await this.loadInitial(scope).catch(() => []);
    this.learn(scope, initial);
    for (const snapshot of initial)
      write(sub, availabilityMessage(snapshot.eventId, snapshot.name, snapshot, position));
    // Gapless resume of the changes after Last-Event-ID, from the log, before the live ones.
    if (sub.withChanges && resumeText !== undefined) {
      let after = Number(resumeText);
      for (let page = 0; page < RESUME_MAX_PAGES; page++) {
        const { changes: list, next } = await changes
          .page(after, RESUME_PAGE_CHANGES, scope === 'all' ? undefined : scope)
          .catch(() => ({ changes: [], next: after }));
        sendChanges(sub, list);
        if (list.length < RESUME_PAGE_CHANGES) break;
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
    for (const change of latest.values()) write(sub, changeAvailability(change, this.nameOf(scope, change.eventId)));
    changes.feed.pullSoon();
  }

  /** What a stream starts with; read after it has joined, so no change falls in between. */
  private async loadInitial(scope: StreamScope): Promise<Snapshot[]> {
    return scope === 'all' ? this.changes.snapshots() : [await this.changes.snapshot(scope)];
  }

  private join(scope: StreamScope, sub: Subscriber): () => void {
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
  private learn(scope: StreamScope, snapshots: Snapshot[]): void {
    const broadcast = this.byScope.get(scope);
    for (const snapshot of snapshots) broadcast?.names.set(snapshot.eventId, snapshot.name);
  }

  private nameOf(scope: StreamScope, eventId: number): string {
    return this.byScope.get(scope)?.names.get(eventId) ?? '';
  }
}
