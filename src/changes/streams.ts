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
export const STREAM_COALESCE_MS = 500;
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
  { total, available, held, booked, waiting }: Change['snapshot'],
  position: number,
): string {
  const data = { event_id: eventId, name, total, available, held, booked, waiting, position: String(position) };
  return `event: availability\nid: ${position}\ndata: ${JSON.stringify(data)}\n\n`;
}

const changeAvailability = (change: Change, name: string): string =>
  availabilityMessage(change.eventId, name, change.snapshot, change.position);

const changeMessage = (change: Change): string =>
  `event: change\nid: ${change.position}\ndata: ${JSON.stringify(renderChange(change))}\n\n`;

/**
 * One message (or several) as written to every stream: the text is built once, and encoded once
 * per framing (chunked, the HTTP/1.1 case, or raw for HTTP/1.0), however many streams it goes to.
 */
class Frame {
  private chunked: Buffer | undefined;
  private raw: Buffer | undefined;

  constructor(readonly text: string) {}

  /** The bytes of this frame on `res`, framed as `res` would frame a write of the text. */
  bytes(res: ServerResponse): Buffer {
    if (!res.chunkedEncoding) return (this.raw ??= Buffer.from(this.text));
    if (this.chunked === undefined) {
      const body = Buffer.from(this.text);
      this.chunked = Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF]);
    }
    return this.chunked;
  }
}

const CRLF = Buffer.from('\r\n');
const HEARTBEAT = new Frame(': hb\n\n');

/** One open stream. */
interface Subscriber {
  res: ServerResponse;
  withChanges: boolean;
  /** The highest position sent, so nothing goes out twice or backwards. */
  sent: number;
  /** Until the stream has its first messages (and, resuming, the log after Last-Event-ID), live changes wait here. */
  buffered: Change[] | null;
}

/**
 * Writes a frame to one stream: straight to its socket, one write of bytes built once for every
 * stream (what `res.write` would send, without framing and encoding it again for each of
 * thousands of streams). The headers are out by then (`flushHeaders`), and nothing else writes
 * to the socket meanwhile: `res.end()` comes after, in order.
 */
function write(sub: Subscriber, frame: Frame): void {
  const { res } = sub;
  const socket = res.socket;
  if (socket === null || !res.headersSent || res.writableEnded) {
    if (!res.writableEnded) res.write(frame.text);
  } else {
    socket.write(frame.bytes(res));
  }
  if ((socket?.writableLength ?? res.writableLength) > STREAM_MAX_BUFFERED_BYTES) res.end();
}

/** Sends the changes of `list` this stream has not had, with include=changes in one write. */
function sendChanges(sub: Subscriber, list: Change[], all?: Frame): void {
  if (list.length === 0) return;
  const last = list[list.length - 1]!.position;
  if (last <= sub.sent) return;
  if (sub.withChanges) {
    const fresh = list[0]!.position > sub.sent;
    const frame = fresh && all !== undefined ? all : changesFrame(list.filter((c) => c.position > sub.sent));
    write(sub, frame);
  }
  sub.sent = last;
}

const changesFrame = (list: Change[]): Frame => new Frame(list.map(changeMessage).join(''));

/** What streams of a scope start with: the log's watermark and the snapshots, read after they joined. */
interface Initial {
  position: number;
  snapshots: Snapshot[];
  /** Each snapshot's availability message, as of `position`, for every stream that shared the read. */
  frame: Frame;
}

/** The streams of one scope, and their one subscription to the feed. */
class Broadcast {
  readonly subscribers = new Set<Subscriber>();
  readonly names = new Map<number, string>();
  private readonly pending = new Map<number, Change>();
  private timer: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  /** The next initial read, not yet started: every stream that joins before it starts shares it. */
  private nextRead: Promise<Initial> | undefined;
  /** The latest initial read (perhaps in flight); the next one starts after it. */
  private lastRead: Promise<Initial> | undefined;

  constructor(
    private readonly changes: ChangesService,
    private readonly scope: StreamScope,
    private readonly learnName: (eventId: number) => Promise<string>,
  ) {
    this.unsubscribe = changes.feed.subscribe(scope, (list) => this.onChanges(list));
    // One timer for every stream of the scope, not one each.
    this.heartbeat = setInterval(() => {
      for (const sub of this.subscribers) if (sub.buffered === null) write(sub, HEARTBEAT);
    }, STREAM_HEARTBEAT_MS);
  }

