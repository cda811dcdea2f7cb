-- 0007 — least privilege: the log is written only through append_events, and only
-- append_events can take the log lock.
--
-- Before, any role that could connect could take the log's advisory lock and stall every
-- append, and a role with INSERT on events could insert at any position (a hole in the log:
-- DESIGN.md invariant 3) or call append_events with arrays the store would never send. Now:
--
-- * The log lock is a row lock on the one row of log_head (see docs/ordering.md). Locking a
--   row needs UPDATE on its table, which no role but the owner has.
-- * append_events is SECURITY DEFINER, owned by the role that migrates (the schema owner), with
--   a fixed search_path, and checks every array it is given. EXECUTE on it is revoked from
--   PUBLIC: grant it to the application role (`annals roles` prints the grants).
-- * INSERT, UPDATE, DELETE and TRUNCATE on events are revoked from every role but the owner:
--   events enter the log only through append_events.
--
-- Migrated by a superuser, the function runs as that superuser; by a dedicated owner role, as
-- that role. Either way it does only what its body says: it builds no SQL from its input, and
-- its search_path is pinned. A dedicated owner role is the better choice (docs/operations.md).

create table :SCHEMA.log_head (
  id boolean not null default true,
  constraint log_head_pkey primary key (id),
  constraint log_head_one_row check (id)
);
insert into :SCHEMA.log_head (id) values (true);

-- One dimension, numbered from 1, of length n, without NULL (an empty array for n = 0).
create function :SCHEMA.is_plain_array(a anyarray, n int) returns boolean
language sql immutable
set search_path = pg_catalog
as $$
  select case
    when a is null then false
    when n = 0 then cardinality(a) = 0
    else array_ndims(a) = 1 and array_lower(a, 1) = 1 and cardinality(a) = n and array_position(a, null) is null
  end
$$;

-- append_events: as in 0001 (read its comment there), plus the checks of its arrays, the row
-- lock instead of the advisory lock, SECURITY DEFINER and a fixed search_path.
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

  -- Current versions: one backward probe of (stream_id, stream_version) per write.
  select array_agg(coalesce(
           (select max(e.stream_version) from :SCHEMA.events e where e.stream_id = w.s), 0) order by w.i)
    into v_actual
    from unnest(append_stream_id) with ordinality as w(s, i);

  -- Expected versions. One failed write fails its whole append.
  for i in 1..v_writes loop
    if v_ok[append_no[i]] and not (
         append_expected[i] = -1
      or (append_expected[i] = -2 and v_actual[i] = 0)
      or (append_expected[i] = -3 and v_actual[i] > 0)
      or (append_expected[i] >= 0 and v_actual[i] = append_expected[i])) then
      v_ok[append_no[i]] := false;
      v_outcome[append_no[i]] := 'conflict';
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
    -- One notification per transaction, carrying the last position.
    perform pg_notify(:CHANNEL, (v_next - 1)::text);
  end if;

  return query
    select w.i::int, v_outcome[w.a], v_actual[w.i], v_version[w.i], v_first[w.i], v_last[w.i], v_time[w.i]
      from unnest(append_no) with ordinality as w(a, i);
end;
$$;

revoke all on function :SCHEMA.append_events(int[], text[], bigint[], int[], int[], int[], uuid[], text[], jsonb[], jsonb[])
  from public;
revoke all on table :SCHEMA.log_head from public;

-- Direct writes to the log, from every role but the owner (grants of the old documentation
-- included). PUBLIC is grantee 0.
do $$
declare
  r record;
begin
  for r in
    select distinct c.oid::regclass as rel, a.grantee
      from pg_class c
      cross join lateral aclexplode(c.relacl) a
     where c.oid in (':SCHEMA.events'::regclass, ':SCHEMA.log_head'::regclass)
       and a.grantee <> c.relowner
       and a.privilege_type in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
  loop
    execute format('revoke insert, update, delete, truncate on table %s from %s', r.rel,
                   case when r.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(r.grantee)) end);
  end loop;
end;
$$;
