// Turns measurements into the printed tables and the JSON summary: medians over repeats, and
// ratios taken within each repeat (same run, same machine state) before their median is taken.
// Closed-loop runs (N connections, throughput) and open-loop runs (a fixed arrival rate,
// latency) are summarised apart; with several trees (--tree, --compare) each metric is also
// printed side by side, with the median of the same-round ratios against the first tree.
import type { CpuSplit } from './cpu.ts';
import type { BooksCheck } from './scenarios.ts';
import type { StreamsOpened, StreamsSettled } from './streams.ts';

export interface Measurement {
  /**
   * 'ceiling', a hold strategy, or 'url' for a server the bench did not start; with several
   * trees, `strategy@tree` (the tree is also in `tree`).
   */
  target: string;
  /** The strategy (or 'ceiling', 'url') without the tree. */
  strategy: string;
  /** The tree's label when trees are compared, else null. */
  tree: string | null;
  /** closed: `conns` connections, one request in flight on each; open: a fixed arrival rate. */
  mode: 'closed' | 'open';
  /** The --open-loop rate as given ('0.5x', '4000'), for open-loop runs. */
  rate: string | null;
  conns: number;
  repeat: number;
  elapsedSeconds: number;
  holdsPerSecond: number;
  bookingsPerSecond: number;
  requestsPerSecond: number;
  holds: number;
  refused: number;
  bookings: number;
  snapshots: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  latencyByKind: Record<string, { p50Ms: number; p99Ms: number; count: number }>;
  non2xx: Record<string, number>;
  errors: Record<string, number>;
  unknownOutcome: number;
  /** Peak server RSS sampled during the measured window, and its lifetime peak (VmHWM). */
  rssPeakMb: number | null;
  rssHwmMb: number | null;
  serverCpuCores: number | null;
  loadgenCpuCores: number;
  machineBusy: number;
  /** How busy the shared machine was in the second before this measurement's server started. */
  machineBusyBefore: number;
  books: BooksCheck | null;
  /** From a bench server during the measured window. */
  serverStats: ServerStats | null;
  /** CPU-seconds of the generator, the server, the database and the rest of the box in the window. */
  cpu: CpuSplit | null;
  /** Open-loop details, for open-loop runs. */
  openLoop: OpenLoopStats | null;
  /** The measured window on the monotonic clock (µs), which V8 CPU profiles also use. */
  window: { startUs: number; endUs: number };
  /** With --streams, in the window that had them open: what the listeners saw. */
  streams: ({ count: number; scope: string } & StreamsOpened & Partial<StreamsSettled>) | null;
  /** With --cpu-prof: the server's top self time in the window. */
  profile: { dir: string; busyMs: number; top: Array<{ name: string; ms: number; share: number }> } | null;
}

export interface OpenLoopStats {
  offeredRate: number;
  achievedRate: number;
  /** The ceiling's closed-loop throughput the x rate was taken from (same round), or null. */
  ceilingRate: number | null;
  scheduled: number;
  skipped: number;
  unsent: number;
  /** Latency from the moment the request was written (not its intended time). */
  serviceP50Ms: number;
  serviceP99Ms: number;
  /** Written minus intended send time. */
  sendLagP99Ms: number;
  sendLagMaxMs: number;
  connectionsPeak: number;
  waitedForConnection: number;
  maxBacklog: number;
}

export interface ServerStats {
  holdBatches: number;
  holdBatchRequests: number;
  transactions: number;
  transactionMsTotal: number;
  transactionMsMax: number;
  gapMsTotal: number;
  /** Absent in servers from trees whose bench/trace.ts predates them. */
  statementsInTransactions?: number;
  transactionMsP50?: number;
  transactionMsP99?: number;
  autocommitWrites?: number;
  autocommitWriteMsTotal?: number;
  autocommitWriteMsP50?: number;
  autocommitWriteMsP99?: number;
  statements: Record<string, { count: number; msTotal: number }>;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

export interface SummaryRow {
  conns: number;
  target: string;
  strategy: string;
  tree: string | null;
  runs: number;
  holdsPerSecond: number;
  bookingsPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  rssPeakMb: number | null;
  booksOk: boolean;
  /** Medians of CPU µs per unit of work (hold, booking or request) in the window. */
  serverUs: number | null;
  databaseUs: number | null;
  loadgenUs: number | null;
  otherUs: number | null;
  /** Median over repeats of this target's headline figure divided by the other's, same repeat. */
  ratios: Record<string, number>;
}

export interface OpenLoopRow {
  conns: number;
  rate: string;
  target: string;
  strategy: string;
  tree: string | null;
  runs: number;
  offeredRate: number;
  achievedRate: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Summed over the runs: non-2xx answers, socket errors, unknown outcomes, never sent. */
  failed: number;
  rssPeakMb: number | null;
  booksOk: boolean;
  serverUs: number | null;
  /** Median over repeats of this target's p99 divided by the other's, same repeat. */
  p99Ratios: Record<string, number>;
}

export const median = (values: number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

export const headline = (m: Measurement, scenario: string): number =>
  scenario === 'bookings' ? m.bookingsPerSecond : scenario === 'mixed' ? m.requestsPerSecond : m.holdsPerSecond;

const medianOrNull = (values: Array<number | null | undefined>): number | null => {
  const known = values.filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v));
  return known.length > 0 ? median(known) : null;
};

