// CPU per hold by process for each round of a wh-cpu.sh run: the ticks (1/100 s) spent in the
// 10 s before the round's drain ended (rough: the drain, 0.1-0.3 s, falls inside the window).
// Usage: npx tsx bench/results/2026-12-06-webhooks18/cpu-split.ts OUT_PREFIX
import { readFileSync } from 'node:fs';

interface Round {
  endpoints: number;
  holdsGranted: number;
  holdsPerSecond: number;
  drainedAfterStopMs: number | null;
}
interface Sample {
  t: number;
  lines: number;
  bench: number;
  server: number;
  /** Ticks by postgres pid. */
  pg: Map<string, number>;
}

const prefix = process.argv[2]!;
const rounds = readFileSync(`${prefix}.json`, 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as Round);
const samples = readFileSync(`${prefix}.cpu`, 'utf8')
  .trim()
  .split('\n')
  .map((line): Sample => {
    const [t, ...pairs] = line.split(' ');
    const value = (key: string) => Number(pairs.find((p) => p.startsWith(`${key}=`))?.slice(key.length + 1) ?? 0);
    const pg = new Map(
      (pairs.find((p) => p.startsWith('pg='))?.slice(3) ?? '')
        .split(',')
        .filter(Boolean)
        .map((pair) => pair.split(':') as [string, string])
        .map(([pid, ticks]) => [pid, Number(ticks)]),
    );
    return { t: Number(t), lines: value('lines'), bench: value('bench'), server: value('server'), pg };
  });
const nearest = (t: number) => samples.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best));
rounds.forEach((round, i) => {
  // The last round's line comes as the bench exits, maybe after the last sample.
  const endT = samples.find((s) => s.lines > i)?.t ?? samples.at(-1)!.t + 0.5;
  // The line comes 1.5 s after the drain (the bench waits for PostgreSQL's counters).
  const end = endT - 1.75 - (round.drainedAfterStopMs ?? 0) / 1000;
  const [a, b] = [nearest(end - 10), nearest(end)];
  // A postgres process that started within the window counts from 0; one that ended is missed.
  let pgTicks = 0;
  for (const [pid, ticks] of b.pg) pgTicks += ticks - (a.pg.get(pid) ?? 0);
  const ticks = { server: b.server - a.server, bench: b.bench - a.bench, pg: pgTicks };
  const us = (key: 'server' | 'bench' | 'pg') => Math.round((ticks[key] * 10_000) / round.holdsGranted);
  console.log(
    `endpoints=${round.endpoints} holds/s=${round.holdsPerSecond} µs/hold server=${us('server')} ` +
      `bench=${us('bench')} pg=${us('pg')} (over ${(b.t - a.t).toFixed(1)} s)`,
  );
});
