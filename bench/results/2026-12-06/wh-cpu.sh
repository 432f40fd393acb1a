#!/usr/bin/env bash
# Runs bench/webhooks.ts --endpoints 10 --compare and samples, every 0.5 s, the cumulative CPU
# ticks (utime+stime) of the bench process (generator + receiver), its server child, and every
# postgres process on the box.
cd /work/wt-h-perf
node --import tsx bench/webhooks.ts --seconds 10 --connections 256 --endpoints 10 --compare > /tmp/h-perf/wh-cpu.json &
bench=$!
ticks() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
while kill -0 $bench 2>/dev/null; do
  server=$(pgrep -P $bench | head -1)
  pg=0; for p in $(pgrep -u postgres); do pg=$((pg + $(ticks $p))); done
  echo "$(date +%s.%N | cut -c1-14) bench=$(ticks $bench) server=$( [ -n "$server" ] && ticks $server || echo 0) pg=$pg lines=$(wc -l < /tmp/h-perf/wh-cpu.json)"
  sleep 0.5
done
