-- 0011 — reclaiming space without rewriting the log: the events table may be partitioned by
-- position range, and a partition whose every event is hidden from reads may be detached.
--
-- Moving events out of the log one by one would need DELETE, which invariant 1 forbids and the
-- database itself refuses (0001's triggers). Detaching a partition deletes no row: the rows
-- stay in a table of their own (dump it, then drop it), the log keeps its positions, and the
-- seals of what left stay in `seals`, so the log chain still verifies across the range.
-- Every detachment is recorded in reclaimed_ranges, which is evidence like seals: never
-- changed once written. docs/operations.md, "Reclaiming space", says how to use it.
--
-- Nothing here runs until the owner calls partition_events(size): a store that never does
-- keeps the plain table of 0001. Every function is SECURITY DEFINER and EXECUTE is revoked
-- from PUBLIC: partitioning is the owner's operation.
--
-- Uniqueness. A partitioned table can only have unique indexes that include the partition key
-- (position), so (stream_id, stream_version) and event_id are unique per partition, through
-- each partition's own indexes. Across partitions they hold by construction, as they always
-- have: append_events checks ids and versions under the log lock before it inserts.

-- The size of the partitions partition_events and add_event_partitions create (one row).
create table :SCHEMA.event_partitioning (
  id         boolean     not null default true,
  size       bigint      not null,
  enabled_at timestamptz not null default now(),
  constraint event_partitioning_pkey primary key (id),
  constraint event_partitioning_one_row check (id),
  constraint event_partitioning_size_check check (size >= 1)
);
revoke all on table :SCHEMA.event_partitioning from public;

-- What left the log. positions from_position..to_position (inclusive) were detached with the
-- partition partition_name; log_hash is the seal chain's log hash at to_position, which the
-- seals kept in `seals` still reproduce.
create table :SCHEMA.reclaimed_ranges (
  from_position  bigint      not null,
  to_position    bigint      not null,
  partition_name text        not null,
  event_count    bigint      not null,
  log_hash       bytea       not null,
  actor          text        not null,
  reason         text        not null,
  reclaimed_at   timestamptz not null default now(),
  constraint reclaimed_ranges_pkey primary key (from_position),
  constraint reclaimed_ranges_bounds_check check (from_position >= 1 and to_position >= from_position)
);
create trigger reclaimed_ranges_reject_update_delete before update or delete on :SCHEMA.reclaimed_ranges
  for each row execute function :SCHEMA.reject_event_change();
create trigger reclaimed_ranges_reject_truncate before truncate on :SCHEMA.reclaimed_ranges
  for each statement execute function :SCHEMA.reject_event_change();
revoke all on table :SCHEMA.reclaimed_ranges from public;

-- The partitions attached now: name, first position, the position after the last (null and
-- null for the default partition, which takes what lands beyond every range).
create function :SCHEMA.event_partition_bounds()
returns table (name text, from_position bigint, to_position bigint)
language sql stable
set search_path = pg_catalog, :SCHEMA, pg_temp
as $$
  select c.relname::text,
         nullif(substring(pg_get_expr(c.relpartbound, c.oid) from 'FROM \(''(-?\d+)''\)'), '')::bigint,
         nullif(substring(pg_get_expr(c.relpartbound, c.oid) from 'TO \(''(-?\d+)''\)'), '')::bigint
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
   where i.inhparent = ':SCHEMA.events'::regclass
   order by 2 nulls last;
$$;

-- A new, empty table shaped like the log, made ready to attach for [from, to) (to null: the
-- default partition): the parent's indexes, the per-partition unique keys, its own TRUNCATE
-- guards (which stay with it once detached), and a CHECK matching the
-- range so that attaching it needs no scan.
create function :SCHEMA.new_event_partition(partition_name text, range_from bigint, range_to bigint)
returns void
language plpgsql volatile
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
as $$
declare
  v_table text := format('%s.%I', ':SCHEMA', partition_name);
begin
  execute format('create table %s (like :SCHEMA.events including all)', v_table);
  execute format('alter table %s add constraint %I unique (stream_id, stream_version)', v_table,
                 partition_name || '_stream_version_key');
  execute format('alter table %s add constraint %I unique (event_id)', v_table, partition_name || '_event_id_key');
  -- Its own guards, which stay when it is detached (the ones cloned from the parent do not).
  execute format('create trigger events_reject_update_delete before update or delete on %s
                    for each row execute function :SCHEMA.reject_event_change()', v_table);
  execute format('create trigger events_reject_truncate before truncate on %s
                    for each statement execute function :SCHEMA.reject_event_change()', v_table);
  if range_to is not null then
    execute format('alter table %s add constraint %I check (position >= %s and position < %s)', v_table,
                   partition_name || '_range_check', range_from, range_to);
    execute format('alter table :SCHEMA.events attach partition %s for values from (%s) to (%s)', v_table,
                   range_from, range_to);
  else
    execute format('alter table :SCHEMA.events attach partition %s default', v_table);
  end if;
end;
$$;
revoke all on function :SCHEMA.new_event_partition(text, bigint, bigint) from public;

-- add_event_partitions: attaches ranges of the configured size after the last one until at
-- least `ahead` empty ranges lie beyond the head. Returns how many it attached. It holds the
-- log lock (appends wait, for the moment an empty table takes to attach) and attaching takes
-- SHARE UPDATE EXCLUSIVE on the log, which readers do not wait for, and ACCESS EXCLUSIVE on
-- the default partition, which they do. Two callers at once take turns on the log lock.
create function :SCHEMA.add_event_partitions(ahead int)
returns int
language plpgsql volatile
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
-- A long reader holding the log must not stall appends behind this DDL: give up instead.
set lock_timeout = '2s'
as $$
declare
  v_size  bigint;
  v_head  bigint;
  v_last  bigint;
  v_added int := 0;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'add_event_partitions must run at READ COMMITTED' using errcode = 'AN003';
  end if;
  if ahead is null or ahead < 1 or ahead > 100 then
    raise exception 'add_event_partitions: ahead must be 1..100' using errcode = 'AN004';
  end if;
  -- The log lock first, in the order appends and detach take their locks (no deadlock), and so
  -- that no append in flight lands past the head read below while a range is attached there.
  perform 1 from :SCHEMA.log_head where id for update;
  select size into v_size from :SCHEMA.event_partitioning where id for update;
  if v_size is null then
    raise exception 'the log is not partitioned: run partition_events first' using errcode = 'AN005';
  end if;
  select coalesce(max(position), 0) into v_head from :SCHEMA.events;
  -- Events that landed in the default partition (no range was ready) stay there: new ranges
  -- start after them.
  select greatest(coalesce(max(to_position), 1), v_head + 1) into v_last from :SCHEMA.event_partition_bounds();
  while v_last <= v_head + ahead::bigint * v_size
        or (select count(*) from :SCHEMA.event_partition_bounds() b where b.from_position > v_head) < ahead loop
    perform :SCHEMA.new_event_partition('events_p' || v_last, v_last, v_last + v_size);
    v_last := v_last + v_size;
    v_added := v_added + 1;
  end loop;
  return v_added;
end;
$$;
revoke all on function :SCHEMA.add_event_partitions(int) from public;

-- partition_events: turns the plain events table into a log partitioned by position range,
-- in place and without copying a row. The table becomes the first partition, covering up to
-- the first multiple of `partition_size` at or beyond the head; ranges after it and a default
-- partition are attached. Returns false when the log is partitioned already.
--
-- It holds the log lock and an ACCESS EXCLUSIVE lock on the table while it swaps the tables:
-- appends and reads wait for it. Its one cost that grows with the log is checking the first
-- partition's range (one sequential scan); every index is kept, none is rebuilt.
create function :SCHEMA.partition_events(partition_size bigint)
returns boolean
language plpgsql volatile
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
-- A long reader holding the log must not stall appends behind this DDL: give up instead.
set lock_timeout = '2s'
as $$
declare
  v_head  bigint;
  v_bound bigint;
  v_index record;
  v_grant record;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'partition_events must run at READ COMMITTED' using errcode = 'AN003';
  end if;
  if partition_size is null or partition_size < 1000 then
    raise exception 'partition_events: partition size must be at least 1000 events' using errcode = 'AN004';
  end if;
  -- Locked before it looks: of two callers at once, the second finds the work done.
  perform 1 from :SCHEMA.log_head where id for update;
  if (select c.relkind from pg_class c where c.oid = ':SCHEMA.events'::regclass) = 'p' then
    return false;
  end if;
  lock table :SCHEMA.events in access exclusive mode;
  select coalesce(max(position), 0) into v_head from :SCHEMA.events;
  v_bound := greatest((v_head + partition_size - 1) / partition_size, 1) * partition_size + 1;

  alter table :SCHEMA.events rename to events_p1;
  create table :SCHEMA.events (like :SCHEMA.events_p1 including all excluding indexes) partition by range (position);
  -- The parent's indexes: each index of the old table but its two unique keys, under a new
  -- name; attaching the old table adopts its own indexes for them instead of building new ones.
  for v_index in
    select pg_get_indexdef(i.indexrelid) as def, i.indisprimary
      from pg_index i
     where i.indrelid = ':SCHEMA.events_p1'::regclass
       and (i.indisprimary or not i.indisunique)
  loop
    if v_index.indisprimary then
      alter table :SCHEMA.events add constraint events_log_pkey primary key (position);
    else
      execute regexp_replace(v_index.def, '^CREATE INDEX (\S+) ON \S+ USING ',
                             'CREATE INDEX \1_log ON :SCHEMA.events USING ');
    end if;
  end loop;
  -- Row triggers are cloned onto every partition, so they need names of their own (the first
  -- partition keeps its own too).
  create trigger events_log_reject_update_delete before update or delete on :SCHEMA.events
    for each row execute function :SCHEMA.reject_event_change();
  create trigger events_log_reject_truncate before truncate on :SCHEMA.events
    for each statement execute function :SCHEMA.reject_event_change();
  -- Who may read the log may read the new table (privileges are checked on the parent only).
  for v_grant in
    select a.privilege_type, a.grantee
      from pg_class c, aclexplode(c.relacl) a
     where c.oid = ':SCHEMA.events_p1'::regclass and a.grantee <> c.relowner
  loop
    execute format('grant %s on table :SCHEMA.events to %s', v_grant.privilege_type,
                   case when v_grant.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(v_grant.grantee)) end);
  end loop;

  execute format('alter table :SCHEMA.events_p1 add constraint events_p1_range_check check (position >= 1 and position < %s)',
                 v_bound);
  execute format('alter table :SCHEMA.events attach partition :SCHEMA.events_p1 for values from (1) to (%s)', v_bound);
  perform :SCHEMA.new_event_partition('events_default', null, null);
  insert into :SCHEMA.event_partitioning (size) values (partition_size);
  perform :SCHEMA.add_event_partitions(1);
  return true;
end;
$$;
revoke all on function :SCHEMA.partition_events(bigint) from public;

-- detach_event_partition: takes a full partition, sealed past its end, out of the log, when
-- every event in it is gone for good (its stream tombstoned, or the event below its stream's
-- truncate_before) and no stream that may take appends again has its last event in it (its
-- version would start over). Records the range in reclaimed_ranges; the table stays, detached, for the
-- owner to dump and drop. Returns the range recorded.
--
-- Under the log lock, so no append or lifecycle change runs between the check and the detach.
-- Refused (AN006) with the reason: not a range partition, not full, not sealed past its end,
-- holding events not gone for good, or a live stream's last event (counted, with an example).
-- The caller checks the range's events against their seals first and records the detach as
-- an event in `$lifecycle` in the same transaction (packages/core/src/partitions/).
create function :SCHEMA.detach_event_partition(partition_name text, detach_actor text, detach_reason text)
returns table (from_position bigint, to_position bigint, event_count bigint, log_hash bytea)
language plpgsql volatile
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
-- A long reader holding the log must not stall appends behind this DDL: give up instead.
set lock_timeout = '2s'
as $$
#variable_conflict use_column
declare
  v_from    bigint;
  v_to      bigint;
  v_head    bigint;
  v_sealed  bigint;
  v_count   bigint;
  v_visible bigint;
  v_example text;
  v_hash    bytea;
  v_grantee oid;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'detach_event_partition must run at READ COMMITTED' using errcode = 'AN003';
  end if;
  if partition_name is null or detach_actor is null or detach_reason is null
     or length(detach_actor) = 0 or length(detach_reason) = 0 then
    raise exception 'detach_event_partition: a partition, an actor and a reason are required' using errcode = 'AN004';
  end if;
  perform 1 from :SCHEMA.log_head where id for update;
  select b.from_position, b.to_position into v_from, v_to
    from :SCHEMA.event_partition_bounds() b where b.name = partition_name;
  if not found then
    raise exception 'no partition % is attached to the log', partition_name using errcode = 'AN006';
  end if;
  if v_to is null then
    raise exception 'the default partition is not a range: it cannot be detached' using errcode = 'AN006';
  end if;
  select coalesce(max(position), 0) into v_head from :SCHEMA.events;
  if v_head < v_to then
    raise exception 'partition % (positions %..%) is not full: the head is at %', partition_name, v_from, v_to - 1, v_head
      using errcode = 'AN006';
  end if;
  select coalesce(max(position), 0) into v_sealed from :SCHEMA.seals;
  -- Sealed past its end, so the seal chain's tip (where the sealer goes on) stays in the log.
  if v_sealed < v_to then
    raise exception 'partition % is not sealed past its end (sealed up to %): seal first', partition_name, v_sealed
      using errcode = 'AN006';
  end if;
  -- Gone for good: the stream tombstoned, or the event below its truncate_before (raised only,
  -- never lowered). Archived is not: it can be unarchived and read again.
  execute format(
    'select count(*), count(*) filter (where not gone), min(stream_id || ''@'' || stream_version) filter (where not gone)
       from (select e.stream_id, e.stream_version,
                    coalesce(st.state = ''tombstoned'' or e.stream_version < st.truncate_before, false) as gone
               from :SCHEMA.%I e left join :SCHEMA.stream_states st on st.stream_id = e.stream_id) x',
    partition_name)
    into v_count, v_visible, v_example;
  if v_visible > 0 then
    raise exception 'partition % holds % event(s) not gone for good (for example %): tombstone or truncate their streams first',
      partition_name, v_visible, v_example using errcode = 'AN006';
  end if;
  -- A stream's version is its highest stored one: a stream that may take appends again must
  -- keep its last event in the log, or its versions would start over.
  execute format(
    'select count(*), min(x.stream_id)
       from (select e.stream_id, max(e.stream_version) as top from :SCHEMA.%I e group by e.stream_id) x
       left join :SCHEMA.stream_states st on st.stream_id = x.stream_id
      where coalesce(st.state, ''active'') <> ''tombstoned''
        and not exists (select 1 from :SCHEMA.events o where o.stream_id = x.stream_id and o.stream_version > x.top)',
    partition_name)
    into v_visible, v_example;
  if v_visible > 0 then
    raise exception 'partition % holds the last event of % stream(s) that may take appends again (for example %): tombstone them, or detach once they have later events',
      partition_name, v_visible, v_example using errcode = 'AN006';
  end if;
  select s.log_hash into v_hash from :SCHEMA.seals s where s.position = v_to - 1;

  insert into :SCHEMA.reclaimed_ranges (from_position, to_position, partition_name, event_count, log_hash, actor, reason)
  values (v_from, v_to - 1, partition_name, v_count, v_hash, detach_actor, detach_reason);
  execute format('alter table :SCHEMA.events detach partition :SCHEMA.%I', partition_name);
  -- Detached, it is no part of the log: only the owner reads it now.
  for v_grantee in
    select distinct a.grantee
      from pg_class c, aclexplode(c.relacl) a
     where c.oid = format('%s.%I', ':SCHEMA', partition_name)::regclass and a.grantee <> c.relowner
  loop
    execute format('revoke all on table :SCHEMA.%I from %s', partition_name,
                   case when v_grantee = 0 then 'public' else quote_ident(pg_get_userbyid(v_grantee)) end);
  end loop;
  return query select v_from, v_to - 1, v_count, v_hash;
end;
$$;
revoke all on function :SCHEMA.detach_event_partition(text, text, text) from public;