const sumCounts = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Median over repeats of f(m) / f(theirs), pairing runs of the same repeat. */
function sameRunRatio(
  mine: Measurement[],
  theirs: Measurement[],
  f: (m: Measurement) => number | null | undefined,
): number | null {
  const perRepeat = mine.flatMap((m) => {
    const other = theirs.find((o) => o.repeat === m.repeat);
    const a = f(m);
    const b = other === undefined ? null : f(other);
    return a === null || a === undefined || b === null || b === undefined || b === 0 ? [] : [a / b];
  });
  return perRepeat.length > 0 ? median(perRepeat) : null;
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

export function summarize(measurements: Measurement[], scenario: string): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const closed = measurements.filter((m) => m.mode !== 'open');
  for (const cell of groupBy(closed, (m) => String(m.conns)).values()) {
    const targets = [...new Set(cell.map((m) => m.target))];
    for (const target of targets) {
      const mine = cell.filter((m) => m.target === target);
      const ratios: Record<string, number> = {};
      for (const other of targets.filter((t) => t !== target)) {
        const ratio = sameRunRatio(
          mine,
          cell.filter((o) => o.target === other),
          (m) => headline(m, scenario),
        );
        if (ratio !== null) ratios[other] = ratio;
      }
      const rss = mine.map((m) => m.rssPeakMb).filter((v): v is number => v !== null);
      rows.push({
        conns: mine[0]!.conns,
        target,
        strategy: mine[0]!.strategy,
        tree: mine[0]!.tree,
        runs: mine.length,
        holdsPerSecond: median(mine.map((m) => m.holdsPerSecond)),
        bookingsPerSecond: median(mine.map((m) => m.bookingsPerSecond)),
        requestsPerSecond: median(mine.map((m) => m.requestsPerSecond)),
        p50Ms: median(mine.map((m) => m.p50Ms)),
        p99Ms: median(mine.map((m) => m.p99Ms)),
        p999Ms: median(mine.map((m) => m.p999Ms)),
        rssPeakMb: rss.length > 0 ? Math.max(...rss) : null,
        booksOk: mine.every((m) => m.books === null || m.books.ok),
        serverUs: medianOrNull(mine.map((m) => m.cpu?.serverUs)),
        databaseUs: medianOrNull(mine.map((m) => m.cpu?.databaseUs)),
        loadgenUs: medianOrNull(mine.map((m) => m.cpu?.loadgenUs)),
        otherUs: medianOrNull(mine.map((m) => m.cpu?.otherUs)),
        ratios,
      });
    }
  }
  return rows;
}

