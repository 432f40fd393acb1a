-- Listings: an event's holds and bookings paged by id (GET /events/:id/holds,
-- GET /events/:id/bookings, GET /events/:id/bookings.csv). Keyset pagination reads the next
-- page straight off these indexes, so a page costs the same however many holds an event has
-- had; the partial indexes on holds cover only active ones, and bookings_event could not give
-- the id order. (event_id, id) answers everything bookings_event did, so it replaces it
-- rather than adding a third index to maintain on every booking.

create index holds_by_event_id on holds (event_id, id);

create index bookings_by_event_id on bookings (event_id, id);

drop index bookings_event;
