-- Changes are written once: a change takes its position when it is inserted, from a sequence,
-- instead of being numbered (rewritten) by a sequencer after it commits.
--   position   taken at insert, inside the transaction of the change's effect, which already
--              holds its event's row lock: per event, positions follow commit order. Across
--              events a later position can commit first, so readers see a change only below
--              the publication watermark: the highest position such that every transaction
--              that could still commit a position at or below it has ended
--              (storage/changes.sql.ts). Positions increase; a rolled-back change leaves a gap.

-- Whatever the old sequencer had not numbered yet gets its position now, in the order written.
with pending as (
  select id, row_number() over (order by id) as n from changes where position is null
)
update changes c
   set position = (select last_position from change_sequence where id = 1) + p.n
  from pending p
 where c.id = p.id;

create sequence changes_position_seq as bigint;
select setval('changes_position_seq',
              greatest((select coalesce(max(position), 0) from changes),
                       (select last_position from change_sequence where id = 1)) + 1,
              false);
alter table changes alter column position set default nextval('changes_position_seq');
alter table changes alter column position set not null;
alter sequence changes_position_seq owned by changes.position;
drop index changes_unsequenced;
drop table change_sequence;
