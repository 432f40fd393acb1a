-- Admission: a waiting room in front of an event's on-sale.
--   sale_opens_at   no hold before it. With a queue, the instant the pre-queue is shuffled and
--                   admission starts.
--   queue           admit_per_minute, admission_ttl_seconds, prequeue_opens_at (null: joins open
--                   as soon as the queue is set). Without it, the event sells as before.
--   ticket          one per customer per event (anonymous joiners get their own), numbered in
--                   join order per event (ticket_no, the admission token's jti).
--   position        the place in line: drawn at random for pre-queue tickets when the sale
--                   opens, the next free one for later joiners.
--   admitted_through  every position up to it is admitted. It only grows, a tick at a time,
--                   and queue_advances keeps when each step was taken, so every process dates
--                   an admission (and so its token's expiry) alike.

alter table events
  add column sale_opens_at timestamptz,
  add column queue_admit_per_minute integer,
  add column queue_admission_ttl_seconds integer,
  add column queue_prequeue_opens_at timestamptz,
  add constraint events_queue_settings check (
    (queue_admit_per_minute is null and queue_admission_ttl_seconds is null and queue_prequeue_opens_at is null)
    or (queue_admit_per_minute >= 1 and queue_admission_ttl_seconds >= 1 and sale_opens_at is not null));

create table event_queues (
  event_id         bigint primary key references events (id),
  joined           bigint not null default 0,
  next_position    bigint not null default 1,
  admitted_through bigint not null default 0,
  -- Admissions earned but not yet made: a fraction of one, carried to the next tick.
  credit           double precision not null default 0,
  ticked_at        timestamptz,
  shuffled         boolean not null default false,
  paused           boolean not null default false,
  seed             text not null,
  constraint event_queues_admitted_within check (admitted_through >= 0 and admitted_through < next_position)
);

create table queue_tickets (
  event_id  bigint not null references events (id),
  ticket_no bigint not null,
  customer  text,
  joined_at timestamptz not null,
  prequeue  boolean not null,
  position  bigint,
  primary key (event_id, ticket_no),
  unique (event_id, customer)
);
create unique index queue_tickets_by_position on queue_tickets (event_id, position);

create table queue_advances (
  event_id bigint not null references events (id),
  through  bigint not null,
  at       timestamptz not null,
  primary key (event_id, through)
);

-- The admission a hold was granted under (queue_tickets.ticket_no of its event).
alter table holds add column admission_ticket bigint;
