#!/usr/bin/env bash
# Alternates BEFORE (main, fbccc46 when measured, with this branch's bench/webhooks.ts and
# bench/webhook-receiver.ts copied in) and AFTER
# (this checkout), N rounds of `bench/webhooks.ts --endpoints 10 --compare` each, with the CPU
# sampled (wh-cpu.sh). Usage: ab.sh BEFORE_TREE N [FIRST_INDEX]
set -u
before=$1; n=$2; first=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
for i in $(seq "$first" $((first + n - 1))); do
  for side in before after; do
    tree=$([ $side = before ] && echo "$before" || pwd)
    out="$here/$side-$i"
    { date -u; uptime; } > "$out.uptime"
    (cd "$tree" && "$here/wh-cpu.sh" "$out")
    uptime >> "$out.uptime"
    echo "$side-$i: $(npx tsx "$here/cpu-split.ts" "$out" | tr '\n' ' ')"
  done
done
