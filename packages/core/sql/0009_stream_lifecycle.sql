-- 0009 — stream lifecycle: soft delete, tombstone and archive, without rewriting history.
--
-- A stream's lifecycle state is a row of stream_states (a stream without a row is active):
--
-- * deleted (soft): versions below truncate_before (the stream's head + 1 when it was
--   deleted, as KurrentDB's $tb) are hidden from default reads. An append with `any` or
--   `no-stream` re-opens it (state back to active) at the next version: versions never
--   restart, the hidden events stay in the log and stay hidden.
-- * tombstoned: deleted for good. Every later append is refused; reads answer deleted.
-- * archived: kept and hidden from default reads (and from the live work of subscriptions
--   and projections); appends are refused until it is unarchived.
--
-- Nothing here changes a stored event: the state is mutable data about a stream, kept beside
-- it like its metadata. Who changed it and why is recorded as an event (`StreamDeleted`, ...)
-- in the stream `$lifecycle`, appended through append_events in the same transaction
-- (packages/core/src/lifecycle/lifecycle.ts).
--
-- Concurrency: change_stream_state takes the log lock (the row lock on log_head) before it
-- reads the stream's head and state, and append_events reads the state under the same lock.
-- So a delete racing an append to the stream is one order or the other: the append commits
-- first and the delete hides it too, or the delete commits first and the append sees a
-- deleted stream (re-opens it with `any` / `no-stream`, is refused with an exact version).
-- See docs/operations.md, "Stream lifecycle".

create table :SCHEMA.stream_states (
  stream_id       text        not null,
  state           text        not null,
  -- Versions below this are hidden from default reads (0: none).
  truncate_before bigint      not null default 0,
  changed_at      timestamptz not null,
  constraint stream_states_pkey primary key (stream_id),
  constraint stream_states_state_check check (state in ('active', 'deleted', 'tombstoned', 'archived')),
  constraint stream_states_truncate_before_check check (truncate_before >= 0)
);

-- The application role reads the states; only change_stream_state (as the owner) and
-- append_events (re-opening a soft-deleted stream) write them.
revoke all on table :SCHEMA.stream_states from public;

-- change_stream_state: one lifecycle change of one stream, under the log lock.
--
-- change_to: 'deleted', 'tombstoned', 'archived' or 'active' (unarchive).
-- change_expected: -1 any, -3 stream exists, >= 0 that exact version (as append_events).
--
-- Returns one row: outcome 'ok' (changed), 'unchanged' (already in that state: nothing to
-- record), 'conflict' (not at the expected version), 'tombstoned' (a tombstoned stream
-- changes no more) or 'deleted' (archive of a soft-deleted stream); the state before, the
-- stream's version and its truncate_before after.
create function :SCHEMA.change_stream_state(
  change_stream_id text,
  change_to        text,
  change_expected  bigint
) returns table (
  outcome         text,
  previous_state  text,
  stream_version  bigint,
  truncate_before bigint
)
language plpgsql volatile
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
set enable_seqscan = off
as $$
#variable_conflict use_column
declare
  v_version bigint;
  v_state   text;
  v_tb      bigint;
  v_next    text;
  v_next_tb bigint;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'change_stream_state must run at READ COMMITTED, not %', current_setting('transaction_isolation')
      using errcode = 'AN003';
  end if;
  if change_stream_id is null or change_to is null or change_expected is null
     or change_to not in ('deleted', 'tombstoned', 'archived', 'active')
     or change_expected < -3 or change_expected = -2 then
    raise exception 'change_stream_state: malformed change (%, %, %)', change_stream_id, change_to, change_expected
      using errcode = 'AN004';
  end if;

  -- The log lock, as append_events takes it: no append runs between the reads below and commit.
  perform 1 from :SCHEMA.log_head where id for update;

  select coalesce(max(e.stream_version), 0) into v_version from :SCHEMA.events e where e.stream_id = change_stream_id;
  select st.state, st.truncate_before into v_state, v_tb from :SCHEMA.stream_states st
   where st.stream_id = change_stream_id;
  v_state := coalesce(v_state, 'active');
  v_tb := coalesce(v_tb, 0);

  if v_state = 'tombstoned' then
    return query select 'tombstoned'::text, v_state, v_version, v_tb;
    return;
  end if;
  if not (change_expected = -1
       or (change_expected = -3 and v_version > 0)
       or (change_expected >= 0 and v_version = change_expected)) then
    return query select 'conflict'::text, v_state, v_version, v_tb;
    return;
  end if;

  v_next := change_to;
  v_next_tb := v_tb;
  if change_to in ('deleted', 'tombstoned') then
    v_next_tb := v_version + 1;
  end if;
  if v_state = change_to or (change_to = 'active' and v_state <> 'archived') then
    return query select 'unchanged'::text, v_state, v_version, v_tb;
    return;
  end if;
  if change_to = 'archived' and v_state = 'deleted' then
    return query select 'deleted'::text, v_state, v_version, v_tb;
    return;
  end if;

  insert into :SCHEMA.stream_states as st (stream_id, state, truncate_before, changed_at)
  values (change_stream_id, v_next, v_next_tb, clock_timestamp())
  on conflict (stream_id) do update
    set state = excluded.state, truncate_before = excluded.truncate_before, changed_at = excluded.changed_at;
  return query select 'ok'::text, v_state, v_version, v_next_tb;
end;
$$;

revoke all on function :SCHEMA.change_stream_state(text, text, bigint) from public;

-- append_events: as in 0007 and 0008 (read their comments), plus the lifecycle: a write to a
-- tombstoned or archived stream is refused, so is one with an exact version or `stream-exists`
-- to a soft-deleted stream, and a write with `any` or `no-stream` re-opens a soft-deleted one.
-- Same checks, SECURITY DEFINER, pinned search_path, enable_seqscan off and generic plans.
create or replace function :SCHEMA.append_events(
  append_no          int[],
  append_stream_id   text[],
  append_expected    bigint[],
  append_event_count int[],
  append_event_write int[],
  append_event_index int[],
  append_event_id    uuid[],
  append_event_type  text[],
  append_data        jsonb[],
  append_metadata    jsonb[]
) returns table (
  write_no        int,
  outcome         text,
  actual_version  bigint,
  stream_version  bigint,
  first_position  bigint,
  last_position   bigint,
  recorded_at     timestamptz
)
language plpgsql volatile
-- Runs as its owner, the migration role: the application role may not write to events itself.
-- The search path is fixed, so no caller's schema (nor pg_temp) can stand in for a table,
-- function or operator used here.
security definer
set search_path = pg_catalog, :SCHEMA, pg_temp
-- PL/pgSQL caches one generic plan per statement, made from the statistics of its first calls.
-- On a young table those say "tiny", the cached plan seq-scans, and every append then costs
-- O(table) until the next ANALYZE. Every statement here is an index lookup by design, so
-- seq scans are ruled out for this function alone.
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
-- The OUT columns (stream_version, ...) share names with table columns: SQL means the columns.
#variable_conflict use_column
declare
  v_writes  int := coalesce(array_length(append_stream_id, 1), 0);
  v_events  int := coalesce(cardinality(append_event_id), 0);
  v_appends int := coalesce((select max(a) from unnest(append_no) a), 0);
  v_wants   int[];
  v_indexes int[];
  v_outcome text[];
  v_ok      boolean[];
  v_actual  bigint[];
  v_state   text[];
  v_refused text[];
  v_first   bigint[];
  v_last    bigint[];
  v_version bigint[];
  v_time    timestamptz[];
  v_start   bigint;
  v_next    bigint;
  v_now     timestamptz;
  r         record;
begin
  if v_writes = 0 then
    return;
  end if;
  -- Under REPEATABLE READ or SERIALIZABLE the snapshot would predate the lock and miss the
  -- last append's positions.
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'append_events must run at READ COMMITTED, not %', current_setting('transaction_isolation')
      using errcode = 'AN003';
  end if;
  -- Every array is checked, as a caller other than the store could send anything: one
  -- dimension from 1, no NULL, the writes' arrays one length, the events' arrays another.
  if not (:SCHEMA.is_plain_array(append_no, v_writes)
      and :SCHEMA.is_plain_array(append_stream_id, v_writes)
      and :SCHEMA.is_plain_array(append_expected, v_writes)
      and :SCHEMA.is_plain_array(append_event_count, v_writes)
      and :SCHEMA.is_plain_array(append_event_write, v_events)
      and :SCHEMA.is_plain_array(append_event_index, v_events)
      and :SCHEMA.is_plain_array(append_event_id, v_events)
      and :SCHEMA.is_plain_array(append_event_type, v_events)
      and :SCHEMA.is_plain_array(append_data, v_events)
      and :SCHEMA.is_plain_array(append_metadata, v_events)) then
    raise exception 'append_events: malformed arrays (dimensions, lengths or NULLs)' using errcode = 'AN004';
  end if;
  -- Appends are numbered 1..n, each with a write; expected versions are known codes; every
  -- write has events, and the events are exactly, in order, events 1..count of write 1, then
  -- of write 2, ...: the stream versions they get are then dense.
  if (select min(a) from unnest(append_no) a) < 1
     or (select count(distinct a) from unnest(append_no) a) <> v_appends
     or (select min(x) from unnest(append_expected) x) < -3
     or (select min(c) from unnest(append_event_count) c) < 1
     or (select sum(c) from unnest(append_event_count) c) <> v_events then
    raise exception 'append_events: malformed writes (append numbers, expected versions or event counts)'
      using errcode = 'AN004';
  end if;
  select array_agg(c.w::int order by c.w, g.i), array_agg(g.i order by c.w, g.i)
    into v_wants, v_indexes
    from unnest(append_event_count) with ordinality as c(n, w)
    cross join lateral generate_series(1, c.n) as g(i);
  if v_wants is distinct from append_event_write or v_indexes is distinct from append_event_index then
    raise exception 'append_events: events must be numbered 1..count within each write, in write order'
      using errcode = 'AN004';
  end if;
  if (select count(distinct s) from unnest(append_stream_id) s) <> v_writes then
    raise exception 'append_events: a stream may appear in only one write per call' using errcode = 'AN002';
  end if;

  -- The log lock, held to commit: the one row of log_head, locked FOR UPDATE (docs/ordering.md).
  -- Only the owner may lock it. Every statement below runs with a snapshot taken after it.
  perform 1 from :SCHEMA.log_head where id for update;

  v_outcome := array_fill('ok'::text, array[v_appends]);
  v_ok      := array_fill(true, array[v_appends]);
  v_first   := array_fill(null::bigint, array[v_writes]);
  v_last    := array_fill(null::bigint, array[v_writes]);
  v_version := array_fill(null::bigint, array[v_writes]);
  v_time    := array_fill(null::timestamptz, array[v_writes]);
  v_refused := array_fill(null::text, array[v_writes]);

  -- Idempotency. The common case finds nothing and costs one index probe per id.
  if exists (select 1 from :SCHEMA.events e where e.event_id = any(append_event_id)) then
    for r in
      select append_no[i.w] as a,
             count(e.position) as found,
             count(*) as total,
             count(*) filter (where e.stream_id = append_stream_id[i.w]
                                and e.event_type = i.t and e.data = i.d) as same
        from unnest(append_event_write, append_event_id, append_event_type, append_data) as i(w, id, t, d)
        left join :SCHEMA.events e on e.event_id = i.id
       group by 1
      having count(e.position) > 0
    loop
      v_ok[r.a] := false;
      v_outcome[r.a] := case when r.same = r.total then 'duplicate' else 'id_reused' end;
    end loop;
    -- A duplicate returns what the original append returned.
    for r in
      select i.w, max(e.stream_version) as version, min(e.position) as first, max(e.position) as last,
             max(e.recorded_at) as at
        from unnest(append_event_write, append_event_id) as i(w, id)
        join :SCHEMA.events e on e.event_id = i.id
       where v_outcome[append_no[i.w]] = 'duplicate'
       group by i.w
    loop
      v_version[r.w] := r.version;
      v_first[r.w] := r.first;
      v_last[r.w] := r.last;
      v_time[r.w] := r.at;
    end loop;
  end if;

  -- Current versions and lifecycle states: one backward probe of (stream_id, stream_version)
  -- and one of stream_states' key per write. Read under the log lock, like the versions: a
  -- delete, tombstone or archive (change_stream_state) takes the same lock, so an append sees
  -- the state before or after it, never half of it.
  select array_agg(coalesce(
           (select max(e.stream_version) from :SCHEMA.events e where e.stream_id = w.s), 0) order by w.i),
         array_agg(coalesce(
           (select st.state from :SCHEMA.stream_states st where st.stream_id = w.s), 'active') order by w.i)
    into v_actual, v_state
    from unnest(append_stream_id) with ordinality as w(s, i);

  -- Lifecycle, then expected versions. One failed write fails its whole append: that write
  -- reports why ('tombstoned', 'archived', 'deleted' or 'conflict'), the append's others
  -- 'refused' (or 'conflict', as before). A soft-deleted stream takes `any` and `no-stream`
  -- (that re-opens it); an exact version or `stream-exists` is refused as 'deleted'.
  for i in 1..v_writes loop
    if v_ok[append_no[i]] then
      if v_state[i] = 'tombstoned' or v_state[i] = 'archived'
         or (v_state[i] = 'deleted' and append_expected[i] <> -1 and append_expected[i] <> -2) then
        v_ok[append_no[i]] := false;
        v_outcome[append_no[i]] := 'refused';
        v_refused[i] := v_state[i];
      elsif v_state[i] <> 'deleted' and not (
           append_expected[i] = -1
        or (append_expected[i] = -2 and v_actual[i] = 0)
        or (append_expected[i] = -3 and v_actual[i] > 0)
        or (append_expected[i] >= 0 and v_actual[i] = append_expected[i])) then
        v_ok[append_no[i]] := false;
        v_outcome[append_no[i]] := 'conflict';
      end if;
    end if;
  end loop;

  -- Positions: the writes that passed, in input order, after the last stored position.
  select coalesce(max(e.position), 0) + 1 into v_start from :SCHEMA.events e;
  v_next := v_start;
  for i in 1..v_writes loop
    if v_ok[append_no[i]] then
      v_first[i] := v_next;
      v_last[i] := v_next + append_event_count[i] - 1;
      v_version[i] := v_actual[i] + append_event_count[i];
      v_next := v_next + append_event_count[i];
    end if;
  end loop;

  if v_next > v_start then
    v_now := clock_timestamp();
    for i in 1..v_writes loop
      if v_ok[append_no[i]] then
        v_time[i] := v_now;
      end if;
    end loop;
    insert into :SCHEMA.events
      (position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at)
    select v_first[e.w] + e.idx - 1, append_stream_id[e.w], v_actual[e.w] + e.idx, e.id, e.t, e.d, e.m, v_now
      from unnest(append_event_write, append_event_index, append_event_id,
                  append_event_type, append_data, append_metadata)
           as e(w, idx, id, t, d, m)
     where v_ok[append_no[e.w]]
     order by 1;
    -- An append to a soft-deleted stream re-opens it; its hidden events stay hidden.
    if 'deleted' = any(v_state) then
      update :SCHEMA.stream_states st
         set state = 'active', changed_at = v_now
        from unnest(append_stream_id) with ordinality as w(s, i)
       where st.stream_id = w.s and v_state[w.i] = 'deleted' and v_ok[append_no[w.i]];
    end if;
    -- One notification per transaction, carrying the last position.
    perform pg_notify(:CHANNEL, (v_next - 1)::text);
  end if;

  return query
    select w.i::int, coalesce(v_refused[w.i], v_outcome[w.a]), v_actual[w.i], v_version[w.i], v_first[w.i], v_last[w.i], v_time[w.i]
      from unnest(append_no) with ordinality as w(a, i);
end;
$$;

