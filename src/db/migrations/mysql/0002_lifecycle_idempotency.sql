-- Booking cancellation and Idempotency-Key storage; the same schema as
-- migrations/postgres/0002_lifecycle_idempotency.sql (see it for the glossary additions).
--
-- Lock order, extended: event row, then its holds and bookings, then idempotency keys.
--
-- Re-runnable like 0001, with one exception: MySQL 8 has no "add column if not exists"
-- (MariaDB has), so the alter table comes last and is one statement, which MySQL 8 applies
-- atomically. Only a crash between it and recording the migration would need a hand to finish.

create table if not exists idempotency_keys (
  -- sha256 of the credential scope and the key: the raw key is never stored.
  key_hash        binary(32) not null primary key,
  -- sha256 of method, path, payment token and canonical body: a reused key must match it.
  request_hash    binary(32) not null,
  -- Which claim owns the row; a stale claim is taken over under a new id.
  claim_id        varchar(64) not null,
  locked_at       datetime(3) not null,
  -- Both null while the request is in flight.
  response_status integer null,
  response_body   mediumblob null,
  created_at      datetime(3) not null,
  expires_at      datetime(3) not null,
  constraint idempotency_keys_response_whole check ((response_status is null) = (response_body is null)),
  index idempotency_keys_expiry (expires_at)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

alter table bookings
  add column status varchar(16) not null default 'confirmed',
  add column cancelled_at datetime(3) null,
  add constraint bookings_status_known check (status in ('confirmed', 'cancelled'));
