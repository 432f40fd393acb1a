// Draws the charts in docs/performance.md from `npm run bench -- --out FILE` results, as plain
// SVG with no chart library or service:
//   tsx bench/chart.ts concurrency RESULTS.json OUT.svg   holds/s against connections
//   tsx bench/chart.ts growth RESULTS.json OUT.svg        holds/s against holds already stored
// Each point is the median over the run's repeats; both axes are logarithmic.
import { readFileSync, writeFileSync } from 'node:fs';
import type { SummaryRow } from './report.ts';

interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
}

interface ChartSpec {
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  xTicks: number[];
  series: Series[];
}

const STYLE: Record<string, { name: string; color: string; dashed?: boolean }> = {
  ceiling: { name: 'HTTP ceiling (canned reply, no database)', color: '#888888', dashed: true },
  batched: { name: 'batched (the service default)', color: '#1b7837' },
  single: { name: 'one conditional UPDATE per request', color: '#2166ac' },
  design: { name: "design's lock + SUM", color: '#b2182b' },
};

const W = 760;
const H = 460;
const M = { left: 80, right: 24, top: 64, bottom: 130 };

const log = Math.log10;
const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const short = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));

function decades(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(log(min)); e <= Math.ceil(log(max)); e++) {
    for (const m of [1, 2, 5]) {
      const value = m * 10 ** e;
      if (value >= min / 1.0001 && value <= max * 1.0001) ticks.push(value);
    }
  }
  return ticks;
}

export function lineChart(spec: ChartSpec): string {
  const ys = spec.series.flatMap((s) => s.points.map(([, y]) => y)).filter((y) => y > 0);
  const yMin = 10 ** Math.floor(log(Math.min(...ys)));
  const yMax = 10 ** Math.ceil(log(Math.max(...ys)));
  const xMin = Math.min(...spec.xTicks);
  const xMax = Math.max(...spec.xTicks);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  // A little room either side of the first and last x, for the value labels.
  const pad = xMax === xMin ? 1 : (log(xMax) - log(xMin)) * 0.08;
  const [x0, x1] = [log(xMin) - pad, log(xMax) + pad];
  const round = (v: number) => Math.round(v * 10) / 10;
  const px = (x: number) => round(M.left + ((log(x) - x0) / (x1 - x0)) * pw);
  const py = (y: number) => round(M.top + ph - ((log(y) - log(yMin)) / (log(yMax) - log(yMin))) * ph);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(spec.title)}</text>`,
    `<text x="${W / 2}" y="44" text-anchor="middle" fill="#555555">${esc(spec.subtitle)}</text>`,
  ];
  for (const y of decades(yMin, yMax)) {
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e5e5"/>`,
      `<text x="${M.left - 8}" y="${py(y) + 4}" text-anchor="end">${short(y)}</text>`,
    );
  }
  for (const x of spec.xTicks) {
    out.push(
      `<line x1="${px(x)}" x2="${px(x)}" y1="${M.top}" y2="${M.top + ph}" stroke="#e5e5e5"/>`,
      `<text x="${px(x)}" y="${M.top + ph + 18}" text-anchor="middle">${short(x)}</text>`,
    );
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333333"/>`,
    `<text x="${M.left + pw / 2}" y="${M.top + ph + 40}" text-anchor="middle">${esc(spec.xLabel)}</text>`,
    `<text transform="translate(20 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
  );
  spec.series.forEach((series, i) => {
    const points = series.points.filter(([, y]) => y > 0).sort((a, b) => a[0] - b[0]);
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<polyline fill="none" stroke="${series.color}" stroke-width="2.5"${dash} points="${points.map(([x, y]) => `${px(x)},${py(y)}`).join(' ')}"/>`,
    );
    for (const [x, y] of points) {
      out.push(
        `<circle cx="${px(x)}" cy="${py(y)}" r="4" fill="${series.color}"/>`,
        `<text x="${px(x) + 7}" y="${py(y) - 7}" fill="${series.color}" font-size="11">${Math.round(y).toLocaleString('en-US')}</text>`,
      );
    }
    const lx = M.left + (i % 2) * (pw / 2);
    const ly = M.top + ph + 62 + Math.floor(i / 2) * 20;
    out.push(
      `<line x1="${lx}" x2="${lx + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${series.color}" stroke-width="2.5"${dash}/>`,
      `<text x="${lx + 36}" y="${ly}">${esc(series.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

interface Results {
  options: {
    backend: string;
    scenario: string;
    durationSeconds: number;
    repeat: number;
    qty: number;
    preloadMix: string;
  };
  environment: { cpus: number; database: string };
  summary: SummaryRow[];
}

function seriesBy(rows: SummaryRow[], x: (row: SummaryRow) => number): Series[] {
  return Object.entries(STYLE).flatMap(([target, style]) => {
    const mine = rows.filter((row) => row.target === target);
    return mine.length === 0
      ? []
      : [{ ...style, points: mine.map((row): [number, number] => [x(row), row.holdsPerSecond]) }];
  });
}

function main(argv: string[]): void {
  const [kind, input, output] = argv;
  if ((kind !== 'concurrency' && kind !== 'growth') || input === undefined || output === undefined) {
    console.error('usage: tsx bench/chart.ts concurrency|growth RESULTS.json OUT.svg');
    process.exit(2);
  }
  const results = JSON.parse(readFileSync(input, 'utf8')) as Results;
  const o = results.options;
  const setup =
    `${o.backend} ${results.environment.database}, ${results.environment.cpus} shared cores, qty ${o.qty}, ` +
    `median of ${o.repeat} x ${o.durationSeconds} s`;
  const spec: ChartSpec =
    kind === 'concurrency'
      ? {
          title: 'Holds per second for one hot event, by concurrency',
          subtitle: setup,
          xLabel: 'concurrent HTTP connections',
          yLabel: 'holds granted per second (log)',
          xTicks: [...new Set(results.summary.map((row) => row.conns))],
          series: seriesBy(results.summary, (row) => row.conns),
        }
      : {
          title: 'Holds per second as holds pile up on the hot event',
          subtitle: `${setup}, ${results.summary[0]?.conns ?? '?'} connections, stored: ${o.preloadMix}`,
          xLabel: 'holds already stored before the run (log)',
          yLabel: 'holds granted per second (log)',
          xTicks: [...new Set(results.summary.map((row) => row.preload))].filter((n) => n > 0),
          series: seriesBy(
            results.summary.filter((row) => row.preload > 0),
            (row) => row.preload,
          ),
        };
  writeFileSync(output, lineChart(spec));
  console.log(`wrote ${output}`);
}

main(process.argv.slice(2));