  close(): void {
    this.unsubscribe();
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
  }

  /**
   * What a stream that has joined starts with. One read at a time per scope: every stream that
   * joins before a read starts shares it, and the next read starts once the one in flight is over
   * (and not before the next tick, so that streams arriving together share it too). A read starts
   * after every stream sharing it has joined, so no change falls between their snapshot and the
   * changes they are handed live.
   */
  initial(): Promise<Initial> {
    if (this.nextRead === undefined) {
      const previous = this.lastRead;
      const next: Promise<Initial> = (async () => {
        await previous?.catch(() => {});
        await new Promise((resolve) => setImmediate(resolve));
        this.nextRead = undefined; // started: whoever joins from now on waits for the next one
        return this.read();
      })();
      this.nextRead = next;
      this.lastRead = next;
    }
    return this.nextRead;
  }

  private async read(): Promise<Initial> {
    const { changes } = this;
    const position = Math.max(changes.feed.position, await changes.lastPosition().catch(() => changes.feed.position));
    const snapshots =
      this.scope === 'all' ? await changes.snapshots().catch(() => []) : [await changes.snapshot(this.scope)];
    for (const snapshot of snapshots) this.names.set(snapshot.eventId, snapshot.name);
    const text = snapshots.map((s) => availabilityMessage(s.eventId, s.name, s, position)).join('');
    return { position, snapshots, frame: new Frame(text) };
  }

  private onChanges(list: Change[]): void {
    let all: Frame | undefined;
    for (const sub of this.subscribers) {
      if (sub.buffered !== null) sub.buffered.push(...list);
      else sendChanges(sub, list, sub.withChanges ? (all ??= changesFrame(list)) : undefined);
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
    // Every event's message of this flush in one write per stream.
    const text = changes
      .filter((change) => !((this.pending.get(change.eventId)?.position ?? 0) > change.position)) // newer one queued meanwhile
      .map((change) => changeAvailability(change, this.names.get(change.eventId) ?? ''))
      .join('');
    if (text !== '') {
      const frame = new Frame(text);
      for (const sub of this.subscribers) if (sub.buffered === null) write(sub, frame);
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
    // would never end; a 404 for an event that is not there.
    if (request.method === 'HEAD') {
      if (scope !== 'all') await this.changes.snapshot(scope);
      await reply.code(200).headers(HEADERS).send();
      return;
    }
    const { changes } = this;
    const lastEventId = request.headers['last-event-id'];
    const resumeText = typeof lastEventId === 'string' && /^[0-9]{1,18}$/.test(lastEventId) ? lastEventId : query.after;
    const res = reply.raw;
    const sub: Subscriber = { res, withChanges: query.include === 'changes', sent: 0, buffered: [] };
    // Joined before anything is read, so that nothing published meanwhile is missed.
    const { broadcast, leave } = this.join(scope, sub);
    res.on('close', leave);
    let initial: Initial;
    try {
      initial = await broadcast.initial();
    } catch (error) {
      leave();
      throw error; // an event that is not there: a 404, before the stream starts
    }
    reply.hijack();
    if (res.destroyed || res.writableEnded) return; // gone meanwhile (or the server is closing)
    res.writeHead(200, { ...HEADERS, 'x-request-id': request.id });
    // The headers and the first messages in one write.
    if (initial.snapshots.length > 0) res.write(initial.frame.text);
    else res.flushHeaders();
    const { position } = initial;
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
    if (latest.size > 0)
      write(
        sub,
        new Frame(
          [...latest.values()]
            .map((change) => changeAvailability(change, broadcast.names.get(change.eventId) ?? ''))
            .join(''),
        ),
      );
    changes.feed.pullSoon();
  }

  private join(scope: StreamScope, sub: Subscriber): { broadcast: Broadcast; leave: () => void } {
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
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      joined.subscribers.delete(sub);
      if (joined.subscribers.size === 0) {
        joined.close();
        if (this.byScope.get(scope) === joined) this.byScope.delete(scope);
      }
    };
    return { broadcast, leave };
  }
}
