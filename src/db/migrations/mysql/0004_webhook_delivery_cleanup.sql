-- See the PostgreSQL migration of the same number. One statement, applied atomically.
alter table webhook_deliveries add index webhook_deliveries_by_status_age (status, created_at);
