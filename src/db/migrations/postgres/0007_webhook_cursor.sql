-- Webhook delivery becomes a cursor per endpoint over the change log (issue 18): no more row per
-- change per endpoint. An endpoint's state is its cursor (changes up to there delivered and
-- acknowledged, or given up on), the batch at its head (fixed once chosen, so that every retry
-- sends the same changes under the same webhook-id), that batch's attempts and next attempt, and
-- the lease of the worker sending it. webhook_attempts keeps one row per HTTP attempt, for staff.
--
-- Deliveries still pending are not lost: the cursor resumes just before the oldest of them (at
-- least once: changes after it that had been delivered already are sent again).
alter table webhooks rename column last_position to cursor_position;
alter table webhooks
  add column batch_last_position bigint,
  add column attempts            integer not null default 0,
  add column next_attempt_at     timestamptz,
  add column lease_until         timestamptz,
  add column lease_owner         text,
  add column last_attempt_at     timestamptz,
  add column last_success_at     timestamptz,
  add column last_status_code    integer,
  add column last_latency_ms     integer,
  add column last_error          text;
update webhooks w
   set cursor_position = coalesce((select min(d.position) - 1 from webhook_deliveries d
                                    where d.webhook_id = w.id and d.status = 'pending'), w.cursor_position),
       next_attempt_at = w.updated_at;
alter table webhooks alter column next_attempt_at set not null;

create table webhook_attempts (
  id             bigint generated always as identity primary key,
  webhook_id     bigint not null references webhooks (id) on delete cascade,
  -- The batch: the positions of its first and last change, and how many it carried.
  first_position bigint not null,
  last_position  bigint not null,
  change_count   integer not null,
  outcome        text not null check (outcome in ('succeeded', 'retrying', 'failed')),
  status_code    integer,
  latency_ms     integer not null,
  error          text,
  at             timestamptz not null
);
create index webhook_attempts_by_webhook on webhook_attempts (webhook_id, id);
create index webhook_attempts_by_age on webhook_attempts (at);

drop table webhook_deliveries;
