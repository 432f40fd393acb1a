#!/bin/bash
# idle.sh TREE LABEL N: commits/s and server CPU with N idle queued events
TREE=$1; LABEL=$2; N=$3
cd $TREE
psql -q -h 127.0.0.1 -U postgres -d postgres -c "drop database if exists idleq with (force)" -c "create database idleq" >/dev/null 2>&1
DATABASE_URL=postgres://postgres@127.0.0.1:5432/idleq PORT=18195 HOST=127.0.0.1 LOG_LEVEL=warn NODE_ENV=production ADMIN_TOKEN=idle-admin-token-0123456789abc node bin/box-office.js serve > /tmp/idle-$LABEL.log 2>&1 &
PID=$!
for i in $(seq 50); do curl -sf http://127.0.0.1:18195/healthz >/dev/null && break; sleep 0.2; done
OPEN=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
node -e "
const open=new Date(Date.now()-60000).toISOString();
(async()=>{for(let i=0;i<$N;i+=20){await Promise.all(Array.from({length:20},(_,k)=>fetch('http://127.0.0.1:18195/events',{method:'POST',headers:{authorization:'Bearer idle-admin-token-0123456789abc','content-type':'application/json'},body:JSON.stringify({event:{name:'e'+(i+k),total_seats:100,max_seats_per_customer:4,sale_opens_at:open,queue:{admit_per_minute:60}}})})))}})()"
sleep 15; echo "queues: $(psql -tA -h 127.0.0.1 -U postgres -d idleq -c "select count(*) from event_queues")"
C0=$(psql -tA -h 127.0.0.1 -U postgres -d postgres -c "select xact_commit from pg_stat_database where datname='idleq'")
T0=$(awk '{print $14+$15}' /proc/$PID/stat)
sleep 10
C1=$(psql -tA -h 127.0.0.1 -U postgres -d postgres -c "select xact_commit from pg_stat_database where datname='idleq'")
T1=$(awk '{print $14+$15}' /proc/$PID/stat)
echo "$LABEL: $N idle queued events: $(( (C1-C0)/10 )) commits/s, server CPU $(( (T1-T0) ))% of a core over 10 s /10"
kill -INT $PID; wait $PID
