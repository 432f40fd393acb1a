-- Glossary
--   event    something with a fixed number of seats (total_seats).
--   hold     a temporary claim on qty seats of one event, until expires_at. Holders prove
--            ownership with a payment token; only its SHA-256 is stored.
--   booking  a hold turned permanent. At most one per hold (unique hold_id).
--   expiry   a hold whose expires_at has passed no longer counts as held, at once, whether or
--            not it has been marked 'expired' yet. Marking it (and moving its seats back in the
--            counters) is "reclaiming"; it happens under the event's row lock, lazily on the
--            hold path and in the sweeper.
--   snapshot total / available / held / booked of one event at one instant.
--
-- Every writer locks the event row first (select ... for update) and only then touches that
-- event's holds and bookings. One lock order means no deadlocks between grants, bookings and
-- sweepers.

create table events (
  id          bigint generated always as identity primary key,
  name        text not null,
  total_seats integer not null,
  -- Counters maintained in the same transaction as the holds and bookings they count, so no
  -- hot path ever sums holds. `held` includes lapsed-but-unreclaimed holds; readers subtract
  -- those (see the snapshot query).
  available   integer not null,
  held        integer not null default 0,
  booked      integer not null default 0,
  created_at  timestamptz not null,
  constraint events_books_balance check (total_seats = available + held + booked),
  constraint events_counters_nonnegative check (available >= 0 and held >= 0 and booked >= 0)
);
create index events_name on events (name);

create table holds (
  id                 bigint generated always as identity primary key,
  event_id           bigint not null references events (id),
  qty                integer not null check (qty > 0),
  status             text not null default 'active'
                     check (status in ('active', 'expired', 'booked', 'released')),
  payment_token_hash bytea not null unique,
  created_at         timestamptz not null,
  expires_at         timestamptz not null
);
-- Only active holds can lapse; these partial indexes stay as small as the active set, however
-- many holds have ever been stored.
create index holds_active_by_event on holds (event_id, expires_at) where status = 'active';
create index holds_active_by_expiry on holds (expires_at) where status = 'active';

create table bookings (
  id         bigint generated always as identity primary key,
  event_id   bigint not null references events (id),
  hold_id    bigint not null references holds (id),
  qty        integer not null check (qty > 0),
  created_at timestamptz not null,
  -- The last guard against booking a hold twice.
  constraint bookings_hold_id_unique unique (hold_id)
);
create index bookings_event on bookings (event_id);
