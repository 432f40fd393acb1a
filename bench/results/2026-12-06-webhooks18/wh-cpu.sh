#!/usr/bin/env bash
# Runs bench/webhooks.ts --endpoints 10 --compare (extra arguments passed on) from the current
# checkout and samples, every 0.5 s, the cumulative CPU ticks (utime+stime, 100 per second) of the
# bench process (generator + receiver), its server child, and each postgres process on the box
# (pid:ticks, so that a process that exits or starts within a window is not misread).
# Usage: wh-cpu.sh OUT_PREFIX [bench args]   (writes OUT_PREFIX.json and OUT_PREFIX.cpu)
out=$1; shift
node --import tsx bench/webhooks.ts --seconds 10 --connections 256 --endpoints 10 --compare "$@" > "$out.json" &
bench=$!
ticks() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
while kill -0 $bench 2>/dev/null; do
  server=$(pgrep -P $bench -x node | head -1)
  pg=$(for p in $(pgrep -u postgres); do echo -n "$p:$(ticks $p),"; done)
  echo "$(date +%s.%N | cut -c1-14) pid=$server bench=$(ticks $bench) server=$( [ -n "$server" ] && ticks $server || echo 0) pg=$pg lines=$(wc -l < "$out.json")"
  sleep 0.5
done > "$out.cpu"
wait $bench
