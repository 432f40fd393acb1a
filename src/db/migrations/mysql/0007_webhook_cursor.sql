-- See the PostgreSQL migration of the same number. MySQL commits each DDL statement on its own:
-- every statement here can be run again after a crash between them, except the rename, which
-- is first.
alter table webhooks rename column last_position to cursor_position;
alter table webhooks
  add column if not exists batch_last_position bigint null,
  add column if not exists attempts            integer not null default 0,
  add column if not exists next_attempt_at     datetime(3) null,
  add column if not exists lease_until         datetime(3) null,
  add column if not exists lease_owner         varchar(64) null,
  add column if not exists last_attempt_at     datetime(3) null,
  add column if not exists last_success_at     datetime(3) null,
  add column if not exists last_status_code    integer null,
  add column if not exists last_latency_ms     integer null,
  add column if not exists last_error          varchar(1024) null;
update webhooks w
   set w.cursor_position = coalesce((select min(d.position) - 1 from webhook_deliveries d
                                      where d.webhook_id = w.id and d.status = 'pending'), w.cursor_position),
       w.next_attempt_at = w.updated_at
 where w.next_attempt_at is null;
alter table webhooks modify column next_attempt_at datetime(3) not null;

create table if not exists webhook_attempts (
  id             bigint not null auto_increment primary key,
  webhook_id     bigint not null,
  first_position bigint not null,
  last_position  bigint not null,
  change_count   integer not null,
  outcome        varchar(16) not null,
  status_code    integer null,
  latency_ms     integer not null,
  error          varchar(1024) null,
  at             datetime(3) not null,
  constraint webhook_attempts_webhook_fk foreign key (webhook_id) references webhooks (id) on delete cascade,
  constraint webhook_attempts_outcome_known check (outcome in ('succeeded', 'retrying', 'failed')),
  index webhook_attempts_by_webhook (webhook_id, id),
  index webhook_attempts_by_age (at)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

drop table if exists webhook_deliveries;
