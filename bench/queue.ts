// `npm run bench -- --scenario queue`: the waiting room's figures (issue 20, item 7), each
// against its comparison measured in the same round on the same server, since the box is shared
// and noisy and only same-round ratios mean anything:
//   joins    POST /events/:id/queue (unique customers) vs POST /holds (unique customers)
//   status   GET /queue/:ticket vs the ceiling's canned GET /queue/:ticket (bench/ceiling.ts),
//            with the statements the server sent meanwhile (bench/trace.ts) and the database's
//            CPU; then the same pair driven by autocannon
//   tokens   POST /holds with Admission-Token checked (a queued event) vs a plain event, both
//            with unique customers and max_seats_per_customer
//   streams  N open GET /queue/:ticket/stream through admission: the last first message, every
//            stream's admission token, admission-to-receipt latency, the server's RSS
// Paired windows alternate their order by round. Every window is --duration long.
import { connect, type Socket } from 'node:net';
import autocannon from 'autocannon';
import pg from 'pg';
import { type CpuSplit, type DatabaseCpuProbe, cpuWindow } from './cpu.ts';
import { type LoadResult, Samples, httpRequest, runLoad } from './load.ts';
import { type Child, readMemory, watch } from './processes.ts';
import type { ServerStats } from './report.ts';
import { type Target, api, createEvent, runScenario } from './scenarios.ts';
import type { TransactionStats } from './trace.ts';

/** A box-office server the queue bench started, on a fresh PostgreSQL database. */
export interface QueueBox {
  target: Target;
  pid: number;
  databaseUrl: string;
}

export interface QueueBenchContext {
  conns: number;
  durationSeconds: number;
  warmupSeconds: number;
  graceSeconds: number;
  repeat: number;
  streams: number;
  database: DatabaseCpuProbe | null;
  /** Starts this checkout's server on a fresh database; `use` runs while it is up. */
  withBox<T>(label: string, use: (box: QueueBox) => Promise<T>): Promise<T>;
  /** Starts the canned-reply ceiling; `use` runs while it is up. */
  withCeiling<T>(label: string, use: (ceiling: Child) => Promise<T>): Promise<T>;
  /** An Admission-Token as the server's queue would sign it (bench.ts's --features signer). */
  admissionToken: (eventId: number, customer: string) => string;
  quiet(): Promise<number>;
  progress(line: string): void;
}

const SEATS = 1_000_000;
/** Queued events whose admission must not move during a window: one buyer a minute. */
const SLOW_ADMIT_PER_MINUTE = 1;
/** max_seats_per_customer of every event here (a queue requires one): the same check on both sides of each pair. */
const CUSTOMER_LIMIT = 4;
/** Tickets kept from the joins window for the status window's URLs. */
const STATUS_TICKETS = 20_000;
/** How long the streams may take to see admission before the bench gives up on them. */
const STREAMS_ADMISSION_TIMEOUT_MS = 60_000;
/** Streams opened at once (connect and request), so the opening is not one SYN flood. */
const STREAMS_OPEN_CONCURRENCY = 500;

interface Rate {
  perSecond: number;
  /** What the server's database work was in the window (bench/trace.ts), for joins and holds. */
  trace?: TraceSummary;
  ok: number;
  non2xx: Record<string, number>;
  p99Ms: number;
  cpu: CpuSplit;
  /** The measured span on the monotonic clock, `start,end` µs (bench/profile-summary.ts --window). */
  windowUs?: string;
}

interface StatusWindow extends Rate {
  /** Statements the service sent during the window (every one, traced under the store). */
  statements: number;
  statementsByKind: Record<string, number>;
  transactions: number;
}

interface StreamsResult {
  count: number;
  opened: number;
  lastFirstMessageMs: number;
  admitted: number;
  admissionSpanMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  lastTokenAfterResumeMs: number;
  rssBeforeMb: number;
  rssWithStreamsMb: number;
  rssPeakDuringAdmissionMb: number;
  rssAfterMb: number;
  serverCpuSecondsDuringAdmission: number;
}

