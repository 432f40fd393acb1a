// A small HTTP/1.1 load generator: N keep-alive connections, one request in flight on each,
// request bytes built once and written straight to the socket.
//
// Why not autocannon's run loop: at the deadline autocannon destroys its sockets, dropping the
// requests still in flight. The server commits those holds anyway, so "acknowledged holds ==
// held seats" could never be checked exactly. Here each connection stops issuing at the
// deadline and then reads its last response (within a grace period), so every hold the server
// granted is one the benchmark saw.
//
// The clock starts once every connection is open and has answered a priming request (a GET
// /healthz): otherwise the first requests of the run wait for the server to accept their
// connections, up to a second on a busy box, and that start-up transient, not the steady state,
// would be the p99.9. runOpenLoop (below) is the open-loop counterpart: a fixed arrival rate.
import { type Socket, connect } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LoadPlan {
  host: string;
  port: number;
  connections: number;
  durationMs: number;
  /** After the deadline, how long to wait for in-flight responses before abandoning them. */
  graceMs: number;
  /** The next request for connection `conn`, or null when that connection has no more work. */
  next(conn: number): Buffer | null;
  /** Every completed exchange, with the request that was sent. */
  onResponse?(status: number, body: Buffer, request: Buffer): void;
  /** Labels a request for per-kind latency (e.g. "hold", "book"); one label when absent. */
  kindOf?(request: Buffer): string;
  /**
   * Sent once on each new connection before the clock starts, its answer not counted (a GET
   * that changes nothing, such as /healthz): the server has then accepted every connection.
   */
  prime?: Buffer;
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

export interface LoadResult {
  /** From the first request to the last response. */
  elapsedMs: number;
  completed: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  /** Requests whose response never came: the server may or may not have acted on them. */
  unknownOutcome: number;
  latency: LatencySummary;
  latencyByKind: Record<string, LatencySummary>;
  /** CPU used by this (load generator) process during the run. */
  cpuMs: number;
}

/** Raw bytes of one HTTP/1.1 request. */
export function httpRequest(
  method: string,
  path: string,
  host: string,
  body?: string,
  headers: Record<string, string> = {},
): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, `host: ${host}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== undefined) {
    lines.push('content-type: application/json', `content-length: ${Buffer.byteLength(body)}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
}

export class Samples {
  private values = new Float64Array(1 << 14);
  private length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  summary(): LatencySummary {
    const sorted = this.values.slice(0, this.length).sort();
    const at = (q: number) =>
      sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    let sum = 0;
    for (const value of sorted) sum += value;
    return {
      count: sorted.length,
      meanMs: sorted.length === 0 ? 0 : sum / sorted.length,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      p99Ms: at(0.99),
      p999Ms: at(0.999),
      maxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!,
    };
  }
}

const HEADER_END = Buffer.from('\r\n\r\n');

interface Parsed {
  status: number;
  body: Buffer;
  close: boolean;
  rest: Buffer | null;
}

/** Parses one response from the front of `buf`; null while it is incomplete. */
function parseResponse(buf: Buffer): Parsed | null {
  const headerEnd = buf.indexOf(HEADER_END);
  if (headerEnd < 0) return null;
  const head = buf.toString('latin1', 0, headerEnd).toLowerCase();
  const status = Number(head.slice(9, 12));
  const match = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (match === null) throw new Error('response without content-length');
  const end = headerEnd + 4 + Number(match[1]);
  if (buf.length < end) return null;
  return {
    status,
    body: buf.subarray(headerEnd + 4, end),
    close: /\r\nconnection:\s*close/.test(head),
    rest: buf.length > end ? buf.subarray(end) : null,
  };
}

