-- Glossary additions
--   cancellation     staff undo a booking. The row stays (its hold_id keeps the hold booked
--                    once and for all) but its seats go back to `available`, and it no longer
--                    counts as booked.
--   idempotency key  a client's name for one unsafe request (Idempotency-Key header). The
--                    row is claimed before the request runs and gets the final response in the
--                    same transaction as the request's effect, so a crash never leaves one
--                    without the other. Only hashes of the key and its credential scope are
--                    stored, and the response is sealed with a key derived from them.
--
-- Lock order, extended: event row, then its holds and bookings, then idempotency keys. A key
-- row is otherwise only touched by single statements that lock nothing else (claim, release,
-- purge), so they never wait on an event while holding a key.

alter table bookings
  add column status text not null default 'confirmed'
  constraint bookings_status_known check (status in ('confirmed', 'cancelled'));

alter table bookings add column cancelled_at timestamptz;

create table idempotency_keys (
  -- sha256 of the credential scope and the key: the raw key is never stored.
  key_hash        bytea primary key,
  -- sha256 of method, path, payment token and canonical body: a reused key must match it.
  request_hash    bytea not null,
  -- Which claim owns the row. A stale claim is taken over under a new id, and the old
  -- request's effect transaction then finds it is no longer the owner and rolls back.
  claim_id        text not null,
  locked_at       timestamptz not null,
  -- Both null while the request is in flight.
  response_status integer,
  response_body   bytea,
  created_at      timestamptz not null,
  expires_at      timestamptz not null,
  constraint idempotency_keys_response_whole check ((response_status is null) = (response_body is null))
);
create index idempotency_keys_expiry on idempotency_keys (expires_at);