export function summarizeOpenLoop(measurements: Measurement[]): OpenLoopRow[] {
  const rows: OpenLoopRow[] = [];
  const open = measurements.filter((m) => m.mode === 'open');
  for (const cell of groupBy(open, (m) => `${m.conns}/${m.rate}`).values()) {
    const targets = [...new Set(cell.map((m) => m.target))];
    for (const target of targets) {
      const mine = cell.filter((m) => m.target === target);
      const p99Ratios: Record<string, number> = {};
      for (const other of targets.filter((t) => t !== target)) {
        const ratio = sameRunRatio(
          mine,
          cell.filter((o) => o.target === other),
          (m) => m.p99Ms,
        );
        if (ratio !== null) p99Ratios[other] = ratio;
      }
      const rss = mine.map((m) => m.rssPeakMb).filter((v): v is number => v !== null);
      rows.push({
        conns: mine[0]!.conns,
        rate: mine[0]!.rate ?? '?',
        target,
        strategy: mine[0]!.strategy,
        tree: mine[0]!.tree,
        runs: mine.length,
        offeredRate: median(mine.map((m) => m.openLoop?.offeredRate ?? Number.NaN)),
        achievedRate: median(mine.map((m) => m.openLoop?.achievedRate ?? Number.NaN)),
        p50Ms: median(mine.map((m) => m.p50Ms)),
        p99Ms: median(mine.map((m) => m.p99Ms)),
        p999Ms: median(mine.map((m) => m.p999Ms)),
        maxMs: median(mine.map((m) => m.maxMs)),
        failed: mine.reduce(
          (n, m) => n + sumCounts(m.non2xx) + sumCounts(m.errors) + m.unknownOutcome + (m.openLoop?.unsent ?? 0),
          0,
        ),
        rssPeakMb: rss.length > 0 ? Math.max(...rss) : null,
        booksOk: mine.every((m) => m.books === null || m.books.ok),
        serverUs: medianOrNull(mine.map((m) => m.cpu?.serverUs)),
        p99Ratios,
      });
    }
  }
  return rows;
}

const num = (value: number | null | undefined, digits = 0) =>
  value !== null && value !== undefined && Number.isFinite(value)
    ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '-';

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

const codes = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([code, n]) => `${code}:${n}`)
    .join(' ') || '-';

const INDENT = '           ';

function serverLine(stats: ServerStats | null): string {
  if (stats === null) return '';
  const batches = stats.holdBatches;
  const batch = batches > 0 ? `${num(stats.holdBatchRequests / batches, 1)} holds/batch, ` : '';
  const n = stats.transactions;
  const trips =
    stats.statementsInTransactions !== undefined && n > 0
      ? `${num(stats.statementsInTransactions / n, 1)} statements/tx + BEGIN/COMMIT, `
      : '';
  const spread =
    stats.transactionMsP99 !== undefined && n > 0
      ? ` (p50 ${num(stats.transactionMsP50, 1)}, p99 ${num(stats.transactionMsP99, 1)},`
      : ' (';
  const tx =
    n > 0
      ? `${num(n)} tx, ${num(stats.transactionMsTotal / n, 2)} ms mean${spread} ${num(stats.gapMsTotal / n, 2)} between statements), ` +
        `${num(stats.transactionMsMax, 1)} max, ${trips}`
      : '';
  const w = stats.autocommitWrites ?? 0;
  const writes =
    w > 0
      ? `${num(w)} autocommitted writes, ${num(stats.autocommitWriteMsTotal! / w, 2)} ms mean (p50 ${num(stats.autocommitWriteMsP50, 1)}, ` +
        `p99 ${num(stats.autocommitWriteMsP99, 1)}), `
      : '';
  // Every statement the server sent in the window (BEGIN and COMMIT counted) per hold batch.
  const statements = Object.values(stats.statements).reduce((total, s) => total + s.count, 0);
  const perBatch = batches > 0 && statements > 0 ? `${num((statements + 2 * n) / batches, 1)} round trips/batch, ` : '';
  const top = Object.entries(stats.statements)
    .sort((a, b) => b[1].msTotal - a[1].msTotal)
    .slice(0, 6)
    .map(
      ([sql, s]) => `\n${INDENT}  ${num(s.msTotal / s.count, 2).padStart(7)} ms x ${num(s.count).padStart(6)}  ${sql}`,
    )
    .join('');
  return (
    `\n${INDENT}server: ${batch}${perBatch}${tx}${writes}` +
    `event-loop delay p50 ${num(stats.eventLoopDelayMs.p50, 1)} ms p99 ${num(stats.eventLoopDelayMs.p99, 1)} ms${top}`
  );
}

function cpuLine(cpu: CpuSplit | null): string {
  if (cpu === null) return '';
  const part = (name: string, seconds: number | null, us: number | null, extra = '') =>
    seconds === null ? `${name} -` : `${name} ${num(seconds, 2)} s (${num(us, 0)} µs)${extra}`;
  const db =
    cpu.databaseSeconds === null
      ? 'db - (in the server, or not on this machine)'
      : part('db', cpu.databaseSeconds, cpu.databaseUs, ` [${cpu.databaseProcesses} processes]`);
  return (
    `\n${INDENT}cpu over ${num(cpu.windowSeconds, 1)} s, CPU-seconds (µs per ${cpu.unit}, ${num(cpu.units)} ${cpu.unit}s): ` +
    `${part('server', cpu.serverSeconds, cpu.serverUs)}, ${db}, ${part('generator', cpu.loadgenSeconds, cpu.loadgenUs)}, ` +
    `${part('rest of box', cpu.otherSeconds, cpu.otherUs)}; box busy ${num(cpu.machineSeconds, 2)} s`
  );
}

