-- Listings: an event's holds paged by id; see migrations/postgres/0005_listing_indexes.sql.
-- An InnoDB secondary index ends with the primary key, so bookings_event (event_id) already
-- orders an event's bookings by id; holds had no index that leads with event_id and then id.
--
-- One statement, which MySQL 8 applies atomically (it has no "create index if not exists").

alter table holds add index holds_by_event_id (event_id, id);
