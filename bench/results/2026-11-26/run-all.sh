#!/usr/bin/env bash
# Driver for the performance measurements (run from a snapshot of the bench).
set -uo pipefail
S=/tmp/box-office-bench-94a25d6d9917
B=/tmp/box-office-tree-ffbeea5dabfa
G=/tmp/box-office-tree-266fd9147bf6
K=/tmp/box-office-tree-d8c6f187e299
H=/tmp/box-office-tree-94a25d6d9917
cd "$S"
common="--strategy batched --rate-limit 0 --conns 256 --duration 10 --warmup 3 --quiet-wait 30"
run() { name=$1; shift; echo "== $name $(date -u +%FT%TZ) $(cat /proc/loadavg)" >> /tmp/perf/progress.log;
  timeout 5400 npx tsx bench/bench.ts $common "$@" --out /tmp/perf/$name.json > /tmp/perf/$name.out 2> /tmp/perf/$name.log;
  echo "   $name rc=$? $(date -u +%FT%TZ)" >> /tmp/perf/progress.log; }
for step in ${STEPS:-ab latency latency256 feed profile bookings mixed pglite}; do
  case $step in
    ab) run ab --no-self --compare base=$B --tree grant=$G --tree hooks=$K --tree head=$H --repeat 5 ;;
    latency) run latency --no-self --tree head=$H --open-loop 0.25x,0.5x,0.75x --open-loop-ceiling --repeat 3 ;;
    latency256) run latency256 --no-self --tree head=$H --open-loop 0.25x,0.5x,0.75x --open-loop-conns 256 --no-closed-loop --repeat 3 ;;
    feed) run feed --no-self --tree on=$H --tree off=$H --tree-env off:CHANGE_FEED=false --repeat 5 ;;
    profile) run profile --no-self --tree head=$H --cpu-prof --repeat 3 ;;
    bookings) run bookings --scenario bookings --no-self --compare base=$B --tree head=$H --repeat 3 ;;
    mixed) run mixed --scenario mixed --no-self --compare base=$B --tree head=$H --repeat 3 ;;
    pglite) run pglite --no-self --tree pg=$H --tree pglite=$H --tree-backend pglite:pglite --repeat 3 ;;
  esac
done
echo "done $(date -u +%FT%TZ)" >> /tmp/perf/progress.log