function openLine(m: Measurement): string {
  const o = m.openLoop;
  if (o === null) return '';
  const pool =
    o.waitedForConnection > 0
      ? `; ${num(o.waitedForConnection)} waited for a connection (backlog up to ${num(o.maxBacklog)})`
      : '';
  const unsent = o.unsent > 0 ? `; ${num(o.unsent)} NEVER SENT` : '';
  return (
    `\n${INDENT}open loop ${m.rate}${o.ceilingRate === null ? '' : ` of ceiling ${num(o.ceilingRate)}/s`}: offered ${num(o.offeredRate)}/s, ` +
    `achieved ${num(o.achievedRate)}/s; from intended send p50 ${num(m.p50Ms, 1)} p99 ${num(m.p99Ms, 1)} ` +
    `p99.9 ${num(m.p999Ms, 1)} max ${num(m.maxMs, 1)} ms; from the write p50 ${num(o.serviceP50Ms, 1)} p99 ${num(o.serviceP99Ms, 1)} ms; ` +
    `send lag p99 ${num(o.sendLagP99Ms, 1)} max ${num(o.sendLagMaxMs, 1)} ms; ${num(o.connectionsPeak)} conns${pool}${unsent}`
  );
}

function profileLine(m: Measurement): string {
  if (m.profile === null) return '';
  const top = m.profile.top
    .slice(0, 10)
    .map((e) => `${e.name} ${num(e.share * 100, 1)}%`)
    .join(', ');
  return `\n${INDENT}profile (${num(m.profile.busyMs)} ms busy in the window): ${top}\n${INDENT}  ${m.profile.dir}`;
}

function streamsLine(m: Measurement): string {
  const s = m.streams;
  if (s === null) return '';
  const ms = (v: number | null | undefined) => (v === null || v === undefined ? 'never' : `${num(v)} ms`);
  return (
    `\n${INDENT}streams: ${s.count} on ${s.scope}, ${s.open} open, ${s.failed} failed${s.failed > 0 ? ` ${codes(s.failures)}` : ''}; last first snapshot ${ms(s.lastFirstMs)}` +
    `${s.withoutFirst > 0 ? ` (${s.withoutFirst} without one)` : ''}; ${num(s.messagesPerStreamPerSecond, 1)} availability msg/s each; ` +
    `all show the final availability ${ms(s.settledMs)} after the load${s.unsettled ? ` (${s.unsettled} never did)` : ''}; ` +
    `the listeners' process ${num(s.clientCpuCores, 2)} cores`
  );
}

/** One line per measurement (and detail lines under it), printed as it finishes. */
export function formatMeasurement(m: Measurement): string {
  const books =
    m.books === null
      ? 'n/a'
      : m.books.ok
        ? m.books.exact
          ? 'ok'
          : 'ok (bounds)'
        : `FAIL ${m.books.problems.join('; ')}`;
  const name = m.mode === 'open' ? `${m.target} @${m.rate}` : m.target;
  return (
    `  ${name.padEnd(8)} ${num(m.holdsPerSecond).padStart(7)} holds/s  ${num(m.bookingsPerSecond).padStart(6)} books/s  ` +
    `${num(m.requestsPerSecond).padStart(7)} req/s  p50 ${num(m.p50Ms, 1)} ms  p99 ${num(m.p99Ms, 1)} ms  p99.9 ${num(m.p999Ms, 1)} ms  ` +
    `non-2xx ${codes(m.non2xx)}  errors ${codes(m.errors)}  rss ${m.rssPeakMb === null ? '-' : num(m.rssPeakMb)} MB  ` +
    `cpu srv ${m.serverCpuCores === null ? '-' : num(m.serverCpuCores, 2)} gen ${num(m.loadgenCpuCores, 2)} box ${num(m.machineBusy * 100)}% ` +
    `(idle box before: ${num(m.machineBusyBefore * 100)}% busy)  ` +
    `books ${books}` +
    openLine(m) +
    streamsLine(m) +
    cpuLine(m.cpu) +
    serverLine(m.serverStats) +
    profileLine(m)
  );
}

