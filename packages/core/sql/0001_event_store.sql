-- 0001 — the event store: the append-only events table, stream metadata and the append
-- function. Before this file runs, `:SCHEMA` is replaced by the quoted schema name,
-- `:CHANNEL` by the NOTIFY channel literal and `:LOG_LOCK` by the two keys of the log's
-- advisory lock; nothing else is templated.
--
-- Ordering (DESIGN.md invariant 3). An append takes one transaction-level advisory lock, the
-- log lock, before it checks versions and draws positions, and holds it until it commits. So
-- appends draw positions one transaction at a time, in the order they commit: the next
-- position is max(position) + 1 as seen under the lock, and a rollback gives its positions
-- back. PostgreSQL makes a committing transaction visible before it releases its locks, so
-- the next append draws positions only once every lower one is visible. What any snapshot
-- sees of the log is therefore always a gap-free prefix 1..n, and a reader paging with
-- `position > checkpoint` can never skip an event, nor see one twice.
--
-- The price is that appends to one store commit one after another. The client coalesces
-- concurrent appends into one call of `append_events` (one transaction, one commit) to win
-- that back. Under the lock, stream versions need no row locks of their own: nobody else
-- can append meanwhile. See docs/ordering.md for the alternatives and why not them.

create table :SCHEMA.events (
  position       bigint      not null,
  stream_id      text        not null,
  stream_version bigint      not null,
  event_id       uuid        not null,
  event_type     text        not null,
  data           jsonb       not null,
  metadata       jsonb       not null,
  recorded_at    timestamptz not null,
  -- The category is the stream id up to its first '-': "account-42" is in "account".
  category       text        not null generated always as (split_part(stream_id, '-', 1)) stored,
  constraint events_pkey primary key (position),
  constraint events_stream_version_key unique (stream_id, stream_version),
  constraint events_event_id_key unique (event_id),
  constraint events_position_check check (position >= 1),
  constraint events_stream_version_check check (stream_version >= 1)
);

-- Read paths: by position (pkey), a stream by version (unique key), a category or an event
-- type in global order (below). Each is a range scan whose cost does not grow with the table.
create index events_category_position_idx on :SCHEMA.events (category, position);
create index events_type_position_idx on :SCHEMA.events (event_type, position);

-- Invariant 1: stored events never change. The trigger stops UPDATE, DELETE and TRUNCATE for
-- every role that is subject to triggers; deployments also grant the application role only
-- SELECT and INSERT on this table (docs/operations.md).
create function :SCHEMA.reject_event_change() returns trigger
language plpgsql as $$
begin
  raise exception 'events are immutable: % on %.% is not allowed', tg_op, tg_table_schema, tg_table_name
    using errcode = 'AN001';
end;
$$;

create trigger events_reject_update_delete before update or delete on :SCHEMA.events
  for each row execute function :SCHEMA.reject_event_change();
create trigger events_reject_truncate before truncate on :SCHEMA.events
  for each statement execute function :SCHEMA.reject_event_change();

-- Stream metadata: the one mutable thing about a stream, kept beside it. A stream's version
-- is not stored here: it is max(stream_version) of its events, read through the unique index.
create table :SCHEMA.streams (
  stream_id  text        not null,
  metadata   jsonb       not null default '{}',
  updated_at timestamptz not null default now(),
  constraint streams_pkey primary key (stream_id)
);

-- append_events: one or more appends in one transaction, each with its own outcome.
--
-- An append is one or more writes (a write = events for one stream with an expected version);
-- its writes succeed or fail together. Arrays describe the writes (append_no, stream_id,
-- expected, event_count) and, flattened in write order, the events (write index, index within
-- the write, id, type, data, metadata). A stream appears in at most one write per call.
-- expected: -1 any, -2 no stream, -3 stream exists, >= 0 that exact version.
--
-- Returns one row per write: outcome 'ok', 'duplicate' (every event id already stored with the
-- same stream, type and data: the original result is returned and nothing is stored),
-- 'conflict' (actual_version names the version found) or 'id_reused' (some event id exists
-- with other content, or only some of the ids exist).
--
-- Steps: take the log lock; look the event ids up (idempotency); read stream versions and
-- check the expected ones; draw positions and insert the events of the appends that passed;
-- one NOTIFY. Nothing is drawn for an append that fails.
create function :SCHEMA.append_events(
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
  v_appends int := coalesce((select max(a) from unnest(append_no) a), 0);
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
  if (select count(distinct s) from unnest(append_stream_id) s) <> v_writes then
    raise exception 'append_events: a stream may appear in only one write per call' using errcode = 'AN002';
  end if;

  -- The log lock, held to commit. Every statement below runs with a snapshot taken after it.
  perform pg_advisory_xact_lock(:LOG_LOCK);

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
