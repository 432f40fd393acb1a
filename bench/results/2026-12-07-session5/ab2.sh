#!/bin/bash
# usage: ab2.sh BEFORE_DIR AFTER_DIR [rounds] -> same-run rates and server CPU per request:
# ceiling vs two built trees, GET /queue/:ticket and GET /healthz, order rotating per round
set -e
A=$1; B=$2; R=${3:-3}
DBA=qpa_$$; DBB=qpb_$$
for d in $DBA $DBB; do psql -q -h 127.0.0.1 -U postgres -d postgres -c "create database $d"; done
start() { (cd $1 && export $4 && PORT=$2 DATABASE_URL=postgres://postgres@127.0.0.1:5432/$3 ADMIN_TOKEN=admin-token-0123456789 LOG_LEVEL=warn RATE_LIMIT_HOLDS_PER_MINUTE=0 ADMISSION_SECRET=k1:0123456789abcdef0123456789abcdef exec node dist/cli.js serve > /tmp/qp/server-$2.log 2>&1) & }
start $A 39111 $DBA "X=1"; PA=$!
start $B 39113 $DBB "${EB:-X=1}"; PB=$!
(cd /work/main && PORT=39112 exec node --import tsx bench/ceiling.ts) & PC=$!
for i in $(seq 1 150); do curl -sf localhost:39111/healthz >/dev/null && curl -sf localhost:39113/healthz >/dev/null && curl -sf localhost:39112/healthz >/dev/null && break; sleep 0.2; done
ticket() {
  OPENS=$(date -u -d '-60 sec' +%Y-%m-%dT%H:%M:%SZ)
  EV=$(curl -s -H 'authorization: Bearer admin-token-0123456789' -H 'content-type: application/json' localhost:$1/events -d "{\"event\":{\"name\":\"q\",\"total_seats\":1000000,\"max_seats_per_customer\":4,\"sale_opens_at\":\"$OPENS\",\"queue\":{\"admit_per_minute\":1}}}" | node -pe 'JSON.parse(require("fs").readFileSync(0)).event_id')
  for c in 1 2 3; do curl -s -H 'content-type: application/json' localhost:$1/events/$EV/queue -d "{\"customer\":\"c$c\"}" > /tmp/qp/join.json; done
  node -pe 'JSON.parse(require("fs").readFileSync("/tmp/qp/join.json")).ticket'
}
TA=$(ticket 39111); TB=$(ticket 39113)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
pidof_port() { case $1 in 39111) echo $PA;; 39113) echo $PB;; 39112) echo $PC;; esac; }
rate() { local p=$(pidof_port $1); local a=$(cpu $p); local out=$(cd /work/main && npx autocannon -c 256 -d ${D:-6} -j "localhost:$1$2" 2>/dev/null); local b=$(cpu $p); echo "$out" | node -pe "const j=JSON.parse(require('fs').readFileSync(0)); Math.round(j.requests.total/j.duration)+'/s '+Math.round(($b-$a)*10000/j.requests.total)+'us'+(j.non2xx?' non2xx='+j.non2xx:'')"; }
for p in 39111 39113 39112; do (cd /work/main && npx autocannon -c 256 -d 2 localhost:$p/healthz >/dev/null 2>&1); done
for r in $(seq 1 $R); do
  case $((r % 3)) in 1) order="C A B";; 2) order="A B C";; 0) order="B C A";; esac
  line="r$r"
  for path in q h; do
    for w in $order; do
      case $w in A) port=39111; t=$TA;; B) port=39113; t=$TB;; C) port=39112; t=$TA;; esac
      if [ $path = q ]; then url=/queue/$t; else url=/healthz; fi
      line="$line  $path-$w $(rate $port $url)"
    done
  done
  echo "$line"
done
kill -INT $PA $PB $PC; wait $PA $PB || true
for d in $DBA $DBB; do psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database $d with (force)"; done
