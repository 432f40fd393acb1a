-- The waiting list: see the PostgreSQL migration of the same number for the glossary.

alter table events
  add column waitlist_policy varchar(8) not null default 'fill',
  add column waiting integer not null default 0,
  add constraint events_waitlist check (waitlist_policy in ('fill', 'strict') and waiting >= 0);

create table if not exists waitlist_entries (
  id               bigint not null auto_increment primary key,
  event_id         bigint not null,
  customer         varchar(200) not null,
  qty              integer not null,
  secret_hash      binary(32) not null,
  offer_token_hash binary(32) not null,
  status           varchar(16) not null default 'waiting',
  hold_id          bigint null,
  created_at       datetime(3) not null,
  offered_at       datetime(3) null,
  ended_at         datetime(3) null,
  -- MySQL has no partial index: the customer of a live entry only, null once it has ended,
  -- and a unique key allows any number of nulls.
  live_customer    varchar(200) as (case when status in ('waiting', 'offered') then customer end) stored,
  constraint waitlist_event_fk foreign key (event_id) references events (id),
  constraint waitlist_qty_positive check (qty > 0),
  constraint waitlist_status_known
    check (status in ('waiting', 'offered', 'converted', 'expired', 'left', 'removed')),
  unique key waitlist_secret_hash (secret_hash),
  unique key waitlist_offer_token_hash (offer_token_hash),
  unique key waitlist_live_customer (event_id, live_customer),
  index waitlist_by_event_status (event_id, status, id),
  index waitlist_by_event_status_qty (event_id, status, qty, id)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

alter table holds add column waitlist_entry_id bigint null, add index holds_by_waitlist_entry (waitlist_entry_id);
