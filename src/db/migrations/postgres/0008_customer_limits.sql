-- Per-customer limits.
--   customer        who a hold is for: the integrator's account id, or an email address
--                   (normalised: trimmed, lower-cased, +tag dropped). Null: anonymous.
--   customer seats  the seats in a customer's active holds (lapsed ones too, until reclaimed)
--                   plus their confirmed bookings, for one event: kept in customer_seats by the
--                   same statements that move the event's counters, under the event's row lock.
--                   A booking moves seats from held to booked, so it leaves this count alone.

alter table events
  add column max_seats_per_customer integer,
  add column max_seats_per_hold integer,
  add column customer_required boolean not null default false,
  add constraint events_limits_positive check (
    (max_seats_per_customer is null or max_seats_per_customer >= 1) and
    (max_seats_per_hold is null or max_seats_per_hold >= 1));

alter table holds add column customer text;
create index holds_by_event_customer on holds (event_id, customer) where customer is not null;

create table customer_seats (
  event_id bigint not null references events (id),
  customer text not null,
  seats    integer not null,
  primary key (event_id, customer),
  -- The fast grant turns a count over the limit into -1, so that this check undoes its whole
  -- statement (storage/holds.sql.ts).
  constraint customer_seats_within_limit check (seats >= 0)
);

-- Staff and webhooks see who; public reads never do.
alter table changes add column customer text;