export function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const samples = new Map<string, Samples>();
  const all = new Samples();
  let completed = 0;
  let unknownOutcome = 0;
  let lastResponseAt = 0;
  // The clock starts once every connection is open (and primed): a connection's first
  // exchange pays for the server accepting it, which is not what a steady state is made of.
  let started = 0;
  let deadline = Number.POSITIVE_INFINITY;
  let cpuBefore = process.cpuUsage();
  let ready = 0;
  let begun = false;
  const starters: Array<() => void> = [];
  const finishers: Array<(abandon: boolean) => void> = [];

  const countError = (code: string) => {
    errors[code] = (errors[code] ?? 0) + 1;
  };

  return new Promise((resolve) => {
    let running = plan.connections;
    let graceTimer: NodeJS.Timeout | undefined;
    const begin = () => {
      if (begun) return;
      begun = true;
      clearTimeout(readyTimer);
      cpuBefore = process.cpuUsage();
      started = performance.now();
      deadline = started + plan.durationMs;
      // At the deadline plus grace, give up on responses still outstanding.
      graceTimer = setTimeout(() => {
        for (const finish of finishers) finish(true);
      }, plan.durationMs + plan.graceMs);
      for (const start of starters) start();
    };
    // A server that does not let every connection in soon starts the clock anyway.
    const readyTimer = setTimeout(begin, 10_000);
    const finishOne = () => {
      if (--running > 0) return;
      clearTimeout(graceTimer);
      clearTimeout(readyTimer);
      const cpu = process.cpuUsage(cpuBefore);
      const latencyByKind: Record<string, LatencySummary> = {};
      for (const [kind, kindSamples] of samples) latencyByKind[kind] = kindSamples.summary();
      resolve({
        elapsedMs: (lastResponseAt || performance.now()) - started,
        completed,
        statuses,
        errors,
        unknownOutcome,
        latency: all.summary(),
        latencyByKind,
        cpuMs: (cpu.user + cpu.system) / 1000,
      });
    };

    for (let conn = 0; conn < plan.connections; conn++) {
      let socket: Socket | null = null;
      let inFlight: Buffer | null = null;
      let sentAt = 0;
      let pending: Buffer | null = null;
      let done = false;
      let reconnects = 0;
      let counted = false;

      const finish = (abandon: boolean) => {
        if (done) return;
        if (abandon && inFlight !== null) {
          unknownOutcome++;
          countError('abandoned_after_grace');
          inFlight = null;
        }
        done = true;
        socket?.destroy();
        finishOne();
      };
      finishers.push(finish);

      const send = () => {
        if (performance.now() >= deadline) return finish(false);
        const request = plan.next(conn);
        if (request === null) return finish(false);
        inFlight = request;
        sentAt = performance.now();
        socket!.write(request);
      };
      starters.push(() => {
        // A connection still opening (or priming) sends when it is ready.
        if (socket !== null && !socket.connecting && !socket.destroyed && counted) send();
      });

      /** Open (and primed), before the clock started: wait for the others. */
      const isReady = () => {
        if (counted) return;
        counted = true;
        if (++ready === plan.connections) begin();
      };

      const open = () => {
        pending = null;
        const s = connect({ host: plan.host, port: plan.port, noDelay: true });
        socket = s;
        let priming = false;
        s.on('connect', () => {
          if (begun) {
            counted = true;
            return send();
          }
          if (plan.prime === undefined) return isReady();
          priming = true;
          s.write(plan.prime);
        });
        s.on('data', (chunk: Buffer) => {
          const buf: Buffer = pending === null ? chunk : Buffer.concat([pending, chunk]);
          let parsed: Parsed | null;
          try {
            parsed = parseResponse(buf);
          } catch {
            countError('bad_response');
            s.destroy();
            return;
          }
          if (parsed === null) {
            pending = buf;
            return;
          }
          pending = null;
          if (priming) {
            priming = false;
            if (begun) {
              counted = true;
              return send();
            }
            return isReady();
          }
          const now = performance.now();
          lastResponseAt = now;
          const request = inFlight!;
          inFlight = null;
          completed++;
          const latencyMs = now - sentAt;
          all.push(latencyMs);
          const kind = plan.kindOf?.(request) ?? 'all';
          let kindSamples = samples.get(kind);
          if (kindSamples === undefined) samples.set(kind, (kindSamples = new Samples()));
          kindSamples.push(latencyMs);
          statuses[parsed.status] = (statuses[parsed.status] ?? 0) + 1;
          plan.onResponse?.(parsed.status, parsed.body, request);
          // One request is in flight at a time, so bytes past this response are a server bug.
          if (parsed.rest !== null) countError('unsolicited_bytes');
          if (parsed.close) {
            s.removeAllListeners('close');
            s.destroy();
            return performance.now() >= deadline ? finish(false) : open();
          }
          send();
        });
        s.on('error', (error: NodeJS.ErrnoException) => countError(error.code ?? 'socket_error'));
        s.on('close', () => {
          if (done) return;
          if (inFlight !== null) {
            unknownOutcome++;
            inFlight = null;
          }
          // Back off a little so a dead server does not turn into a busy loop.
          if (performance.now() >= deadline || ++reconnects > 100) return finish(false);
          setTimeout(open, 10);
        });
      };
      open();
    }
  });
}