const isService = (r: { strategy: string }) => r.strategy === 'batched' || r.strategy === 'url';

function closedSection(rows: SummaryRow[], scenario: string, repeat: number): string[] {
  const out: string[] = [];
  for (const mine of groupBy(rows, (r) => String(r.conns)).values()) {
    const { conns } = mine[0]!;
    out.push(
      `\n${conns} connections` +
        (repeat > 1 ? ` (medians of ${repeat} runs; ratios are medians of same-run ratios)` : ''),
    );
    out.push(
      table(
        [
          'target',
          'holds/s',
          'books/s',
          'req/s',
          'p50 ms',
          'p99 ms',
          'p99.9 ms',
          'rss MB',
          'srv µs',
          'db µs',
          'gen µs',
          'other µs',
          'books',
        ],
        mine.map((r) => [
          r.target,
          num(r.holdsPerSecond),
          num(r.bookingsPerSecond),
          num(r.requestsPerSecond),
          num(r.p50Ms, 1),
          num(r.p99Ms, 1),
          num(r.p999Ms, 1),
          r.rssPeakMb === null ? '-' : num(r.rssPeakMb),
          num(r.serverUs),
          num(r.databaseUs),
          num(r.loadgenUs),
          num(r.otherUs),
          r.booksOk ? 'ok' : 'FAIL',
        ]),
      ),
    );
    out.push('(µs columns: CPU per hold, booking or request in the measured window, by process)');
    const ceiling = mine.find((r) => r.strategy === 'ceiling');
    for (const main of mine.filter(isService)) {
      const parts = Object.entries(main.ratios)
        .filter(([other]) => other === 'ceiling' || main.tree === null || other.endsWith(`@${main.tree}`))
        .map(([other, ratio]) =>
          other === 'ceiling' ? `${num(ratio, 2)}x of the ceiling` : `${num(ratio, 2)}x ${other}`,
        );
      if (ceiling?.serverUs !== null && ceiling?.serverUs !== undefined && main.serverUs !== null)
        parts.push(
          `server CPU ${num(main.serverUs)} µs per unit vs the ceiling's ${num(ceiling.serverUs)} µs per request (${num(main.serverUs / ceiling.serverUs, 1)}x)`,
        );
      if (parts.length > 0) out.push(`${main.target} (${scenario}): ${parts.join(', ')}`);
    }
  }
  return out;
}

function openSection(rows: OpenLoopRow[], repeat: number): string[] {
  if (rows.length === 0) return [];
  const out: string[] = [];
  for (const cell of groupBy(rows, (r) => String(r.conns)).values()) {
    // Each target's latency curve together, by offered rate.
    const order = [...new Set(cell.map((r) => r.target))];
    const mine = [...cell].sort(
      (a, b) => order.indexOf(a.target) - order.indexOf(b.target) || a.offeredRate - b.offeredRate,
    );
    out.push(
      `\nOpen loop (latency from the intended send time), ${mine[0]!.conns} connections to start with` +
        (repeat > 1 ? ` (medians of ${repeat} runs)` : ''),
    );
    out.push(
      table(
        [
          'target',
          'rate',
          'offered/s',
          'achieved/s',
          'p50 ms',
          'p99 ms',
          'p99.9 ms',
          'max ms',
          'failed',
          'rss MB',
          'srv µs',
          'books',
        ],
        mine.map((r) => [
          r.target,
          r.rate,
          num(r.offeredRate),
          num(r.achievedRate),
          num(r.p50Ms, 1),
          num(r.p99Ms, 1),
          num(r.p999Ms, 1),
          num(r.maxMs, 1),
          num(r.failed),
          r.rssPeakMb === null ? '-' : num(r.rssPeakMb),
          num(r.serverUs),
          r.booksOk ? 'ok' : 'FAIL',
        ]),
      ),
    );
  }
  return out;
}

interface Metric {
  name: string;
  digits: number;
  value: (m: Measurement) => number | null | undefined;
}

