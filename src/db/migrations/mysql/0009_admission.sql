-- Admission: see the PostgreSQL migration of the same number for the glossary.

alter table events
  add column sale_opens_at datetime(3) null,
  add column queue_admit_per_minute integer null,
  add column queue_admission_ttl_seconds integer null,
  add column queue_prequeue_opens_at datetime(3) null,
  add constraint events_queue_settings check (
    (queue_admit_per_minute is null and queue_admission_ttl_seconds is null and queue_prequeue_opens_at is null)
    or (queue_admit_per_minute >= 1 and queue_admission_ttl_seconds >= 1 and sale_opens_at is not null));

create table if not exists event_queues (
  event_id         bigint primary key,
  joined           bigint not null default 0,
  next_position    bigint not null default 1,
  admitted_through bigint not null default 0,
  credit           double not null default 0,
  ticked_at        datetime(3) null,
  shuffled         boolean not null default false,
  paused           boolean not null default false,
  seed             varchar(64) not null,
  constraint event_queues_event_fk foreign key (event_id) references events (id),
  constraint event_queues_admitted_within check (admitted_through >= 0 and admitted_through < next_position)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

create table if not exists queue_tickets (
  event_id  bigint not null,
  ticket_no bigint not null,
  customer  varchar(200) null,
  joined_at datetime(3) not null,
  prequeue  boolean not null,
  position  bigint null,
  primary key (event_id, ticket_no),
  unique key queue_tickets_by_customer (event_id, customer),
  unique key queue_tickets_by_position (event_id, position),
  constraint queue_tickets_event_fk foreign key (event_id) references events (id)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

create table if not exists queue_advances (
  event_id bigint not null,
  through  bigint not null,
  at       datetime(3) not null,
  primary key (event_id, through),
  constraint queue_advances_event_fk foreign key (event_id) references events (id)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

alter table holds add column admission_ticket bigint null;
