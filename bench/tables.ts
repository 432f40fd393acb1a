// Prints the tables of docs/performance.md, in Markdown, from `npm run bench -- --out FILE`
// results, so every figure in the document can be traced to a results file:
//   tsx bench/tables.ts bench/results/pg-headline.json [more files...]
// Per target: the median and the range over repeats, latency, peak server RSS, the books, and
// the median of same-run ratios against the other targets.
import { readFileSync } from 'node:fs';
import type { Measurement, OpenLoopRow, SummaryRow } from './report.ts';

interface Results {
  options: { backend: string; scenario: string; durationSeconds: number; repeat: number; preloadMix: string };
  environment: { database: string; code: { commit: string } };
  measurements: Measurement[];
  summary: SummaryRow[];
  /** Absent in results from before --open-loop. */
  openLoopSummary?: OpenLoopRow[];
}

const n = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '-';

function headline(m: Measurement, scenario: string): number {
  if (scenario === 'bookings') return m.bookingsPerSecond;
  if (scenario === 'mixed') return m.requestsPerSecond;
  return m.holdsPerSecond;
}

function table(results: Results): string {
  const { scenario } = results.options;
  const unit = scenario === 'bookings' ? 'bookings/s' : scenario === 'mixed' ? 'requests/s' : 'holds/s';
  const lines = [
    `${results.options.backend} ${results.environment.database}, scenario ${scenario}, ` +
      `${results.options.repeat} x ${results.options.durationSeconds} s, commit ${results.environment.code.commit.slice(0, 12)}`,
    '',
    `| conns | stored | target | ${unit} (median) | range | p50 ms | p99 ms | server RSS MB | books | same-run ratios |`,
    '|---:|---:|---|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of results.summary) {
    const mine = results.measurements.filter(
      (m) => m.mode !== 'open' && m.conns === row.conns && m.preload === row.preload && m.target === row.target,
    );
    const values = mine.map((m) => headline(m, scenario));
    const ratios = Object.entries(row.ratios)
      .map(([other, ratio]) =>
        other === 'ceiling' ? `${n(ratio, 2)} of ceiling` : `${n(ratio, ratio < 10 ? 2 : 0)}x ${other}`,
      )
      .join(', ');
    const books = mine.every((m) => m.books === null)
      ? '-'
      : !mine.every((m) => m.books === null || m.books.ok)
        ? 'FAIL'
        : mine.every((m) => m.books === null || m.books.exact)
          ? 'exact'
          : 'within bounds';
    const median =
      scenario === 'bookings'
        ? row.bookingsPerSecond
        : scenario === 'mixed'
          ? row.requestsPerSecond
          : row.holdsPerSecond;
    lines.push(
      `| ${row.conns} | ${n(row.preload)} | ${row.target} | ${n(median)} | ${n(Math.min(...values))}–${n(Math.max(...values))} | ` +
        `${n(row.p50Ms, 1)} | ${n(row.p99Ms, 1)} | ${row.rssPeakMb === null ? '-' : n(row.rssPeakMb)} | ${books} | ${ratios} |`,
    );
  }
  const open = results.openLoopSummary ?? [];
  if (open.length > 0) {
    lines.push(
      '',
      '| conns | stored | target | rate | offered/s | achieved/s | p50 ms | p99 ms | p99.9 ms | max ms | failed | books |',
      '|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    );
    for (const row of open) {
      lines.push(
        `| ${row.conns} | ${n(row.preload)} | ${row.target} | ${row.rate} | ${n(row.offeredRate)} | ${n(row.achievedRate)} | ` +
          `${n(row.p50Ms, 1)} | ${n(row.p99Ms, 1)} | ${n(row.p999Ms, 1)} | ${n(row.maxMs, 1)} | ${n(row.failed)} | ${row.booksOk ? 'ok' : 'FAIL'} |`,
      );
    }
  }
  return lines.join('\n');
}

for (const file of process.argv.slice(2)) {
  console.log(`\n<!-- ${file} -->\n${table(JSON.parse(readFileSync(file, 'utf8')) as Results)}`);
}
