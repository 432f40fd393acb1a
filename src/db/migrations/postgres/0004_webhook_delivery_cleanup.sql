-- The cleanup of finished webhook deliveries older than CHANGE_RETENTION_SECONDS reads them by
-- age; without this index it scans every delivery ever made.
create index webhook_deliveries_finished_by_age on webhook_deliveries (created_at) where status <> 'pending';
