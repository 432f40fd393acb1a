-- Glossary additions
--   change     one thing that happened to an event (created or edited; a hold granted,
--              released, extended or expired; a booking created or cancelled), written in the
--              same transaction as the thing itself, with the event's snapshot just after it:
--              a change exists if and only if its effect committed (a transactional outbox).
--   position   a change's place in the global log, assigned after commit by the sequencer in
--              the order changes became visible: gapless and increasing, so a reader that
--              resumes "after N" misses nothing. Per event, positions follow commit order, since
--              every writer of an event holds its row lock.
--   webhook    an endpoint that receives every change of the types it asked for, signed, at
--              least once, in order per event.

create table changes (
  id          bigint generated always as identity primary key,
  position    bigint unique,
  event_id    bigint not null,
  type        text not null,
  hold_id     bigint,
  booking_id  bigint,
  qty         integer,
  -- The event's snapshot just after this change.
  total       integer not null,
  available   integer not null,
  held        integer not null,
  booked      integer not null,
  created_at  timestamptz not null
);
-- What the sequencer has yet to number: small, however long the log.
create index changes_unsequenced on changes (id) where position is null;
create index changes_by_event on changes (event_id, position);
create index changes_by_age on changes (created_at);

-- The sequencer's counter: one row, locked by the one sequencer running at a time.
create table change_sequence (
  id            integer primary key check (id = 1),
  last_position bigint not null
);
insert into change_sequence (id, last_position) values (1, 0);

create table webhooks (
  id                   bigint generated always as identity primary key,
  url                  text not null,
  -- Change types delivered; empty means every type.
  event_types          text not null,
  secret               text not null,
  status               text not null default 'active' check (status in ('active', 'paused', 'failed')),
  consecutive_failures integer not null default 0,
  -- The fan-out cursor: changes up to here have their deliveries.
  last_position        bigint not null,
  created_at           timestamptz not null,
  updated_at           timestamptz not null
);

create table webhook_deliveries (
  id               bigint generated always as identity primary key,
  webhook_id       bigint not null references webhooks (id) on delete cascade,
  position         bigint not null,
  event_id         bigint not null,
  type             text not null,
  payload          text not null,
  status           text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
  attempts         integer not null default 0,
  next_attempt_at  timestamptz not null,
  last_status_code integer,
  last_latency_ms  integer,
  last_error       text,
  created_at       timestamptz not null,
  delivered_at     timestamptz,
  constraint webhook_deliveries_once unique (webhook_id, position)
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_order on webhook_deliveries (webhook_id, event_id, position) where status = 'pending';
create index webhook_deliveries_by_webhook on webhook_deliveries (webhook_id, id);
