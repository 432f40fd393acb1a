-- The change feed: see the PostgreSQL migration of the same number for the glossary. MySQL has
-- no partial indexes, so the sequencer and the delivery worker use composite ones instead.

create table if not exists changes (
  id          bigint not null auto_increment primary key,
  position    bigint null,
  event_id    bigint not null,
  type        varchar(32) not null,
  hold_id     bigint null,
  booking_id  bigint null,
  qty         integer null,
  total       integer not null,
  available   integer not null,
  held        integer not null,
  booked      integer not null,
  created_at  datetime(3) not null,
  constraint changes_position_unique unique (position),
  index changes_unsequenced (position, id),
  index changes_by_event (event_id, position),
  index changes_by_age (created_at)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

create table if not exists change_sequence (
  id            integer not null primary key,
  last_position bigint not null
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

insert ignore into change_sequence (id, last_position) values (1, 0);

create table if not exists webhooks (
  id                   bigint not null auto_increment primary key,
  url                  varchar(2048) not null,
  event_types          varchar(1024) not null,
  secret               varchar(128) not null,
  status               varchar(16) not null default 'active',
  consecutive_failures integer not null default 0,
  last_position        bigint not null,
  created_at           datetime(3) not null,
  updated_at           datetime(3) not null,
  constraint webhooks_status_known check (status in ('active', 'paused', 'failed'))
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

create table if not exists webhook_deliveries (
  id               bigint not null auto_increment primary key,
  webhook_id       bigint not null,
  position         bigint not null,
  event_id         bigint not null,
  type             varchar(32) not null,
  payload          text not null,
  status           varchar(16) not null default 'pending',
  attempts         integer not null default 0,
  next_attempt_at  datetime(3) not null,
  last_status_code integer null,
  last_latency_ms  integer null,
  last_error       varchar(1024) null,
  created_at       datetime(3) not null,
  delivered_at     datetime(3) null,
  constraint webhook_deliveries_webhook_fk foreign key (webhook_id) references webhooks (id) on delete cascade,
  constraint webhook_deliveries_once unique (webhook_id, position),
  constraint webhook_deliveries_status_known check (status in ('pending', 'succeeded', 'failed')),
  index webhook_deliveries_due (status, next_attempt_at),
  index webhook_deliveries_order (webhook_id, event_id, status, position),
  index webhook_deliveries_by_webhook (webhook_id, id)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;
