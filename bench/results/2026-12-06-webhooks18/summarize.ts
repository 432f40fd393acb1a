// One line per run of ab.sh: holds/s with none and with 10 endpoints, the ratio, drain after
// stop, lag p99, requests and changes per request, commits per hold, CPU per hold by process
// (cpu-split.ts), and the load at the start; then the medians per side.
// Usage: npx tsx bench/results/2026-12-06-webhooks18/summarize.ts DIR
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface Round {
  holdsPerSecond: number;
  drainedAfterStopMs: number | null;
  lagMs: { p99: number } | null;
  requests?: number | null;
  changesPerRequest?: number | null;
  db?: { commitsPerHold: number };
}

const dir = process.argv[2]!;
const here = new URL('.', import.meta.url).pathname;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ratios = new Map<string, number[]>();
const runs = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5))
  .sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]) || b.localeCompare(a));
for (const run of runs) {
  const [none, ten] = readFileSync(join(dir, `${run}.json`), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Round);
  const cpu = execFileSync('npx', ['tsx', join(here, 'cpu-split.ts'), join(dir, run)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.replace(/.*µs\/hold /, '').replace(/ \(over.*/, ''));
  const load = (readFileSync(join(dir, `${run}.uptime`), 'utf8').split('\n')[1] ?? '').replace(/.*load average: /, '');
  const ratio = ten!.holdsPerSecond / none!.holdsPerSecond;
  const side = run.split('-')[0]!;
  ratios.set(side, [...(ratios.get(side) ?? []), ratio]);
  console.log(
    `${run.padEnd(9)} ${none!.holdsPerSecond} / ${ten!.holdsPerSecond} holds/s = ${ratio.toFixed(2)}x; ` +
      `drain ${ten!.drainedAfterStopMs} ms, lag p99 ${ten!.lagMs?.p99} ms; ` +
      `${ten!.requests ?? '?'} requests x ${ten!.changesPerRequest ?? '?'} changes; ` +
      `commits/hold ${none!.db?.commitsPerHold ?? '?'} -> ${ten!.db?.commitsPerHold ?? '?'}; ` +
      `CPU µs/hold [${cpu[0]}] -> [${cpu[1]}]; load ${load}`,
  );
}
for (const [side, xs] of ratios) {
  console.log(`${side}: ratios ${xs.map((x) => x.toFixed(2)).join(', ')}; median ${median(xs).toFixed(2)}x`);
}
