#!/usr/bin/env bash
# Every measurement in docs/performance.md, in one go (about an hour on the 2-core box). Runs
# from a snapshot of one commit (bench/snapshot.sh) so edits in the working tree cannot change
# what is measured, writes bench/results/*.json, draws the charts and prints the tables (medians,
# ranges, same-run ratios; bench/tables.ts) the document's figures are taken from. The snapshot
# borrows this checkout's node_modules, so they must match the commit's package.json.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
#   MYSQL_URL=mysql://root@127.0.0.1:3306/mysql bench/run-docs.sh [STEP...]
# Steps: headline stored10k concurrency growth pglite mysql scenarios (default: all; mysql needs
# MYSQL_URL); also, only when named: latency (open-loop p50/p99/p99.9 at 0.25x..0.75x of the
# ceiling, rate limits off, with the CPU split).
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse "${COMMIT:-HEAD}")
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL server (postgres://...)}"
out="$repo/bench/results"
mkdir -p "$out"
snap=$("$repo/bench/snapshot.sh" "$commit")
cd "$snap"
bench() { timeout 1800 npx tsx bench/bench.ts --duration 10 --warmup 3 --quiet-wait 60 "$@"; }
steps=${*:-headline stored10k concurrency growth pglite mysql scenarios}
for step in $steps; do
  echo "== $step ($(date -u +%H:%M:%S))" >&2
  case $step in
    headline) bench --conns 256 --repeat 5 --out "$out/pg-headline.json" ;;
    stored10k) bench --conns 256 --preload 10000 --preload-mix active --repeat 3 --no-ceiling \
      --out "$out/pg-stored-10k-active.json" ;;
    concurrency) bench --conns 16,64,256 --repeat 3 --out "$out/pg-concurrency.json" ;;
    growth) bench --conns 64 --preload 1000,10000,100000,1000000 --preload-mix mixed --repeat 3 \
      --no-ceiling --grace 30 --out "$out/pg-growth.json" ;;
    pglite) bench --backend pglite --conns 64,256 --repeat 3 --out "$out/pglite.json" ;;
    mysql) DATABASE_URL=${MYSQL_URL:?set MYSQL_URL=mysql://...} bench --backend mysql --conns 256 \
      --repeat 3 --out "$out/mysql.json" ;;
    latency) bench --conns 256 --strategy batched --rate-limit 0 --open-loop 0.25x,0.5x,0.75x --repeat 3 \
      --out "$out/pg-latency.json" ;;
    scenarios)
      bench --scenario bookings --conns 256 --repeat 3 --no-ceiling --out "$out/pg-bookings.json"
      bench --scenario mixed --conns 256 --repeat 3 --no-ceiling --strategy batched,single,design \
        --out "$out/pg-mixed.json" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
cd "$repo"
[ -f "$out/pg-concurrency.json" ] && npx tsx bench/chart.ts concurrency "$out/pg-concurrency.json" "$out/pg-concurrency.svg"
[ -f "$out/pg-growth.json" ] && npx tsx bench/chart.ts growth "$out/pg-growth.json" "$out/pg-growth.svg"
npx tsx bench/tables.ts "$out"/*.json
echo "measured commit $commit; results in $out" >&2