/** Each tree side by side: medians, and the median of same-round ratios against the first tree. */
function abSection(measurements: Measurement[], trees: string[], scenario: string): string[] {
  const out: string[] = [];
  const unit = scenario === 'bookings' ? 'bookings/s' : scenario === 'mixed' ? 'requests/s' : 'holds/s';
  const closedMetrics: Metric[] = [
    { name: unit, digits: 0, value: (m) => headline(m, scenario) },
    { name: 'p50 ms', digits: 1, value: (m) => m.p50Ms },
    { name: 'p99 ms', digits: 1, value: (m) => m.p99Ms },
    { name: 'p99.9 ms', digits: 1, value: (m) => m.p999Ms },
    { name: 'server µs/unit', digits: 0, value: (m) => m.cpu?.serverUs },
    { name: 'db µs/unit', digits: 0, value: (m) => m.cpu?.databaseUs },
    { name: 'generator µs/unit', digits: 0, value: (m) => m.cpu?.loadgenUs },
    { name: 'server RSS MB', digits: 0, value: (m) => m.rssPeakMb },
    {
      name: 'holds/batch',
      digits: 1,
      value: (m) =>
        m.serverStats !== null && m.serverStats.holdBatches > 0
          ? m.serverStats.holdBatchRequests / m.serverStats.holdBatches
          : null,
    },
    {
      name: 'round trips/batch',
      digits: 1,
      value: (m) => {
        const s = m.serverStats;
        if (s === null || s.holdBatches === 0) return null;
        const statements = Object.values(s.statements).reduce((total, st) => total + st.count, 0);
        return statements > 0 ? (statements + 2 * s.transactions) / s.holdBatches : null;
      },
    },
  ];
  const openMetrics: Metric[] = [
    { name: 'achieved/s', digits: 0, value: (m) => m.openLoop?.achievedRate },
    { name: 'p50 ms', digits: 1, value: (m) => m.p50Ms },
    { name: 'p99 ms', digits: 1, value: (m) => m.p99Ms },
    { name: 'p99.9 ms', digits: 1, value: (m) => m.p999Ms },
    { name: 'max ms', digits: 1, value: (m) => m.maxMs },
    { name: 'server µs/unit', digits: 0, value: (m) => m.cpu?.serverUs },
  ];
  const services = measurements.filter((m) => m.tree !== null);
  const groups = groupBy(
    services,
    (m) => `${m.conns}/${m.strategy}/${m.mode}/${m.rate ?? ''}/${m.streams?.count ?? 0}`,
  );
  for (const cell of groups.values()) {
    const first = cell[0]!;
    const byTree = trees.map((tree) => cell.filter((m) => m.tree === tree));
    const reference = byTree[0]!;
    const metrics = first.mode === 'open' ? openMetrics : closedMetrics;
    const offered = cell.map((m) => m.openLoop?.offeredRate ?? Number.NaN);
    const [low, high] = [Math.min(...offered), Math.max(...offered)];
    const what =
      first.mode === 'open'
        ? `open loop at ${first.rate} (offered ${high - low < 1 ? num(low) : `${num(low)} to ${num(high)}`}/s)`
        : `closed loop${first.streams === null ? '' : ` with ${first.streams.count} SSE streams`}`;
    out.push(
      `\nA/B ${first.strategy}, ${what}, ${first.conns} conns: medians of ${reference.length} round(s); ` +
        `ratios are medians of same-round ratios against ${trees[0]}`,
    );
    const body = metrics.flatMap((metric) => {
      const medians = byTree.map((mine) => medianOrNull(mine.map(metric.value)));
      if (medians.every((v) => v === null)) return [];
      const ratios = byTree.slice(1).map((mine) => num(sameRunRatio(mine, reference, metric.value), 3));
      return [[metric.name, ...medians.map((v) => num(v, metric.digits)), ...ratios]];
    });
    const books = byTree.map((mine) =>
      mine.length === 0 ? '-' : mine.every((m) => m.books === null || m.books.ok) ? 'ok' : 'FAIL',
    );
    body.push(['books', ...books, ...trees.slice(1).map(() => '')]);
    out.push(table(['', ...trees, ...trees.slice(1).map((t) => `${t}/${trees[0]}`)], body));
  }
  return out;
}

export function formatSummary(
  measurements: Measurement[],
  scenario: string,
  repeat: number,
  trees: string[] = [],
): string {
  const out = [
    ...closedSection(summarize(measurements, scenario), scenario, repeat),
    ...openSection(summarizeOpenLoop(measurements), repeat),
  ];
  if (trees.length > 1) out.push(...abSection(measurements, trees, scenario));
  return out.join('\n');
}
