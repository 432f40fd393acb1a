// Issue 22 item 1 with a standard client: POST /holds driven by autocannon against the service
// as `npm start` runs it (the compiled `bin/box-office.js serve`, nothing of the bench inside),
// each against the canned ceiling (bench/ceiling.ts) in the same round, the order rotating from
// round to round, since only same-round ratios mean anything on a shared box:
//   node --import tsx bench/autocannon-holds.ts [--rounds 3] [--duration 8] [--warmup 2] [--conns 256]
// Each round starts the ceiling and two services, each on a scratch database of DATABASE_URL's
// server (default the box's PostgreSQL at 127.0.0.1:5432):
//   plain     one hot event, qty 1, no customer;
//   features  the round's fairness features: every hold carries a customer of its own under
//             max_seats_per_customer 4, the event has an admission queue (already open) and every
//             hold carries a valid Admission-Token for its customer, signed before the clock as the
//             queue signs them; the change feed is on and one webhook endpoint (a loopback
//             receiver in this process answering 200) gets every change.
// Every window is followed by the books check (GET /events/:id counters against the holds
// granted) and the server's RSS (and its peak so far). RATE_LIMIT_HOLDS_PER_MINUTE=0, LOG_LEVEL=warn, as the setup.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { parseAdmissionKeys, signAdmission } from '../src/admission/tokens.ts';
import { openProvider } from './databases.ts';
import { type Child, readMemory, startChild } from './processes.ts';
import { type Target, api, createEvent } from './scenarios.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    conns: { type: 'string', default: '256' },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION_SECONDS = Number(values.duration);
const WARMUP_SECONDS = Number(values.warmup);
const CONNS = Number(values.conns);
const SEATS = 1_000_000;
const CUSTOMER_LIMIT = 4;
const ADMISSION_TTL_SECONDS = 3600;
/** Pre-signed tokens per features window: more than any window here can use. */
const TOKENS_PER_WINDOW = 400_000;
const LOG_DIR = resolve('.bench/logs');
const SECRET = `bench:${randomBytes(24).toString('base64url')}`;
const ADMIN_TOKEN = randomBytes(18).toString('base64url');

type Variant = 'plain' | 'features';