export interface QueueRound {
  repeat: number;
  busyBefore: number;
  joins: Rate;
  holds: Rate;
  statusCeiling: Rate;
  status: StatusWindow;
  /** GET /healthz on the ceiling and on the server: what any route of the service costs. */
  healthzCeiling: Rate;
  healthz: Rate;
  autocannonCeiling: AutocannonRate;
  autocannon: AutocannonRate;
  holdsWithToken: Rate;
  holdsWithoutToken: Rate;
  streams: StreamsResult | null;
}

interface AutocannonRate {
  perSecond: number;
  non2xx: number;
  errors: number;
  p99Ms: number;
}

interface TraceSummary {
  transactions: number;
  statementsPerTransaction: number;
  transactionMsP50: number;
  transactionMsP99: number;
  autocommitWrites: number;
  /** Requests answered per transaction or autocommitted write: the batch size. */
  requestsPerBatch: number;
}

async function resetTrace(target: Target): Promise<void> {
  await api(target, 'POST', '/__bench/stats/reset');
}

async function readTrace(target: Target, requests: number): Promise<TraceSummary> {
  const t = (await api<TransactionStats>(target, 'GET', '/__bench/stats')).json;
  const batches = t.transactions + t.autocommitWrites;
  return {
    transactions: t.transactions,
    statementsPerTransaction: t.transactions === 0 ? 0 : t.statementsInTransactions / t.transactions,
    transactionMsP50: t.transactionMsP50,
    transactionMsP99: t.transactionMsP99,
    autocommitWrites: t.autocommitWrites,
    requestsPerBatch: batches === 0 ? 0 : requests / batches,
  };
}

const describeTrace = (t: TraceSummary | undefined) =>
  t === undefined
    ? ''
    : ` [${t.transactions} tx of ${t.statementsPerTransaction.toFixed(1)} statements, p50 ${t.transactionMsP50.toFixed(1)} ms ` +
      `p99 ${t.transactionMsP99.toFixed(1)} ms; ${t.autocommitWrites} autocommitted writes; ${t.requestsPerBatch.toFixed(1)} per batch]`;

const mb = (kb: number | undefined) => Math.round((kb ?? 0) / 102.4) / 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rateOf(load: LoadResult, ok: number, cpu: CpuSplit): Rate {
  const non2xx = Object.fromEntries(Object.entries(load.statuses).filter(([code]) => !code.startsWith('2')));
  return { perSecond: ok / (load.elapsedMs / 1000), ok, non2xx, p99Ms: load.latency.p99Ms, cpu };
}

/** An event open for sale with a queue; a queue needs max_seats_per_customer (what one admission may take). */
function queuedEvent(target: Target, name: string, admitPerMinute: number): Promise<number> {
  return createEvent(target, name, SEATS, CUSTOMER_LIMIT, {
    sale_opens_at: new Date(Date.now() - 60_000).toISOString(),
    queue: { admit_per_minute: admitPerMinute },
  });
}

/** Joins `eventId`'s queue with unique customers: closed loop for `durationMs`, or until `count` joins. */
async function joinLoad(
  ctx: QueueBenchContext,
  box: QueueBox,
  eventId: number,
  prefix: string,
  plan: { durationMs: number; count?: number; keep: number },
): Promise<{ rate: Rate; tickets: Array<{ ticket: string; position: number }> }> {
  const { target } = box;
  const host = `${target.host}:${target.port}`;
  let n = 0;
  let ok = 0;
  // Bodies are kept raw and parsed after the window, so the generator spends no CPU on them.
  const bodies: Buffer[] = [];
  await resetTrace(target);
  const cpu = cpuWindow(box.pid, ctx.database);
  const load = await runLoad({
    host: target.host,
    port: target.port,
    connections: ctx.conns,
    durationMs: plan.durationMs,
    graceMs: ctx.graceSeconds * 1000,
    prime: httpRequest('GET', '/healthz', host),
    next: () =>
      plan.count !== undefined && n >= plan.count
        ? null
        : httpRequest('POST', `/events/${eventId}/queue`, host, JSON.stringify({ customer: `${prefix}-${++n}` })),
    onResponse: (status, body) => {
      if (status !== 200) return;
      ok++;
      if (bodies.length < plan.keep) bodies.push(Buffer.from(body));
    },
  });
  const rate = { ...rateOf(load, ok, cpu.stop(ok, 'join')), trace: await readTrace(target, ok) };
  const tickets = bodies.map((body) => {
    const joined = JSON.parse(body.toString()) as { ticket: string; position: number };
    return { ticket: joined.ticket, position: joined.position };
  });
  return { rate, tickets };
}

