// Server-Sent Events listeners: N streams on one event (or on GET /stream), held open, to measure
// what thousands of listeners cost the hot path and how soon they see what happened.
//
// By hand, against a running server (run the bench against the same server meanwhile):
//   npx tsx bench/streams.ts --url http://127.0.0.1:8080 --event 1 --count 2000 --seconds 60
// prints, every 5 s and at the end, how many streams are open and the messages they received.
//
// Under `npm run bench -- --streams N` (a child process, so that parsing the streams costs the
// load generator nothing) it talks over IPC: once every stream has its first availability
// message (or after OPEN_TIMEOUT_MS) it sends `opened`; sent `{ final, since }` (each event's
// final availability and when the load ended, epoch ms) it waits until every stream shows it and
// answers `settled`.
import { setMaxListeners } from 'node:events';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

/** How long the streams may take to open and get their first message. */
const OPEN_TIMEOUT_MS = 30_000;
/** How long after being told the final availability the streams may take to show it. */
const SETTLE_TIMEOUT_MS = 10_000;

export interface StreamsOpened {
  open: number;
  failed: number;
  failures: Record<string, number>;
  /** Streams with no availability message within OPEN_TIMEOUT_MS. */
  withoutFirst: number;
  /** From the first request to the last stream's first availability message; null: some had none. */
  lastFirstMs: number | null;
}

export interface StreamsSettled {
  /** From `since` to the moment the last stream showed every final availability; null: not within the timeout. */
  settledMs: number | null;
  /** Streams that did not show it within SETTLE_TIMEOUT_MS. */
  unsettled: number;
  /** Availability messages per stream per second while the load ran (opened → since). */
  messagesPerStreamPerSecond: number;
  open: number;
  /** This process's CPU (the listeners'), in cores, while the load ran: it shares the box with the server. */
  clientCpuCores: number;
}

export type ParentMessage = { final: Record<string, number>; since: number } | { stop: true };
export type ChildMessage = { opened: StreamsOpened } | { settled: StreamsSettled };

interface Listener {
  firstAt: number | null;
  messages: number;
  /** Each event's last availability seen, and when. */
  available: Map<number, { available: number; at: number }>;
}

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    event: { type: 'string' },
    all: { type: 'boolean' },
    count: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '60' },
    ipc: { type: 'boolean' },
  },
});
if (values.url === undefined || (values.event === undefined) === (values.all === undefined)) {
  console.error(
    'usage: tsx bench/streams.ts --url http://HOST:PORT (--event ID | --all) [--count N] [--seconds S] [--ipc]',
  );
  process.exit(2);
}
const target = new URL(values.url);
const path = values.all ? '/stream' : `/events/${values.event}/stream`;
const count = Number(values.count);
const controller = new AbortController();
setMaxListeners(0, controller.signal);
/** Why streams failed: status codes and error codes, counted. */
const failures: Record<string, number> = {};
const fail = (why: string) => {
  failed++;
  failures[why] = (failures[why] ?? 0) + 1;
  if (firstSeen + failed >= count) onFirst?.();
};
const listeners: Listener[] = [];
let open = 0;
let failed = 0;
let bytes = 0;
let firstSeen = 0;
let onFirst: (() => void) | undefined;

/**
 * One stream on a plain socket, HTTP/1.1 with its chunked framing undone by hand: far cheaper per
 * message than an HTTP client, so that on a shared box the listeners take as little as they can
 * from the server they measure.
 */
