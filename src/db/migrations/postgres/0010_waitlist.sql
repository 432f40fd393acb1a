-- The waiting list (issue 21).
--   entry     one customer's place on an event's list: the seats they want (qty, at most
--             WAITLIST_MAX_QTY), in join order (id). Live while 'waiting' or 'offered'; one live
--             entry per customer per event, and a customer whose entry ended may join again, at
--             the back.
--   offer     a hold made for an entry (holds.waitlist_entry_id), in the transaction that freed
--             its seats. Its payment token is derived from the entry's secret (waitlist/secret.ts),
--             so only the secret's holder can learn it; its hash is stored here at join.
--   waiting   on the event: the seats asked for by 'waiting' entries, kept by the same statements
--             that change their status, so the hot path reads one integer on the locked row.
--             While it is above 0, public holds take no seats: every free seat belongs to the list.
--   policy    'fill': a freed seat goes to the oldest waiting entry it can serve;
--             'strict': the oldest waiting entry is served first, and those behind it wait.

alter table events
  add column waitlist_policy text not null default 'fill',
  add column waiting integer not null default 0,
  add constraint events_waitlist check (waitlist_policy in ('fill', 'strict') and waiting >= 0);

create table waitlist_entries (
  id               bigint generated always as identity primary key,
  event_id         bigint not null references events (id),
  customer         text not null,
  qty              integer not null check (qty > 0),
  secret_hash      bytea not null unique,
  offer_token_hash bytea not null unique,
  status           text not null default 'waiting'
                   check (status in ('waiting', 'offered', 'converted', 'expired', 'left', 'removed')),
  hold_id          bigint references holds (id),
  created_at       timestamptz not null,
  offered_at       timestamptz,
  ended_at         timestamptz
);
-- The oldest waiting entry is an index seek; so is the oldest waiting entry of one size (fill).
create index waitlist_by_event_status on waitlist_entries (event_id, status, id);
create index waitlist_by_event_status_qty on waitlist_entries (event_id, status, qty, id);
create unique index waitlist_live_customer on waitlist_entries (event_id, customer)
  where status in ('waiting', 'offered');

alter table holds add column waitlist_entry_id bigint;
create index holds_by_waitlist_entry on holds (waitlist_entry_id) where waitlist_entry_id is not null;
