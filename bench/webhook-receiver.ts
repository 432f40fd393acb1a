// The webhooks bench's receiver: per endpoint (path /hook/<n>), it verifies every request with
// `standardwebhooks`, as an integrator would, and keeps the positions seen and the lag of each
// change from its `at`. By default it runs in a worker thread of the bench process: verifying a
// 0.2 MB body with the package's JavaScript SHA-256 takes milliseconds, and on the load
// generator's thread those milliseconds stall the closed loop of holds (fewer holds/s measured,
// with the server idle). `--receiver inline` runs it on the generator's thread, as before.
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
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
   * The receiver thread's busy time so far, ms (its event loop's active time: verifying, parsing,
   * reading sockets); null inline, where it shares the load generator's thread.
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

/** Runs the receiver on this thread. */
async function listen(): Promise<{ port: number; handle: (request: Request) => unknown }> {
  const hooks = new Map<number, { secret: string; positions: Set<string> }>();
  let lags: number[] = [];
  let [requests, changes, badSignatures] = [0, 0, 0];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const now = Date.now();
      const hook = hooks.get(Number(request.url?.split('/')[2]));
      try {
        const body = new Webhook(hook!.secret).verify(Buffer.concat(chunks).toString(), {
          'webhook-id': String(request.headers['webhook-id']),
          'webhook-timestamp': String(request.headers['webhook-timestamp']),
          'webhook-signature': String(request.headers['webhook-signature']),
        }) as { data: Array<{ position: string; at: string }> };
        requests++;
        changes += body.data.length;
        for (const change of body.data) {
          if (hook!.positions.has(change.position)) continue;
          hook!.positions.add(change.position);
          lags.push(now - Date.parse(change.at));
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
        return (performance as unknown as { eventLoopUtilization(): { active: number } }).eventLoopUtilization().active;
      case 'close':
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };
  return { port: (server.address() as AddressInfo).port, handle };
}

export async function startReceiver(mode: 'thread' | 'inline'): Promise<Receiver> {
  let port: number;
  let ask: (request: Request) => Promise<unknown>;
  let stop = () => Promise.resolve();
  if (mode === 'inline') {
    const inline = await listen();
    port = inline.port;
    ask = (request) => Promise.resolve(inline.handle(request));
  } else {
    // The thread loads this TypeScript file through tsx, as the bench is loaded.
    const worker = new Worker(
      `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`,
      { eval: true },
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
  const { port, handle } = await listen();
  parent.on('message', (request: Request) => {
    void Promise.resolve(handle(request)).then((value) => parent.postMessage(value ?? null));
  });
  parent.postMessage(port);
}