function listen(listener: Listener): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.hostname, port: Number(target.port) });
    let head: string | null = '';
    let buffer = '';
    let counted = false;
    const done = (why?: string) => {
      if (why !== undefined && !controller.signal.aborted) fail(why);
      if (counted) open--;
      counted = false;
      socket.destroy();
      resolve();
    };
    controller.signal.addEventListener('abort', () => done(), { once: true });
    // latin1: one character a byte, so chunk sizes count characters (the bench's names are ASCII).
    socket.setEncoding('latin1');
    socket.on('connect', () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${target.host}\r\nAccept: text/event-stream\r\n\r\n`),
    );
    socket.on('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
    socket.on('end', () => done('ended'));
    let raw = '';
    /** Bytes left in the current chunk, then its CRLF. */
    let left = 0;
    socket.on('data', (chunk: string) => {
      bytes += chunk.length;
      raw += chunk;
      if (head !== null) {
        const end = raw.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = raw.slice(9, 12);
        if (status !== '200') return done(status);
        head = null;
        open++;
        counted = true;
        raw = raw.slice(end + 4);
      }
      // Transfer-Encoding: chunked, undone.
      for (;;) {
        if (left > 0) {
          const take = raw.slice(0, Math.max(0, Math.min(raw.length, left - 2)));
          buffer += take;
          left -= take.length;
          raw = raw.slice(take.length);
          if (left > 2 || raw.length < 2) break;
          raw = raw.slice(2);
          left = 0;
        }
        const line = raw.indexOf('\r\n');
        if (line < 0) break;
        const size = parseInt(raw.slice(0, line), 16);
        if (size === 0) return done('ended');
        raw = raw.slice(line + 2);
        left = size + 2;
      }
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.startsWith('event: availability\n')) continue;
        const at = Date.now();
        const data = JSON.parse(block.slice(block.indexOf('\ndata: ') + 7)) as { event_id: number; available: number };
        listener.messages++;
        listener.available.set(data.event_id, { available: data.available, at });
        if (listener.firstAt === null) {
          listener.firstAt = at;
          if (++firstSeen + failed >= count) onFirst?.();
        }
      }
    });
  });
}

const started = Date.now();
const streams = Array.from({ length: count }, () => {
  const listener: Listener = { firstAt: null, messages: 0, available: new Map() };
  listeners.push(listener);
  return listen(listener);
});

async function stop(): Promise<void> {
  controller.abort();
  await Promise.allSettled(streams);
}

/** Until every stream shows `final` (each event's availability), or SETTLE_TIMEOUT_MS. */
async function settle(
  final: Record<string, number>,
  since: number,
  openedAt: number,
  cpuAtOpen: NodeJS.CpuUsage,
): Promise<StreamsSettled> {
  const messagesBefore = listeners.reduce((n, l) => n + l.messages, 0);
  const cpu = process.cpuUsage(cpuAtOpen);
  const loadSeconds = Math.max(0.001, (Date.now() - openedAt) / 1000);
  const wanted = Object.entries(final).map(([id, available]) => [Number(id), available] as const);
  const shownAt = (l: Listener): number | null => {
    let last = 0;
    for (const [id, available] of wanted) {
      const seen = l.available.get(id);
      if (seen?.available !== available) return null;
      last = Math.max(last, seen.at);
    }
    return last;
  };
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const times = listeners.filter((l) => l.firstAt !== null).map(shownAt);
    const unsettled = times.filter((t) => t === null).length;
    if (unsettled === 0 || Date.now() > deadline) {
      const last = Math.max(since, ...times.filter((t): t is number => t !== null));
      return {
        settledMs: unsettled === 0 ? last - since : null,
        unsettled,
        messagesPerStreamPerSecond: messagesBefore / Math.max(1, open) / loadSeconds,
        open,
        clientCpuCores: (cpu.user + cpu.system) / 1e6 / loadSeconds,
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

if (values.ipc) {
  await new Promise<void>((resolve) => {
    onFirst = resolve;
    setTimeout(resolve, OPEN_TIMEOUT_MS);
  });
  const lastFirst = Math.max(...listeners.map((l) => l.firstAt ?? Number.NaN));
  const openedAt = Date.now();
  const cpuAtOpen = process.cpuUsage();
  for (const l of listeners) l.messages = 0;
  const opened: StreamsOpened = {
    open,
    failed,
    failures,
    withoutFirst: listeners.filter((l) => l.firstAt === null).length,
    lastFirstMs: Number.isNaN(lastFirst) ? null : lastFirst - started,
  };
  process.send!({ opened } satisfies ChildMessage);
  process.on('message', (message: ParentMessage) => {
    if ('stop' in message) {
      void stop().then(() => process.exit(0));
      return;
    }
    void settle(message.final, message.since, openedAt, cpuAtOpen).then((settled) =>
      process.send!({ settled } satisfies ChildMessage),
    );
  });
  process.on('disconnect', () => void stop().then(() => process.exit(0)));
} else {
  const report = () =>
    console.log(
      JSON.stringify({
        seconds: Math.round((Date.now() - started) / 1000),
        open,
        failed,
        messages: listeners.reduce((n, l) => n + l.messages, 0),
        kilobytes: Math.round(bytes / 1024),
      }),
    );
  const ticker = setInterval(report, 5000);
  await new Promise((resolve) => setTimeout(resolve, Number(values.seconds) * 1000));
  clearInterval(ticker);
  report();
  await stop();
}
