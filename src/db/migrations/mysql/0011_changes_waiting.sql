-- See the PostgreSQL migration of the same number.
alter table changes add column waiting integer not null default 0;