/** Holds with unique customers on `eventId`, the bench's own scenario; with a token when `token`. */
async function holdLoad(ctx: QueueBenchContext, box: QueueBox, eventId: number, token: boolean): Promise<Rate> {
  let stop: ReturnType<typeof cpuWindow> | undefined;
  let cpu: CpuSplit | undefined;
  let trace: TraceSummary | undefined;
  let windowStartUs = 0;
  let windowUs = '';
  const outcome = await runScenario(
    box.target,
    [{ id: eventId, total: SEATS }],
    {
      scenario: 'holds',
      connections: ctx.conns,
      durationMs: ctx.durationSeconds * 1000,
      graceMs: ctx.graceSeconds * 1000,
      qty: 1,
      uniqueCustomers: true,
      admissionToken: token ? ctx.admissionToken : undefined,
    },
    {
      started: async () => {
        await resetTrace(box.target);
        stop = cpuWindow(box.pid, ctx.database);
        windowStartUs = monotonicUs();
      },
      finished: async (load) => {
        cpu = stop!.stop(load.statuses['201'] ?? 0, 'hold');
        windowUs = `${windowStartUs},${monotonicUs()}`;
        trace = await readTrace(box.target, load.statuses['201'] ?? 0);
      },
    },
  );
  if (!outcome.books.ok) ctx.progress(`  books: ${outcome.books.problems.join('; ')}`);
  return { ...rateOf(outcome.load, outcome.holds, cpu!), trace, windowUs };
}

/** The monotonic clock V8's CPU profiles use, µs. */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** "with/without" of one CPU figure per unit, µs. */
const cpuPair = (a: Rate, b: Rate, key: 'serverUs' | 'databaseUs' | 'loadgenUs'): string =>
  [a, b].map((rate) => rate.cpu[key]?.toFixed(0) ?? '?').join('/');

/** GET each path in turn (round robin), closed loop, at `port`. */
async function getLoad(
  ctx: QueueBenchContext,
  port: number,
  pid: number,
  paths: string[],
  database: DatabaseCpuProbe | null,
): Promise<{ load: LoadResult; ok: number; cpu: CpuSplit }> {
  const host = `127.0.0.1:${port}`;
  const requests = paths.map((path) => httpRequest('GET', path, host));
  let i = 0;
  let ok = 0;
  const cpu = cpuWindow(pid, database);
  const load = await runLoad({
    host: '127.0.0.1',
    port,
    connections: ctx.conns,
    durationMs: ctx.durationSeconds * 1000,
    graceMs: ctx.graceSeconds * 1000,
    prime: httpRequest('GET', '/healthz', host),
    next: () => requests[i++ % requests.length]!,
    onResponse: (status) => {
      if (status === 200) ok++;
    },
  });
  return { load, ok, cpu: cpu.stop(ok, 'request') };
}

