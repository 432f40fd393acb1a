// The webhooks bench's receiver: per endpoint (path /hook/<n>), it verifies every request's
// Standard Webhooks signature and keeps the positions seen and the lag of each change from its
// `at`. It runs in a worker thread of the bench process by default (`--receiver inline`: on the
// load generator's thread, whose closed loop of holds its milliseconds would stall).
//
// How it verifies (`--receiver-verify`):
//   native            (default) HMAC-SHA256 with node:crypto, as the standard specifies it (the
//                     bench's own code, not the service's): about what a receiver written in a
//                     language with native crypto pays.
//   standardwebhooks  the `standardwebhooks` npm package, as a Node integrator would. Its
//                     JavaScript SHA-256 takes milliseconds for a 0.2 MB batch: at 10 endpoints
//                     that was more CPU per hold than the service's whole delivery work, taken
//                     from the same two cores. The tests verify with the package either way.
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Webhook } from 'standardwebhooks';

export interface ReceiverStats {
  /** Distinct positions received, by endpoint number. */
  received: Record<number, number>;
  requests: number;
  /** Changes in the verified requests, repeats included. */
  changes: number;
  badSignatures: number;
}

export interface Receiver {
  port: number;
  add(n: number, secret: string): Promise<void>;
  /** Forgets every position, lag and count (a new round). */
  reset(): Promise<void>;
  stats(): Promise<ReceiverStats>;
  /** The lag of each distinct change at each endpoint, ms, sorted. */
  lags(): Promise<number[]>;
  /**
   * The receiver thread's CPU time so far, ms (verifying, parsing, reading sockets); null inline,
   * where it shares the load generator's thread.
   */
  busyMs(): Promise<number | null>;
  close(): Promise<void>;
}

type Request =
  | { op: 'add'; n: number; secret: string }
  | { op: 'reset' }
  | { op: 'stats' }
  | { op: 'lags' }
  | { op: 'busy' }
  | { op: 'close' };

/** Linux's clock ticks per second, in which /proc reports CPU time. */
const USER_HZ = 100;

/** This thread's CPU time (utime + stime), ms. */
function threadCpuMs(): number {
  // The command name, in parentheses, may hold spaces: the fields are counted after it.
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

export const VERIFIERS = ['native', 'standardwebhooks'] as const;
export type Verifier = (typeof VERIFIERS)[number];

/** The standard's tolerance for a message's timestamp, as the package checks it. */
const TIMESTAMP_TOLERANCE_SECONDS = 5 * 60;

/**
 * The Standard Webhooks check with node:crypto, over the body's bytes as they came (no text made
 * of them): a throw unless the signature and timestamp hold.
 */
function verifyNatively(secret: string, body: Buffer, headers: Record<string, string>): void {
  const { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': header } = headers;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS) throw new Error('timestamp');
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
  const expected = Buffer.from(`v1,${mac}`);
  const match = header!
    .split(' ')
    .some((given) => given.length === expected.length && timingSafeEqual(Buffer.from(given), expected));
  if (!match) throw new Error('signature');
}

interface Parsed {
  positions: string[];
  atsMs: number[];
}

/**
 * The changes of a batch body. Endpoints at one cursor get the same bytes (each verified under
 * its own secret): the last body's parse is reused when the next one's bytes are equal, so ten
 * endpoints cost the bench one decoding and parse, not ten, of the CPU the service runs on.
 * (Profiled, turning 0.2 MB bodies into text and back took most of the receiver's time.)
 */
function batchParser(): (body: Buffer) => Parsed {
  let lastBody: Buffer = Buffer.alloc(0);
  let last: Parsed = { positions: [], atsMs: [] };
  return (body) => {
    if (body.equals(lastBody)) return last;
    const { data } = JSON.parse(body.toString()) as { data: Array<{ position: string; at: string }> };
    last = { positions: data.map((c) => c.position), atsMs: data.map((c) => Date.parse(c.at)) };
    lastBody = body;
    return last;
  };
}

/** Runs the receiver on this thread. */
async function listen(verifier: Verifier): Promise<{ port: number; handle: (request: Request) => unknown }> {
  const hooks = new Map<number, { secret: string; positions: Set<string> }>();
  let lags: number[] = [];
  let [requests, changes, badSignatures] = [0, 0, 0];
  const parse = batchParser();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const now = Date.now();
      const hook = hooks.get(Number(request.url?.split('/')[2]));
      try {
        const wire = Buffer.concat(chunks);
        const body = request.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire;
        const headers = {
          'webhook-id': String(request.headers['webhook-id']),
          'webhook-timestamp': String(request.headers['webhook-timestamp']),
          'webhook-signature': String(request.headers['webhook-signature']),
        };
        if (verifier === 'native') verifyNatively(hook!.secret, body, headers);
        else new Webhook(hook!.secret).verify(body.toString(), headers);
        const { positions, atsMs } = parse(body);
        requests++;
        changes += positions.length;
        for (let i = 0; i < positions.length; i++) {
          if (hook!.positions.has(positions[i]!)) continue;
          hook!.positions.add(positions[i]!);
          lags.push(now - atsMs[i]!);
        }
      } catch {
        badSignatures++;
      }
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const handle = (request: Request): unknown => {
    switch (request.op) {
      case 'add':
        hooks.set(request.n, { secret: request.secret, positions: new Set() });
        return null;
      case 'reset':
        for (const hook of hooks.values()) hook.positions.clear();
        lags = [];
        [requests, changes, badSignatures] = [0, 0, 0];
        return null;
      case 'stats':
        return {
          received: Object.fromEntries([...hooks].map(([n, hook]) => [n, hook.positions.size])),
          requests,
          changes,
          badSignatures,
        } satisfies ReceiverStats;
      case 'lags':
        return [...lags].sort((a, b) => a - b);
      case 'busy':
        return threadCpuMs();
      case 'close':
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
  return { port: (server.address() as AddressInfo).port, handle };
}

export async function startReceiver(mode: 'thread' | 'inline', verifier: Verifier): Promise<Receiver> {
  let port: number;
  let ask: (request: Request) => Promise<unknown>;
  let stop = () => Promise.resolve();
  if (mode === 'inline') {
    const inline = await listen(verifier);
    port = inline.port;
    ask = (request) => Promise.resolve(inline.handle(request));
  } else {
    // The thread loads this TypeScript file through tsx, as the bench is loaded.
    const worker = new Worker(
      `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`,
      { eval: true, workerData: { verifier } },
    );
    const waiting: Array<(value: unknown) => void> = [];
    port = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    // Answers come in the order asked.
    worker.on('message', (value: unknown) => waiting.shift()?.(value));
    ask = (request) =>
      new Promise((resolve) => {
        waiting.push(resolve);
        worker.postMessage(request);
      });
    stop = async () => {
      await worker.terminate();
    };
  }
  return {
    port,
    add: async (n, secret) => void (await ask({ op: 'add', n, secret })),
    reset: async () => void (await ask({ op: 'reset' })),
    stats: async () => (await ask({ op: 'stats' })) as ReceiverStats,
    lags: async () => (await ask({ op: 'lags' })) as number[],
    busyMs: async () => (mode === 'inline' ? null : ((await ask({ op: 'busy' })) as number)),
    close: async () => {
      await ask({ op: 'close' });
      await stop();
    },
  };
}

if (!isMainThread && parentPort !== null) {
  const parent = parentPort;
  const { port, handle } = await listen((workerData as { verifier: Verifier }).verifier);
  parent.on('message', (request: Request) => {
    void Promise.resolve(handle(request)).then((value) => parent.postMessage(value ?? null));
  });
  parent.postMessage(port);
}