export interface OpenLoopPlan {
  host: string;
  port: number;
  /** Requests per second offered, whatever the server does with them. */
  ratePerSecond: number;
  durationMs: number;
  graceMs: number;
  /** Connections opened before the window starts; more are opened when all are busy. */
  initialConnections: number;
  /** The pool never grows past this; beyond it requests wait in the generator (and that wait counts). */
  maxConnections: number;
  /** The next request; null skips this arrival (no work for it). */
  next(): Buffer | null;
  onResponse?(status: number, body: Buffer, request: Buffer): void;
  kindOf?(request: Buffer): string;
  /** Sent once on each connection opened before the clock starts (see LoadPlan.prime). */
  prime?: Buffer;
}

export interface OpenLoopResult extends LoadResult {
  /** Arrivals scheduled in the window, per second of the window. */
  offeredRate: number;
  scheduled: number;
  /** Responses received within the window, per second of the window (at most the server's capacity). */
  achievedRate: number;
  /** Arrivals for which next() had no request. */
  skipped: number;
  /** Scheduled requests still waiting for a connection when the grace period ran out. */
  unsent: number;
  /** From the moment the request was written, not from its intended send time. */
  serviceLatency: LatencySummary;
  /** Written minus intended send time: timer granularity, a busy generator, waits for a connection. */
  sendLag: LatencySummary;
  connectionsOpened: number;
  connectionsPeak: number;
  /** Arrivals that found every connection busy and waited for one (their latency includes the wait). */
  waitedForConnection: number;
  maxBacklog: number;
}

interface OpenConn {
  socket: Socket;
  connected: boolean;
  priming: boolean;
  request: Buffer | null;
  intendedAt: number;
  sentAt: number;
  pending: Buffer | null;
}

/**
 * Open-loop load: requests are scheduled at a fixed rate, evenly spaced,
 * whatever the server answers, each written on an idle keep-alive connection of a pool that grows
 * when all are busy. Latency runs from the *intended* send time, so a server (or a generator)
 * that falls behind is charged for the whole delay (no coordinated omission): requests that wait
 * for a connection, or behind a late timer, keep their place in the schedule. After the window,
 * requests already scheduled are still sent and answered (within the grace period), so every
 * acknowledged hold is seen and the books can be checked exactly.
 */
