// A small HTTP/1.1 load generator: N keep-alive connections, one request in flight on each,
// request bytes built once and written straight to the socket.
//
// Why not autocannon's run loop: at the deadline autocannon destroys its sockets, dropping the
// requests still in flight. The server commits those holds anyway, so "acknowledged holds ==
// held seats" could never be checked exactly. Here each connection stops issuing at the
// deadline and then reads its last response (within a grace period), so every hold the server
// granted is one the benchmark saw.
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
}

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
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

class Samples {
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
  const started = performance.now();
  const deadline = started + plan.durationMs;
  const cpuBefore = process.cpuUsage();

  const countError = (code: string) => {
    errors[code] = (errors[code] ?? 0) + 1;
  };

  return new Promise((resolve) => {
    let running = plan.connections;
    const finishOne = () => {
      if (--running > 0) return;
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

      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(graceTimer);
        socket?.destroy();
        finishOne();
      };

      const send = () => {
        if (performance.now() >= deadline) return finish();
        const request = plan.next(conn);
        if (request === null) return finish();
        inFlight = request;
        sentAt = performance.now();
        socket!.write(request);
      };

      const open = () => {
        pending = null;
        const s = connect({ host: plan.host, port: plan.port, noDelay: true });
        socket = s;
        s.on('connect', send);
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
            return performance.now() >= deadline ? finish() : open();
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
          if (performance.now() >= deadline || ++reconnects > 100) return finish();
          setTimeout(open, 10);
        });
      };

      // At the deadline plus grace, give up on a response still outstanding.
      const graceTimer = setTimeout(() => {
        if (inFlight !== null) {
          unknownOutcome++;
          countError('abandoned_after_grace');
          inFlight = null;
        }
        finish();
      }, plan.durationMs + plan.graceMs);
      open();
    }
  });
}
