// Turns measurements into the printed tables and the JSON summary: medians over repeats, and
// ratios taken within each repeat (same run, same machine state) before their median is taken.
import type { BooksCheck } from './scenarios.ts';

export interface Measurement {
  /** 'ceiling', a hold strategy, or 'url' for a server the bench did not start. */
  target: string;
  conns: number;
  preload: number;
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
  preloadSeconds: number | null;
  /** From a bench server during the measured window. */
  serverStats: ServerStats | null;
}

export interface ServerStats {
  holdBatches: number;
  holdBatchRequests: number;
  transactions: number;
  transactionMsTotal: number;
  transactionMsMax: number;
  gapMsTotal: number;
  statements: Record<string, { count: number; msTotal: number }>;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

export interface SummaryRow {
  conns: number;
  preload: number;
  target: string;
  runs: number;
  holdsPerSecond: number;
  bookingsPerSecond: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  rssPeakMb: number | null;
  booksOk: boolean;
  /** Median over repeats of this target's holds/s divided by the other's, same repeat. */
  ratios: Record<string, number>;
}

export const median = (values: number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

const headline = (m: Measurement, scenario: string) =>
  scenario === 'bookings' ? m.bookingsPerSecond : scenario === 'mixed' ? m.requestsPerSecond : m.holdsPerSecond;

export function summarize(measurements: Measurement[], scenario: string): SummaryRow[] {
  const rows: SummaryRow[] = [];
  const cells = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.conns}/${m.preload}`;
    cells.set(key, [...(cells.get(key) ?? []), m]);
  }
  for (const cell of cells.values()) {
    const targets = [...new Set(cell.map((m) => m.target))];
    for (const target of targets) {
      const mine = cell.filter((m) => m.target === target);
      const ratios: Record<string, number> = {};
      for (const other of targets.filter((t) => t !== target)) {
        const perRepeat = mine.flatMap((m) => {
          const theirs = cell.find((o) => o.target === other && o.repeat === m.repeat);
          return theirs === undefined ? [] : [headline(m, scenario) / headline(theirs, scenario)];
        });
        if (perRepeat.length > 0) ratios[other] = median(perRepeat);
      }
      const rss = mine.map((m) => m.rssPeakMb).filter((v): v is number => v !== null);
      rows.push({
        conns: mine[0]!.conns,
        preload: mine[0]!.preload,
        target,
        runs: mine.length,
        holdsPerSecond: median(mine.map((m) => m.holdsPerSecond)),
        bookingsPerSecond: median(mine.map((m) => m.bookingsPerSecond)),
        requestsPerSecond: median(mine.map((m) => m.requestsPerSecond)),
        p50Ms: median(mine.map((m) => m.p50Ms)),
        p99Ms: median(mine.map((m) => m.p99Ms)),
        rssPeakMb: rss.length > 0 ? Math.max(...rss) : null,
        booksOk: mine.every((m) => m.books === null || m.books.ok),
        ratios,
      });
    }
  }
  return rows;
}

const num = (value: number, digits = 0) =>
  Number.isFinite(value)
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

function serverLine(stats: ServerStats | null): string {
  if (stats === null) return '';
  const batch = stats.holdBatches > 0 ? `${num(stats.holdBatchRequests / stats.holdBatches, 1)} holds/batch, ` : '';
  const n = stats.transactions;
  const tx =
    n > 0
      ? `${num(n)} tx, ${num(stats.transactionMsTotal / n, 2)} ms mean (${num(stats.gapMsTotal / n, 2)} between statements), ` +
        `${num(stats.transactionMsMax, 1)} max, `
      : '';
  const statements = Object.entries(stats.statements)
    .sort((a, b) => b[1].msTotal - a[1].msTotal)
    .slice(0, 6)
    .map(
      ([sql, s]) =>
        `\n             ${num(s.msTotal / s.count, 2).padStart(7)} ms x ${num(s.count).padStart(6)}  ${sql}`,
    )
    .join('');
  return `\n           server: ${batch}${tx}event-loop delay p50 ${num(stats.eventLoopDelayMs.p50, 1)} ms p99 ${num(stats.eventLoopDelayMs.p99, 1)} ms${statements}`;
}

/** One line per measurement, printed as it finishes. */
export function formatMeasurement(m: Measurement): string {
  const books =
    m.books === null
      ? 'n/a'
      : m.books.ok
        ? m.books.exact
          ? 'ok'
          : 'ok (bounds)'
        : `FAIL ${m.books.problems.join('; ')}`;
  return (
    `  ${m.target.padEnd(8)} ${num(m.holdsPerSecond).padStart(7)} holds/s  ${num(m.bookingsPerSecond).padStart(6)} books/s  ` +
    `${num(m.requestsPerSecond).padStart(7)} req/s  p50 ${num(m.p50Ms, 1)} ms  p99 ${num(m.p99Ms, 1)} ms  ` +
    `non-2xx ${codes(m.non2xx)}  errors ${codes(m.errors)}  rss ${m.rssPeakMb === null ? '-' : num(m.rssPeakMb)} MB  ` +
    `cpu srv ${m.serverCpuCores === null ? '-' : num(m.serverCpuCores, 2)} gen ${num(m.loadgenCpuCores, 2)} box ${num(m.machineBusy * 100)}% ` +
    `(idle box before: ${num(m.machineBusyBefore * 100)}% busy)  ` +
    `books ${books}` +
    serverLine(m.serverStats)
  );
}

export function formatSummary(rows: SummaryRow[], scenario: string, repeat: number): string {
  const out: string[] = [];
  const cells = [...new Set(rows.map((r) => `${r.conns}/${r.preload}`))];
  for (const cell of cells) {
    const mine = rows.filter((r) => `${r.conns}/${r.preload}` === cell);
    const { conns, preload } = mine[0]!;
    out.push(
      `\n${conns} connections, ${num(preload)} holds stored before the run` +
        (repeat > 1 ? ` (medians of ${repeat} runs; ratios are medians of same-run ratios)` : ''),
    );
    out.push(
      table(
        ['target', 'holds/s', 'books/s', 'req/s', 'p50 ms', 'p99 ms', 'rss MB', 'books'],
        mine.map((r) => [
          r.target,
          num(r.holdsPerSecond),
          num(r.bookingsPerSecond),
          num(r.requestsPerSecond),
          num(r.p50Ms, 1),
          num(r.p99Ms, 1),
          r.rssPeakMb === null ? '-' : num(r.rssPeakMb),
          r.booksOk ? 'ok' : 'FAIL',
        ]),
      ),
    );
    const main = mine.find((r) => r.target === 'batched' || r.target === 'url');
    if (main !== undefined) {
      const parts = Object.entries(main.ratios).map(([other, ratio]) =>
        other === 'ceiling' ? `${num(ratio, 2)}x of the ceiling` : `${num(ratio, 1)}x ${other}`,
      );
      if (parts.length > 0) out.push(`${main.target} (${scenario}): ${parts.join(', ')}`);
    }
  }
  return out.join('\n');
}
