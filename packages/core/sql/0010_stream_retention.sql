-- 0010 — stream retention: maxAge, maxCount and truncateBefore hide a stream's older events
-- from its reads, as KurrentDB's $maxAge, $maxCount and $tb do, without removing any.
--
-- They are columns of stream_states (0009). truncate_before is the same column a soft delete
-- sets: raised by set_stream_retention (never lowered, never past the stream's head + 1), it
-- hides versions below it from every default read, the global log included. max_count (keep
-- the last n versions) and max_age_seconds (keep the events recorded in the last n seconds)
-- are moving windows: they hide from reads of the stream (readStream, command loads, time
-- travel), not from the global log, whose readers page by position and must see the same
-- events whenever they read (docs/operations.md, "Stream lifecycle").
--
-- set_stream_retention takes the log lock, like change_stream_state, and the caller records
-- the change as a `StreamRetentionSet` event in `$lifecycle` in the same transaction.

alter table :SCHEMA.stream_states
  add column max_count bigint,
  add column max_age_seconds bigint,
  add constraint stream_states_max_count_check check (max_count >= 1),
  add constraint stream_states_max_age_check check (max_age_seconds >= 1);

-- retention_max_count / retention_max_age: the new values (NULL: none) when the matching
-- retention_set_* is true, else kept. retention_truncate_before: raise truncate_before to it
-- (NULL: keep). Returns outcome 'ok', 'unchanged', 'tombstoned' (a tombstoned stream changes
-- no more) or 'beyond' (truncate_before past the head + 1); the values after.
create function :SCHEMA.set_stream_retention(
  retention_stream_id       text,
  retention_set_count       boolean,
  retention_max_count       bigint,
  retention_set_age         boolean,
  retention_max_age         bigint,
  retention_truncate_before bigint
) returns table (
  outcome         text,
  state           text,
  stream_version  bigint,
  truncate_before bigint,
  max_count       bigint,
  max_age_seconds bigint
)
language plpgsql volatile
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
  v_version bigint;
  v_row     :SCHEMA.stream_states;
  v_tb      bigint;
  v_count   bigint;
  v_age     bigint;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'set_stream_retention must run at READ COMMITTED, not %', current_setting('transaction_isolation')
      using errcode = 'AN003';
  end if;
  if retention_stream_id is null or retention_set_count is null or retention_set_age is null
     or retention_max_count < 1 or retention_max_age < 1 or retention_truncate_before < 0 then
    raise exception 'set_stream_retention: malformed retention' using errcode = 'AN004';
  end if;

  perform 1 from :SCHEMA.log_head where id for update;

  select coalesce(max(e.stream_version), 0) into v_version from :SCHEMA.events e where e.stream_id = retention_stream_id;
  select * into v_row from :SCHEMA.stream_states st where st.stream_id = retention_stream_id;
  if v_row.state = 'tombstoned' then
    return query select 'tombstoned'::text, v_row.state, v_version, v_row.truncate_before, v_row.max_count,
                        v_row.max_age_seconds;
    return;
  end if;
  if retention_truncate_before > v_version + 1 then
    return query select 'beyond'::text, coalesce(v_row.state, 'active'), v_version,
                        coalesce(v_row.truncate_before, 0), v_row.max_count, v_row.max_age_seconds;
    return;
  end if;
  v_tb := greatest(coalesce(v_row.truncate_before, 0), coalesce(retention_truncate_before, 0));
  v_count := case when retention_set_count then retention_max_count else v_row.max_count end;
  v_age := case when retention_set_age then retention_max_age else v_row.max_age_seconds end;
  if v_tb = coalesce(v_row.truncate_before, 0) and v_count is not distinct from v_row.max_count
     and v_age is not distinct from v_row.max_age_seconds then
    return query select 'unchanged'::text, coalesce(v_row.state, 'active'), v_version, v_tb, v_count, v_age;
    return;
  end if;

  insert into :SCHEMA.stream_states as st (stream_id, state, truncate_before, changed_at, max_count, max_age_seconds)
  values (retention_stream_id, 'active', v_tb, clock_timestamp(), v_count, v_age)
  on conflict (stream_id) do update
    set truncate_before = excluded.truncate_before, changed_at = excluded.changed_at,
        max_count = excluded.max_count, max_age_seconds = excluded.max_age_seconds;
  return query select 'ok'::text, coalesce(v_row.state, 'active'), v_version, v_tb, v_count, v_age;
end;
$$;

revoke all on function :SCHEMA.set_stream_retention(text, boolean, bigint, boolean, bigint, bigint) from public;
