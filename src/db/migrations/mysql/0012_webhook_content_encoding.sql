-- How an endpoint takes its batches: identity (plain JSON) or gzip (Content-Encoding: gzip, the
-- signature still over the JSON). Existing endpoints stay plain.
alter table webhooks add column content_encoding varchar(16) not null default 'identity';