async function autocannonRun(ctx: QueueBenchContext, port: number, ticket: string): Promise<AutocannonRate> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/queue/${ticket}`,
    connections: ctx.conns,
    duration: ctx.durationSeconds,
  });
  return {
    perSecond: result.requests.average,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p99Ms: result.latency.p99,
  };
}

/** Runs `a` and `b` in this round's order (a first in odd rounds). */
async function paired<A, B>(repeat: number, a: () => Promise<A>, b: () => Promise<B>): Promise<[A, B]> {
  if (repeat % 2 === 1) {
    const first = await a();
    return [first, await b()];
  }
  const second = await b();
  return [await a(), second];
}

// -- streams -------------------------------------------------------------------------------------

interface Listener {
  socket: Socket;
  position: number;
  buffer: string;
  firstAt: number | null;
  admittedAt: number | null;
}

/** Opens one GET /queue/:ticket/stream; resolves once its first status message came. */
function listen(target: Target, ticket: string, position: number, listeners: Listener[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(target.port, target.host);
    const listener: Listener = { socket, position, buffer: '', firstAt: null, admittedAt: null };
    listeners.push(listener);
    socket.setEncoding('latin1');
    socket.once('error', reject);
    socket.on('connect', () =>
      socket.write(`GET /queue/${ticket}/stream HTTP/1.1\r\nhost: ${target.host}:${target.port}\r\n\r\n`),
    );
    socket.on('data', (chunk: string) => {
      listener.buffer += chunk;
      // Each message is one chunk of the chunked body: `event: status\ndata: {…}\n\n`.
      for (;;) {
        const start = listener.buffer.indexOf('data: ');
        const end = start < 0 ? -1 : listener.buffer.indexOf('\n\n', start);
        if (end < 0) break;
        const status = JSON.parse(listener.buffer.slice(start + 6, end)) as { admission_token: string | null };
        listener.buffer = listener.buffer.slice(end + 2);
        if (listener.firstAt === null) {
          listener.firstAt = Date.now();
          resolve();
        }
        if (status.admission_token !== null && listener.admittedAt === null) listener.admittedAt = Date.now();
      }
    });
  });
}

/**
 * N buyers join a paused queue, each opens its stream; then the queue is resumed and admission
 * runs at a rate that admits them all in about 10 s. Receipt times are compared with the
 * admission steps the database recorded (queue_advances.at, the server's clock, this machine).
 */
async function measureStreams(ctx: QueueBenchContext, box: QueueBox, repeat: number): Promise<StreamsResult> {
  const count = ctx.streams;
  const admitPerMinute = Math.max(60, Math.ceil((count / 10) * 60));
  const eventId = await queuedEvent(box.target, `bench queue streams r${repeat}`, admitPerMinute);
  await api(box.target, 'POST', `/events/${eventId}/queue/pause`);
  const { tickets } = await joinLoad(ctx, box, eventId, `s${repeat}`, { durationMs: 120_000, count, keep: count });
  if (tickets.length !== count) throw new Error(`streams: ${tickets.length} of ${count} joins answered 200`);
  await sleep(1000);
  const rssBefore = readMemory(box.pid);
  const listeners: Listener[] = [];
  const openedAt = Date.now();
  for (let i = 0; i < tickets.length; i += STREAMS_OPEN_CONCURRENCY) {
    await Promise.all(
      tickets.slice(i, i + STREAMS_OPEN_CONCURRENCY).map((t) => listen(box.target, t.ticket, t.position, listeners)),
    );
  }
  const lastFirstMessageMs = Math.max(...listeners.map((l) => l.firstAt!)) - openedAt;
  await sleep(1000);
  const rssWith = readMemory(box.pid);
  const watching = watch(box.pid);
  const resumedAt = Date.now();
  await api(box.target, 'POST', `/events/${eventId}/queue/resume`);
  const until = resumedAt + STREAMS_ADMISSION_TIMEOUT_MS;
  while (Date.now() < until && listeners.some((l) => l.admittedAt === null)) await sleep(200);
  const usage = watching.stop();
  const steps = await advancesOf(box.databaseUrl, eventId);
  const latency = new Samples();
  for (const l of listeners) {
    if (l.admittedAt === null) continue;
    const step = steps.find((s) => s.through >= l.position);
    if (step !== undefined) latency.push(l.admittedAt - step.at);
  }
  for (const l of listeners) l.socket.destroy();
  await sleep(3000);
  const rssAfter = readMemory(box.pid);
  const admitted = listeners.filter((l) => l.admittedAt !== null);
  const summary = latency.summary();
  return {
    count,
    opened: listeners.filter((l) => l.firstAt !== null).length,
    lastFirstMessageMs,
    admitted: admitted.length,
    admissionSpanMs: steps.length === 0 ? 0 : steps.at(-1)!.at - steps[0]!.at,
    latencyP50Ms: summary.p50Ms,
    latencyP99Ms: summary.p99Ms,
    latencyMaxMs: summary.maxMs,
    lastTokenAfterResumeMs: Math.max(0, ...admitted.map((l) => l.admittedAt!)) - resumedAt,
    rssBeforeMb: mb(rssBefore?.rssKb),
    rssWithStreamsMb: mb(rssWith?.rssKb),
    rssPeakDuringAdmissionMb: mb(usage.peakRssKb),
    rssAfterMb: mb(rssAfter?.rssKb),
    serverCpuSecondsDuringAdmission: usage.serverCpuMs / 1000,
  };
}

async function advancesOf(databaseUrl: string, eventId: number): Promise<Array<{ through: number; at: number }>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ through: string; at: Date }>(
      'select through, at from queue_advances where event_id = $1 order by through',
      [eventId],
    );
    return rows.map((row) => ({ through: Number(row.through), at: row.at.getTime() }));
  } finally {
    await client.end();
  }
}

// -- a round ---------------------------------------------------------------------------------------

async function measureRound(ctx: QueueBenchContext, repeat: number): Promise<QueueRound> {
  const durationMs = ctx.durationSeconds * 1000;
  return ctx.withCeiling(`ceiling-queue-r${repeat}`, (ceiling) =>
    ctx.withBox(`postgres-queue-r${repeat}`, async (box) => {
      const { target } = box;
      const stats = async () => (await api<ServerStats>(target, 'GET', '/__bench/stats')).json;
      if (ctx.warmupSeconds > 0) {
        const warmJoin = await queuedEvent(target, 'bench warm-up queue', SLOW_ADMIT_PER_MINUTE);
        await joinLoad(ctx, box, warmJoin, 'w', { durationMs: ctx.warmupSeconds * 1000, keep: 0 });
        const warmHold = await createEvent(target, 'bench warm-up', SEATS, CUSTOMER_LIMIT);
        await runScenario(target, [{ id: warmHold, total: SEATS }], {
          scenario: 'holds',
          connections: ctx.conns,
          durationMs: ctx.warmupSeconds * 1000,
          graceMs: ctx.graceSeconds * 1000,
          qty: 1,
          uniqueCustomers: true,
        });
      }
      const busyBefore = await ctx.quiet();
      const joinEvent = await queuedEvent(target, `bench hot queue r${repeat}`, SLOW_ADMIT_PER_MINUTE);
      const holdEvent = await createEvent(target, `bench hot event r${repeat}`, SEATS, CUSTOMER_LIMIT);
      let tickets: string[] = [];
      const [joins, holds] = await paired(
        repeat,
        async () => {
          const joined = await joinLoad(ctx, box, joinEvent, `j${repeat}`, { durationMs, keep: STATUS_TICKETS });
          tickets = joined.tickets.map((t) => t.ticket);
          return joined.rate;
        },
        () => holdLoad(ctx, box, holdEvent, false),
      );
      ctx.progress(`  joins ${joins.perSecond.toFixed(0)}/s${describeTrace(joins.trace)}`);
      ctx.progress(`  holds ${holds.perSecond.toFixed(0)}/s${describeTrace(holds.trace)}`);

      // The ceiling gets tickets of the same length, so the URLs are the same shape and size.
      await ctx.quiet();
      const paths = tickets.map((ticket) => `/queue/${ticket}`);
      const [statusCeiling, status] = await paired(
        repeat,
        async () => {
          const run = await getLoad(ctx, ceiling.port, ceiling.pid, paths, null);
          return rateOf(run.load, run.ok, run.cpu);
        },
        async () => {
          await api(target, 'POST', '/__bench/stats/reset');
          const run = await getLoad(ctx, target.port, box.pid, paths, ctx.database);
          const traced = await stats();
          const byKind = Object.fromEntries(Object.entries(traced.statements).map(([sql, s]) => [sql, s.count]));
          return {
            ...rateOf(run.load, run.ok, run.cpu),
            statements: Object.values(byKind).reduce((a, b) => a + b, 0),
            statementsByKind: byKind,
            transactions: traced.transactions,
          };
        },
      );
      ctx.progress(
        `  GET /queue/:ticket ${status.perSecond.toFixed(0)}/s vs ceiling ${statusCeiling.perSecond.toFixed(0)}/s ` +
          `(${(status.perSecond / statusCeiling.perSecond).toFixed(2)}x); ${status.statements} statements for ` +
          `${status.ok} requests; database ${status.cpu.databaseSeconds?.toFixed(2) ?? '?'} CPU-s`,
      );
      // The service's floor: GET /healthz (no database, no schema work to speak of) against the
      // ceiling's, so that what every route pays (hooks, headers, access log) is told apart from
      // what GET /queue/:ticket adds.
      const [healthzCeiling, healthz] = await paired(
        repeat,
        async () => {
          const run = await getLoad(ctx, ceiling.port, ceiling.pid, ['/healthz'], null);
          return rateOf(run.load, run.ok, run.cpu);
        },
        async () => {
          const run = await getLoad(ctx, target.port, box.pid, ['/healthz'], ctx.database);
          return rateOf(run.load, run.ok, run.cpu);
        },
      );
      ctx.progress(
        `  GET /healthz ${healthz.perSecond.toFixed(0)}/s vs ceiling ${healthzCeiling.perSecond.toFixed(0)}/s ` +
          `(${(healthz.perSecond / healthzCeiling.perSecond).toFixed(2)}x)`,
      );
      await ctx.quiet();
      const [autocannonCeiling, autocannonBox] = await paired(
        repeat,
        () => autocannonRun(ctx, ceiling.port, tickets[0]!),
        () => autocannonRun(ctx, target.port, tickets[0]!),
      );
      ctx.progress(
        `  autocannon GET /queue/:ticket ${autocannonBox.perSecond.toFixed(0)}/s vs ceiling ` +
          `${autocannonCeiling.perSecond.toFixed(0)}/s (${(autocannonBox.perSecond / autocannonCeiling.perSecond).toFixed(2)}x)`,
      );

      await ctx.quiet();
      const tokenEvent = await queuedEvent(target, `bench tokens r${repeat}`, SLOW_ADMIT_PER_MINUTE);
      const plainEvent = await createEvent(target, `bench no tokens r${repeat}`, SEATS, CUSTOMER_LIMIT);
      const [holdsWithToken, holdsWithoutToken] = await paired(
        repeat,
        () => holdLoad(ctx, box, tokenEvent, true),
        () => holdLoad(ctx, box, plainEvent, false),
      );
      ctx.progress(`    with token${describeTrace(holdsWithToken.trace)}; window ${holdsWithToken.windowUs}`);
      ctx.progress(`    without${describeTrace(holdsWithoutToken.trace)}; window ${holdsWithoutToken.windowUs}`);
      ctx.progress(
        `  holds with Admission-Token ${holdsWithToken.perSecond.toFixed(0)}/s, without ` +
          `${holdsWithoutToken.perSecond.toFixed(0)}/s (${(holdsWithToken.perSecond / holdsWithoutToken.perSecond).toFixed(2)}x); ` +
          `CPU µs per hold with/without: server ${cpuPair(holdsWithToken, holdsWithoutToken, 'serverUs')}, ` +
          `database ${cpuPair(holdsWithToken, holdsWithoutToken, 'databaseUs')}, ` +
          `generator ${cpuPair(holdsWithToken, holdsWithoutToken, 'loadgenUs')}`,
      );

      let streams: StreamsResult | null = null;
      if (ctx.streams > 0) {
        await ctx.quiet();
        streams = await measureStreams(ctx, box, repeat);
        ctx.progress(
          `  ${streams.count} queue streams: last first message after ${streams.lastFirstMessageMs} ms; ` +
            `${streams.admitted}/${streams.count} saw their token; admission to receipt p50 ` +
            `${streams.latencyP50Ms} ms, p99 ${streams.latencyP99Ms} ms, max ${streams.latencyMaxMs} ms; RSS ` +
            `${streams.rssBeforeMb} MB before, ${streams.rssWithStreamsMb} MB with the streams, ` +
            `${streams.rssPeakDuringAdmissionMb} MB peak during admission, ${streams.rssAfterMb} MB after`,
        );
      }
      return {
        repeat,
        busyBefore,
        joins,
        holds,
        statusCeiling,
        status,
        healthzCeiling,
        healthz,
        autocannonCeiling,
        autocannon: autocannonBox,
        holdsWithToken,
        holdsWithoutToken,
        streams,
      };
    }),
  );
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export interface QueueSummary {
  rounds: number;
  joinsPerHold: number;
  statusOfCeiling: number;
  autocannonStatusOfCeiling: number;
  tokenHoldsOfPlain: number;
  statementsPerStatusRequest: number;
  healthzOfCeiling: number;
  statusOfHealthz: number;
}

export function summarizeQueue(rounds: QueueRound[]): QueueSummary {
  const ratio = (f: (r: QueueRound) => number) => median(rounds.map(f));
  return {
    rounds: rounds.length,
    joinsPerHold: ratio((r) => r.joins.perSecond / r.holds.perSecond),
    statusOfCeiling: ratio((r) => r.status.perSecond / r.statusCeiling.perSecond),
    autocannonStatusOfCeiling: ratio((r) => r.autocannon.perSecond / r.autocannonCeiling.perSecond),
    tokenHoldsOfPlain: ratio((r) => r.holdsWithToken.perSecond / r.holdsWithoutToken.perSecond),
    statementsPerStatusRequest: ratio((r) => r.status.statements / Math.max(1, r.status.ok)),
    healthzOfCeiling: ratio((r) => r.healthz.perSecond / r.healthzCeiling.perSecond),
    statusOfHealthz: ratio((r) => r.status.perSecond / r.healthz.perSecond),
  };
}

export function formatQueue(rounds: QueueRound[]): string {
  const s = summarizeQueue(rounds);
  const med = (f: (r: QueueRound) => number) => median(rounds.map(f)).toFixed(0);
  const lines = [
    `Admission (issue 20): ${s.rounds} round(s); medians of per-round figures, ratios are medians of same-round ratios`,
    `  joins/s ${med((r) => r.joins.perSecond)} vs holds/s ${med((r) => r.holds.perSecond)}: ` +
      `${s.joinsPerHold.toFixed(2)}x (target >= 1.0x)`,
    `  GET /queue/:ticket ${med((r) => r.status.perSecond)}/s vs ceiling ${med((r) => r.statusCeiling.perSecond)}/s: ` +
      `${s.statusOfCeiling.toFixed(2)}x (target >= 0.8x); statements per request ${s.statementsPerStatusRequest.toExponential(1)}` +
      ` (${rounds.map((r) => `${r.status.statements}/${r.status.ok}`).join(', ')})`,
    `  GET /healthz ${med((r) => r.healthz.perSecond)}/s vs ceiling ${med((r) => r.healthzCeiling.perSecond)}/s: ` +
      `${s.healthzOfCeiling.toFixed(2)}x (every route's floor); GET /queue/:ticket vs the server's GET /healthz: ` +
      `${s.statusOfHealthz.toFixed(2)}x; database CPU-s in the status windows: ` +
      rounds.map((r) => r.status.cpu.databaseSeconds?.toFixed(2) ?? '?').join(', '),
    `  autocannon GET /queue/:ticket ${med((r) => r.autocannon.perSecond)}/s vs ceiling ` +
      `${med((r) => r.autocannonCeiling.perSecond)}/s: ${s.autocannonStatusOfCeiling.toFixed(2)}x`,
    `  holds/s with Admission-Token ${med((r) => r.holdsWithToken.perSecond)} vs without ` +
      `${med((r) => r.holdsWithoutToken.perSecond)}: ${s.tokenHoldsOfPlain.toFixed(2)}x (target >= 0.9x)`,
  ];
  for (const r of rounds) {
    if (r.streams === null) continue;
    const t = r.streams;
    lines.push(
      `  round ${r.repeat}: ${t.count} streams, ${t.opened} with a first message, the last after ${t.lastFirstMessageMs} ms; ` +
        `${t.admitted} saw their admission token (admission took ${t.admissionSpanMs} ms, the last token ` +
        `${t.lastTokenAfterResumeMs} ms after resume); admission to receipt p50 ${t.latencyP50Ms} ms, p99 ` +
        `${t.latencyP99Ms} ms, max ${t.latencyMaxMs} ms; server RSS ${t.rssBeforeMb} MB before, ${t.rssWithStreamsMb} MB ` +
        `open, ${t.rssPeakDuringAdmissionMb} MB peak while admitting, ${t.rssAfterMb} MB after`,
    );
  }
  return lines.join('\n');
}

export async function runQueueBench(ctx: QueueBenchContext): Promise<QueueRound[]> {
  const rounds: QueueRound[] = [];
  for (let repeat = 1; repeat <= ctx.repeat; repeat++) {
    ctx.progress(`[queue, ${ctx.conns} conns, run ${repeat}/${ctx.repeat}]`);
    rounds.push(await measureRound(ctx, repeat));
  }
  return rounds;
}