export async function runOpenLoop(plan: OpenLoopPlan): Promise<OpenLoopResult> {
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const samples = new Map<string, Samples>();
  const all = new Samples();
  const service = new Samples();
  const lag = new Samples();
  const conns = new Set<OpenConn>();
  const idle: OpenConn[] = [];
  const backlog: Array<{ request: Buffer; intendedAt: number }> = [];
  let backlogHead = 0;
  let connecting = 0;
  let inFlight = 0;
  let completed = 0;
  let completedInWindow = 0;
  let unknownOutcome = 0;
  let scheduled = 0;
  let skipped = 0;
  let connectionsOpened = 0;
  let connectionsPeak = 0;
  let connectFailures = 0;
  let waitedForConnection = 0;
  let maxBacklog = 0;
  let lastResponseAt = 0;
  let started = 0;
  let deadline = Number.POSITIVE_INFINITY;
  let schedulingDone = false;
  let finished = false;
  let cpuBefore = process.cpuUsage();
  let resolveDone: (result: OpenLoopResult) => void = () => {};
  let onPoolReady: (() => void) | null = null;
  let tickTimer: NodeJS.Timeout | undefined;
  let graceTimer: NodeJS.Timeout | undefined = undefined;

  const countError = (code: string) => {
    errors[code] = (errors[code] ?? 0) + 1;
  };
  const backlogSize = () => backlog.length - backlogHead;

  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(tickTimer);
    clearTimeout(graceTimer);
    const cpu = process.cpuUsage(cpuBefore);
    for (const conn of conns) {
      if (conn.request !== null) {
        unknownOutcome++;
        countError('abandoned_after_grace');
      }
      conn.socket.destroy();
    }
    const latencyByKind: Record<string, LatencySummary> = {};
    for (const [kind, kindSamples] of samples) latencyByKind[kind] = kindSamples.summary();
    const elapsedMs = Math.max(lastResponseAt, started + plan.durationMs) - started;
    resolveDone({
      elapsedMs,
      completed,
      statuses,
      errors,
      unknownOutcome,
      latency: all.summary(),
      latencyByKind,
      cpuMs: (cpu.user + cpu.system) / 1000,
      offeredRate: scheduled / (plan.durationMs / 1000),
      scheduled,
      achievedRate: completedInWindow / (plan.durationMs / 1000),
      skipped,
      unsent: backlogSize(),
      serviceLatency: service.summary(),
      sendLag: lag.summary(),
      connectionsOpened,
      connectionsPeak,
      waitedForConnection,
      maxBacklog,
    });
  };

  const maybeFinish = () => {
    if (schedulingDone && inFlight === 0 && backlogSize() === 0) finish();
  };

  const send = (conn: OpenConn, request: Buffer, intendedAt: number) => {
    const now = performance.now();
    conn.request = request;
    conn.intendedAt = intendedAt;
    conn.sentAt = now;
    inFlight++;
    lag.push(now - intendedAt);
    conn.socket.write(request);
  };

  /** A free connection takes the oldest waiting request, or waits for the next arrival. */
  const takeWork = (conn: OpenConn) => {
    if (backlogSize() > 0) {
      const item = backlog[backlogHead++]!;
      if (backlogHead > 1024 && backlogHead * 2 > backlog.length) {
        backlog.splice(0, backlogHead);
        backlogHead = 0;
      }
      send(conn, item.request, item.intendedAt);
      return;
    }
    idle.push(conn);
    maybeFinish();
  };

  const open = () => {
    const socket = connect({ host: plan.host, port: plan.port, noDelay: true });
    const conn: OpenConn = {
      socket,
      connected: false,
      priming: false,
      request: null,
      intendedAt: 0,
      sentAt: 0,
      pending: null,
    };
    conns.add(conn);
    connecting++;
    connectionsOpened++;
    connectionsPeak = Math.max(connectionsPeak, conns.size);
    socket.on('connect', () => {
      conn.connected = true;
      connecting--;
      if (onPoolReady !== null) {
        if (plan.prime !== undefined) {
          conn.priming = true;
          socket.write(plan.prime);
          return;
        }
        idle.push(conn);
        if (--warming === 0) onPoolReady();
        return;
      }
      takeWork(conn);
    });
    socket.on('data', (chunk: Buffer) => {
      const buf: Buffer = conn.pending === null ? chunk : Buffer.concat([conn.pending, chunk]);
      let parsed: Parsed | null;
      try {
        parsed = parseResponse(buf);
      } catch {
        countError('bad_response');
        socket.destroy();
        return;
      }
      if (parsed === null) {
        conn.pending = buf;
        return;
      }
      conn.pending = null;
      if (conn.priming) {
        conn.priming = false;
        if (onPoolReady === null) return takeWork(conn);
        idle.push(conn);
        if (--warming === 0) onPoolReady();
        return;
      }
      const now = performance.now();
      lastResponseAt = now;
      const request = conn.request;
      if (request === null) {
        countError('unsolicited_bytes');
        return;
      }
      conn.request = null;
      inFlight--;
      completed++;
      if (now <= deadline) completedInWindow++;
      const latencyMs = now - conn.intendedAt;
      all.push(latencyMs);
      service.push(now - conn.sentAt);
      const kind = plan.kindOf?.(request) ?? 'all';
      let kindSamples = samples.get(kind);
      if (kindSamples === undefined) samples.set(kind, (kindSamples = new Samples()));
      kindSamples.push(latencyMs);
      statuses[parsed.status] = (statuses[parsed.status] ?? 0) + 1;
      plan.onResponse?.(parsed.status, parsed.body, request);
      if (parsed.rest !== null) countError('unsolicited_bytes');
      if (parsed.close) {
        socket.destroy();
        return;
      }
      takeWork(conn);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => countError(error.code ?? 'socket_error'));
    socket.on('close', () => {
      conns.delete(conn);
      const at = idle.indexOf(conn);
      const wasReady = at >= 0 || conn.request !== null;
      if (at >= 0) idle.splice(at, 1);
      if (!conn.connected) {
        connecting--;
        connectFailures++;
      }
      if (conn.request !== null) {
        conn.request = null;
        inFlight--;
        unknownOutcome++;
      }
      if (finished) return;
      if (onPoolReady !== null) {
        // One that never got ready no longer keeps the clock from starting.
        if (!wasReady && --warming === 0) onPoolReady();
        return;
      }
      // Requests still waiting need a connection; a server that refuses them all ends the run.
      if (connectFailures > 100) return finish();
      if (backlogSize() > connecting && conns.size < plan.maxConnections) setTimeout(grow, 10);
      maybeFinish();
    });
  };

  const grow = () => {
    if (!finished && backlogSize() > connecting && conns.size < plan.maxConnections) open();
  };

  const dispatch = (request: Buffer, intendedAt: number) => {
    const conn = idle.pop();
    if (conn !== undefined) return send(conn, request, intendedAt);
    backlog.push({ request, intendedAt });
    waitedForConnection++;
    maxBacklog = Math.max(maxBacklog, backlogSize());
    grow();
  };

  // Connections for the expected concurrency are opened (and primed) before the clock starts.
  const initial = Math.max(1, Math.min(plan.initialConnections, plan.maxConnections));
  let warming = initial;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => resolve(), 10_000);
    onPoolReady = () => {
      clearTimeout(timer);
      resolve();
    };
    for (let i = 0; i < initial; i++) open();
  });
  onPoolReady = null;
  if (conns.size === 0) throw new Error(`open loop: no connection to ${plan.host}:${plan.port}`);

  const intervalMs = 1000 / plan.ratePerSecond;
  cpuBefore = process.cpuUsage();
  started = performance.now();
  deadline = started + plan.durationMs;
  let nextAt = started;
  let index = 0;
  const tick = () => {
    if (finished) return;
    const now = performance.now();
    // Every arrival that is due is sent now, still timed from its own intended instant.
    while (nextAt <= now && nextAt < deadline) {
      const request = plan.next();
      if (request === null) skipped++;
      else {
        scheduled++;
        dispatch(request, nextAt);
      }
      index++;
      nextAt = started + index * intervalMs;
    }
    if (nextAt >= deadline) {
      schedulingDone = true;
      maybeFinish();
      return;
    }
    tickTimer = setTimeout(tick, Math.max(0, nextAt - performance.now()));
  };
  const done = new Promise<OpenLoopResult>((resolve) => {
    resolveDone = resolve;
  });
  graceTimer = setTimeout(finish, plan.durationMs + plan.graceMs);
  tick();
  return done;
}
