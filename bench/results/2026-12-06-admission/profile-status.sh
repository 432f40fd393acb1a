set -e
cd ${TREE:-/work/wt-bench}
DB=box_office_bench_prof$$
psql -q -h 127.0.0.1 -U postgres -c "create database $DB"
trap 'kill $SPID 2>/dev/null; sleep 2; psql -q -h 127.0.0.1 -U postgres -c "drop database if exists $DB with (force)"' EXIT
rm -rf /tmp/qprof/prof; mkdir -p /tmp/qprof/prof
SECRET="bench:$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')xxxxxxxxxxxx"
env -i PATH=$PATH HOME=$HOME DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB NODE_ENV=production ADMIN_TOKEN=tokentokentokentoken HOST=127.0.0.1 PORT=18999 LOG_LEVEL=warn RATE_LIMIT_HOLDS_PER_MINUTE=0 RATE_LIMIT_BOOK_PER_MINUTE=0 ADMISSION_SECRET="$SECRET" node ${PROF:+--cpu-prof --cpu-prof-dir=/tmp/qprof/prof} --import tsx bench/server.ts > /tmp/qprof/server.log 2>&1 &
SPID=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:18999/healthz >/dev/null && break; sleep 0.3; done
OPENS=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
EV=$(curl -s -H 'authorization: Bearer tokentokentokentoken' -H 'content-type: application/json' -d "{\"event\":{\"name\":\"p\",\"total_seats\":1000000,\"max_seats_per_customer\":4,\"sale_opens_at\":\"$OPENS\",\"queue\":{\"admit_per_minute\":1}}}" http://127.0.0.1:18999/events | node -pe 'JSON.parse(require("fs").readFileSync(0)).event_id')
T=$(curl -s -H 'content-type: application/json' -d '{"customer":"x1"}' http://127.0.0.1:18999/events/$EV/queue | node -pe 'JSON.parse(require("fs").readFileSync(0)).ticket')
echo ticket len ${#T}
curl -s http://127.0.0.1:18999/queue/$T; echo
npx autocannon -c 256 -d ${DUR:-5} http://127.0.0.1:18999/queue/$T 2>&1 | grep -E "Req/Sec|requests in|non 2xx" 
[ -n "$HZ" ] && npx autocannon -c 256 -d ${DUR:-5} http://127.0.0.1:18999/healthz 2>&1 | grep -E "Req/Sec|requests in|non 2xx"
kill -TERM $SPID; wait $SPID || true