interface Window {
  perSecond: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

// The webhook endpoint of the features service: answers 200 to every delivery.
let webhookRequests = 0;
const receiver = createServer((request, response) => {
  request.resume();
  request.on('end', () => {
    webhookRequests++;
    response.writeHead(200).end();
  });
});
await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
const receiverPort = (receiver.address() as { port: number }).port;

const provider = await openProvider(
  'postgres',
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
);
mkdirSync(LOG_DIR, { recursive: true });

/** A port nobody listens on now (the service is told its port; the ceiling picks its own). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as { port: number };
  await new Promise((done) => probe.close(done));
  return port;
}

async function startService(label: string): Promise<{ child: Child; drop: () => Promise<void> }> {
  const fresh = await provider.fresh();
  const port = await freePort();
  const child = await startChild({
    args: [resolve('bin/box-office.js'), 'serve'],
    env: {
      ...fresh.env,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      ADMIN_TOKEN,
      ADMISSION_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_HOLDS_PER_MINUTE: '0',
      WEBHOOK_ALLOW_PRIVATE_URLS: 'true',
    },
    label,
    logDir: LOG_DIR,
    http: { port, path: '/readyz' },
  });
  return { child, drop: () => fresh.drop() };
}

/** A hot event for one window; its requests (the features' pre-signed) and its books check. */
async function prepare(target: Target, variant: Variant, name: string) {
  if (variant === 'plain') {
    const eventId = await createEvent(target, name, SEATS);
    const body = JSON.stringify({ hold: { event_id: eventId, qty: 1 } });
    return {
      eventId,
      request: { method: 'POST', path: '/holds', headers: { 'content-type': 'application/json' }, body },
    };
  }
  const eventId = await createEvent(target, name, SEATS, CUSTOMER_LIMIT, {
    sale_opens_at: new Date(Date.now() - 60_000).toISOString(),
    queue: { admit_per_minute: 1 },
  });
  const keys = parseAdmissionKeys(SECRET);
  const now = new Date();
  const expiresAt = new Date(now.getTime() + ADMISSION_TTL_SECONDS * 1000);
  const prefix = randomBytes(4).toString('hex');
  const requests: Array<{ body: string; token: string }> = [];
  for (let i = 1; i <= TOKENS_PER_WINDOW; i++) {
    const customer = `c-${prefix}-${i}`;
    requests.push({
      body: JSON.stringify({ hold: { event_id: eventId, qty: 1, customer } }),
      token: signAdmission(keys, { eventId, ticketNo: i, customer, issuedAt: now, expiresAt }),
    });
  }
  let next = 0;
  return {
    eventId,
    request: {
      method: 'POST',
      path: '/holds',
      setupRequest: (request: Record<string, unknown>) => {
        const { body, token } = requests[next++ % requests.length]!;
        return { ...request, body, headers: { 'content-type': 'application/json', 'admission-token': token } };
      },
    },
  };
}

async function drive(port: number, request: Record<string, unknown>, seconds: number): Promise<Window> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNS,
    duration: seconds,
    requests: [request],
  } as Parameters<typeof autocannon>[0]);
  return {
    perSecond: result.requests.average,
    p50: (result.latency as unknown as { p50: number }).p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** The event's books: every seat accounted for, and as many held as autocannon saw granted (at most). */
async function books(target: Target, eventId: number): Promise<string> {
  const { json } = await api<{ total: number; available: number; held: number; booked: number }>(
    target,
    'GET',
    `/events/${eventId}`,
  );
  return json.available + json.held + json.booked === json.total
    ? `ok (${json.held} held)`
    : `BROKEN ${JSON.stringify(json)}`;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const ratios: Record<Variant, number[]> = { plain: [], features: [] };
const rates: Record<Variant | 'ceiling', number[]> = { plain: [], features: [], ceiling: [] };
console.log(
  `autocannon POST /holds, ${CONNS} connections, ${DURATION_SECONDS} s windows after ${WARMUP_SECONDS} s warm-up, ${ROUNDS} rounds; ${provider.description}`,
);
for (let round = 1; round <= ROUNDS; round++) {
  const ceiling = await startChild({
    script: 'bench/ceiling.ts',
    env: {},
    label: `ac-ceiling-r${round}`,
    logDir: LOG_DIR,
  });
  const services = {
    plain: await startService(`ac-plain-r${round}`),
    features: await startService(`ac-features-r${round}`),
  };
  try {
    const targets = {
      plain: { host: '127.0.0.1', port: services.plain.child.port, adminToken: ADMIN_TOKEN, benchRoutes: false },
      features: { host: '127.0.0.1', port: services.features.child.port, adminToken: ADMIN_TOKEN, benchRoutes: false },
    } satisfies Record<Variant, Target>;
    const hook = await api(targets.features, 'POST', '/webhooks', { url: `http://127.0.0.1:${receiverPort}/hook` });
    if (hook.status !== 201) throw new Error(`POST /webhooks answered ${hook.status}: ${JSON.stringify(hook.json)}`);
    const ceilingRequest = {
      method: 'POST',
      path: '/holds',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hold: { event_id: 1, qty: 1 } }),
    };
    // Warm-up: each server's JIT and pool, on events of their own.
    await drive(ceiling.port, ceilingRequest, WARMUP_SECONDS);
    for (const variant of ['plain', 'features'] as const) {
      const warm = await prepare(targets[variant], variant, `warm-up r${round}`);
      await drive(targets[variant].port, warm.request, WARMUP_SECONDS);
    }
    const order: Array<Variant | 'ceiling'> = [
      ['ceiling', 'plain', 'features'],
      ['plain', 'features', 'ceiling'],
      ['features', 'ceiling', 'plain'],
    ][(round - 1) % 3] as Array<Variant | 'ceiling'>;
    const got: Partial<Record<Variant | 'ceiling', Window>> = {};
    for (const which of order) {
      if (which === 'ceiling') {
        got.ceiling = await drive(ceiling.port, ceilingRequest, DURATION_SECONDS);
        continue;
      }
      const hot = await prepare(targets[which], which, `hot r${round}`);
      got[which] = await drive(targets[which].port, hot.request, DURATION_SECONDS);
      // The compiled server's memory, as `npm start` runs it (the bench's own servers run under tsx).
      const memory = readMemory(services[which].child.pid);
      const mb = (kb: number | undefined) => (kb === undefined ? '?' : (kb / 1024).toFixed(0));
      console.log(
        `  r${round} ${which}: books ${await books(targets[which], hot.eventId)}; ` +
          `RSS ${mb(memory?.rssKb)} MB, peak ${mb(memory?.hwmKb)} MB`,
      );
    }
    for (const which of order) {
      const w = got[which]!;
      console.log(
        `  r${round} ${which.padEnd(8)} ${w.perSecond.toFixed(0).padStart(6)} req/s  p50 ${w.p50} ms  p99 ${w.p99} ms  non-2xx ${w.non2xx}  errors ${w.errors}`,
      );
      rates[which].push(w.perSecond);
    }
    for (const variant of ['plain', 'features'] as const)
      ratios[variant].push(got[variant]!.perSecond / got.ceiling!.perSecond);
    console.log(
      `  r${round} plain ${ratios.plain.at(-1)!.toFixed(2)}x, features ${ratios.features.at(-1)!.toFixed(2)}x of the ceiling; features/plain ${(got.features!.perSecond / got.plain!.perSecond).toFixed(2)}x; webhook requests so far ${webhookRequests}`,
    );
  } finally {
    await Promise.all([ceiling.stop(), services.plain.child.stop(), services.features.child.stop()]);
    await Promise.all([services.plain.drop(), services.features.drop()]);
  }
}
const featureCost = ratios.features.map((f, i) => f / ratios.plain[i]!);
console.log(
  `medians of ${ROUNDS} rounds: ceiling ${median(rates.ceiling).toFixed(0)}/s, plain ${median(rates.plain).toFixed(0)}/s (${median(ratios.plain).toFixed(2)}x), features ${median(rates.features).toFixed(0)}/s (${median(ratios.features).toFixed(2)}x); features/plain ${median(featureCost).toFixed(2)}x (same-round ratios)`,
);
receiver.close();
await provider.close();
