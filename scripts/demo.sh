#!/usr/bin/env bash
# The design's cURL demo, step for step, without Ruby or Rails: JSON is read with node and the
# force-expire step uses the admin endpoints. Run it against a server started with `npm start`.
# It prints every response and exits non-zero if any snapshot is not what the design expects.
#   BASE         where the server listens (default http://localhost:8080)
#   ADMIN_TOKEN  sent as a bearer token to POST /events and /admin/* when set
set -euo pipefail

BASE=${BASE:-http://localhost:8080}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

AUTH=()
if [ -n "${ADMIN_TOKEN:-}" ]; then AUTH=(-H "Authorization: Bearer $ADMIN_TOKEN"); fi

# json FILE FIELD: prints one field of a JSON file.
json() { node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]]; if (v === undefined) process.exit(1); console.log(v)' "$1" "$2"; }
fail() { echo "DEMO FAILED: $*" >&2; exit 1; }
# expect_snapshot FILE TOTAL AVAILABLE HELD BOOKED
expect_snapshot() {
  local got
  got="$(json "$1" total) $(json "$1" available) $(json "$1" held) $(json "$1" booked)"
  [ "$got" = "$2 $3 $4 $5" ] || fail "$1: expected total/available/held/booked = $2 $3 $4 $5, got $got"
  echo "  ok: $1 is total=$2 available=$3 held=$4 booked=$5"
}
step() { printf '\n== %s\n' "$*"; }

step "1) Create event (capacity 5)"
curl -sS -X POST "$BASE/events" -H 'Content-Type: application/json' "${AUTH[@]}" \
  -d '{"event":{"name":"Demo Concert","total_seats":5}}' | tee event.json; echo
EVENT_ID=$(json event.json event_id) || fail "no event_id in event.json"
echo "EVENT_ID=$EVENT_ID"

step "2) Two concurrent holds (qty=3): expect one success, one failure"
( curl -sS -X POST "$BASE/holds" -H 'Content-Type: application/json' \
    --data-raw "{\"hold\":{\"event_id\": $EVENT_ID, \"qty\": 3}}" > hold1.json ) &
( curl -sS -X POST "$BASE/holds" -H 'Content-Type: application/json' \
    --data-raw "{\"hold\":{\"event_id\": $EVENT_ID, \"qty\": 3}}" > hold2.json ) &
wait
cat hold1.json; echo; cat hold2.json; echo
WINNERS=$(grep -l '"hold_id"' hold1.json hold2.json || true)
[ "$(echo "$WINNERS" | grep -c .)" = 1 ] || fail "expected exactly one winning hold, got: ${WINNERS:-none}"
LOSER=$(grep -L '"hold_id"' hold1.json hold2.json)
[ "$(json "$LOSER" code)" = insufficient_seats ] || fail "the losing hold should be refused with insufficient_seats"
HOLD_ID=$(json "$WINNERS" hold_id)
PAYMENT_TOKEN=$(json "$WINNERS" payment_token)
echo "HOLD_ID=$HOLD_ID"; echo "PAYMENT_TOKEN=$PAYMENT_TOKEN"

step "3) Book the successful hold"
curl -sS -X POST "$BASE/book" -H 'Content-Type: application/json' \
  --data-raw "{\"booking\":{\"hold_id\": $HOLD_ID, \"payment_token\": \"$PAYMENT_TOKEN\"}}" | tee booking1.json; echo
BOOKING_ID=$(json booking1.json booking_id) || fail "booking failed"

step "4) Expiry: create a small extra hold, then force-expire it"
curl -sS "$BASE/events/$EVENT_ID" | tee snapshot_before.json; echo
expect_snapshot snapshot_before.json 5 2 0 3
curl -sS -X POST "$BASE/holds" -H 'Content-Type: application/json' \
  -d "{\"hold\":{\"event_id\": $EVENT_ID, \"qty\": 2}}" | tee expiring_hold.json; echo
EXP_HOLD_ID=$(json expiring_hold.json hold_id) || fail "the extra hold was refused"
curl -sS "$BASE/events/$EVENT_ID" | tee snapshot_pre_expiry.json; echo
expect_snapshot snapshot_pre_expiry.json 5 0 2 3
# Replaces: bin/rails runner "h=Hold.find($EXP_HOLD_ID); h.update!(expires_at: 2.minutes.ago)"
curl -sS -X POST "$BASE/admin/holds/$EXP_HOLD_ID/expire" "${AUTH[@]}"; echo
# Replaces: bin/rails runner 'HoldExpiryJob.perform_now'
curl -sS -X POST "$BASE/admin/sweep" "${AUTH[@]}"; echo
curl -sS "$BASE/events/$EVENT_ID" | tee snapshot_post_expiry.json; echo
expect_snapshot snapshot_post_expiry.json 5 2 0 3

step "5) Idempotent retry of /book"
curl -sS -X POST "$BASE/book" -H 'Content-Type: application/json' \
  --data-raw "{\"booking\":{\"hold_id\": $HOLD_ID, \"payment_token\": \"$PAYMENT_TOKEN\"}}" | tee booking_retry.json; echo
[ "$(json booking_retry.json booking_id)" = "$BOOKING_ID" ] || fail "the retry returned a different booking"
echo "  ok: the retry returned booking $BOOKING_ID again"

printf '\nDemo passed: every snapshot matches the design.\n'
