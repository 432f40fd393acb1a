-- Per-customer limits: see the PostgreSQL migration of the same number for the glossary.

alter table events
  add column max_seats_per_customer integer null,
  add column max_seats_per_hold integer null,
  add column customer_required boolean not null default false,
  add constraint events_limits_positive check (
    (max_seats_per_customer is null or max_seats_per_customer >= 1) and
    (max_seats_per_hold is null or max_seats_per_hold >= 1));

alter table holds add column customer varchar(200) null, add index holds_by_event_customer (event_id, customer);

create table if not exists customer_seats (
  event_id bigint not null,
  customer varchar(200) not null,
  seats    integer not null,
  primary key (event_id, customer),
  constraint customer_seats_event_fk foreign key (event_id) references events (id),
  constraint customer_seats_within_limit check (seats >= 0)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

alter table changes add column customer varchar(200) null;
