-- Every change carries the event's whole snapshot, waiting included: the seats asked for by
-- waiting-list entries not yet offered any (events.waiting). Streams and webhooks then say what
-- GET /events/:id says. Changes written before this one carry 0.
alter table changes add column waiting integer not null default 0;
