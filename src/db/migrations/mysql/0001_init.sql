-- The same schema as migrations/postgres/0001_init.sql, in MySQL 8 / MariaDB 10.6+ dialect;
-- see that file for the glossary (event, hold, booking, expiry, snapshot).
--
-- Every writer locks the event row first (select ... for update) and only then touches that
-- event's holds and bookings. One lock order means no deadlocks between grants, bookings and
-- sweepers.
--
-- MySQL commits each DDL statement on its own, so this file cannot run as one transaction:
-- every statement is "if not exists", and a run interrupted halfway completes on the next.
-- CHECK constraints are enforced by MySQL 8.0.16+ and MariaDB 10.2+ (older MySQL parsed and
-- ignored them). Timestamps are UTC in datetime(3): millisecond precision, what a JavaScript
-- Date carries, so every instant the app writes reads back exactly.

create table if not exists events (
  id          bigint not null auto_increment primary key,
  name        varchar(255) not null,
  total_seats integer not null,
  -- Counters maintained in the same transaction as the holds and bookings they count, so no
  -- hot path ever sums holds. `held` includes lapsed-but-unreclaimed holds; readers subtract
  -- those (see the snapshot query).
  available   integer not null,
  held        integer not null default 0,
  booked      integer not null default 0,
  created_at  datetime(3) not null,
  constraint events_books_balance check (total_seats = available + held + booked),
  constraint events_counters_nonnegative check (available >= 0 and held >= 0 and booked >= 0),
  index events_name (name)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

-- MySQL has no partial indexes, so the indexes on holds lead with what the hot queries fix
-- (event and status, or status) and range over expires_at: a query for lapsed active holds
-- reads only those entries, however many expired and booked holds are stored. Each also
-- carries the remaining column its query needs, so it is answered from the index alone.
create table if not exists holds (
  id                 bigint not null auto_increment primary key,
  event_id           bigint not null,
  qty                integer not null,
  status             varchar(16) not null default 'active',
  payment_token_hash binary(32) not null,
  created_at         datetime(3) not null,
  expires_at         datetime(3) not null,
  constraint holds_event_fk foreign key (event_id) references events (id),
  constraint holds_qty_positive check (qty > 0),
  constraint holds_status_known check (status in ('active', 'expired', 'booked', 'released')),
  constraint holds_payment_token_hash_unique unique (payment_token_hash),
  -- Reclaiming an event's lapsed holds, and the snapshot's sum of them.
  index holds_by_event_status_expiry (event_id, status, expires_at, qty),
  -- The sweeper: which events have lapsed active holds, oldest first.
  index holds_by_status_expiry (status, expires_at, event_id)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;

create table if not exists bookings (
  id         bigint not null auto_increment primary key,
  event_id   bigint not null,
  hold_id    bigint not null,
  qty        integer not null,
  created_at datetime(3) not null,
  constraint bookings_event_fk foreign key (event_id) references events (id),
  constraint bookings_hold_fk foreign key (hold_id) references holds (id),
  constraint bookings_qty_positive check (qty > 0),
  -- The last guard against booking a hold twice.
  constraint bookings_hold_id_unique unique (hold_id),
  index bookings_event (event_id)
) engine = innodb default charset = utf8mb4 collate = utf8mb4_bin;
