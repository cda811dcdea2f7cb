-- 0001 — the event store: the append-only events table, stream heads, the log head and the
-- append function. `:SCHEMA` is replaced by the quoted schema name and `:CHANNEL` by the
-- NOTIFY channel literal before this file runs; nothing else is templated.
--
-- Ordering (DESIGN.md invariant 3). Positions come from one counter row, `log_head`, that an
-- append bumps with UPDATE right before it inserts and holds (row lock) until it commits. So
-- appends reserve positions one transaction at a time, in the order they commit, and a
-- rollback gives its positions back. PostgreSQL makes a transaction visible before it releases
-- its row locks, so the next append can only draw positions once every lower one is visible.
-- What any snapshot sees of the log is therefore always a prefix 1..n with no hole, and a
-- reader paging with `position > checkpoint` can never skip an event. We pay with appends that
-- reserve positions one transaction at a time; the client coalesces concurrent appends into
-- one call of `append_events` to win that back. The lock is taken after the concurrency checks
-- and held only for the insert and the commit. See docs/ordering.md.

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

-- Stream heads: the mutable side of a stream. `version` is the stream's last version (0 while
-- the stream has no event); its row is the lock that serializes appends to one stream.
create table :SCHEMA.streams (
  stream_id  text        not null,
  version    bigint      not null default 0,
  metadata   jsonb       not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint streams_pkey primary key (stream_id),
  constraint streams_version_check check (version >= 0)
);

-- The log head: the last position handed out. One row; see the ordering note at the top.
create table :SCHEMA.log_head (
  singleton boolean not null default true,
  position  bigint  not null,
  constraint log_head_pkey primary key (singleton),
  constraint log_head_singleton_check check (singleton)
);
insert into :SCHEMA.log_head (singleton, position) values (true, 0);

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
-- Steps, in this order so that nothing is reserved for an append that will not be stored:
-- 1. idempotency look-up of the event ids; 2. lock the stream heads in stream id order (so two
-- calls never deadlock), creating missing ones; 3. check expected versions; 4. reserve
-- positions on the log head; 5. insert events, move stream heads; 6. one NOTIFY.
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
  last_position   bigint
)
language plpgsql volatile as $$
-- The OUT columns (stream_version, ...) share names with table columns: SQL means the columns.
#variable_conflict use_column
declare
  v_writes      int := coalesce(array_length(append_stream_id, 1), 0);
  v_appends     int := coalesce((select max(a) from unnest(append_no) a), 0);
  v_outcome     text[];
  v_ok          boolean[];
  v_actual      bigint[];
  v_first       bigint[];
  v_last        bigint[];
  v_version     bigint[];
  v_created     text[];
  v_count       bigint;
  v_base        bigint;
  v_now         timestamptz;
  r             record;
begin
  if v_writes = 0 then
    return;
  end if;
  if (select count(distinct s) from unnest(append_stream_id) s) <> v_writes then
    raise exception 'append_events: a stream may appear in only one write per call' using errcode = 'AN002';
  end if;

  v_outcome := array_fill('ok'::text, array[v_appends]);
  v_ok      := array_fill(true, array[v_appends]);
  v_actual  := array_fill(0::bigint, array[v_writes]);
  v_first   := array_fill(null::bigint, array[v_writes]);
  v_last    := array_fill(null::bigint, array[v_writes]);
  v_version := array_fill(null::bigint, array[v_writes]);

  -- 1. Idempotency. The common case finds nothing and costs one index probe per id.
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
      select i.w, max(e.stream_version) as version, min(e.position) as first, max(e.position) as last
        from unnest(append_event_write, append_event_id) as i(w, id)
        join :SCHEMA.events e on e.event_id = i.id
       where v_outcome[append_no[i.w]] = 'duplicate'
       group by i.w
    loop
      v_version[r.w] := r.version;
      v_first[r.w] := r.first;
      v_last[r.w] := r.last;
    end loop;
  end if;

  -- 2. Lock the heads of the streams still to write, in stream id order. Missing heads are
  -- inserted first (in the same order); concurrent creators of one head wait on each other.
  with inserted as (
    insert into :SCHEMA.streams (stream_id)
    select w.s
      from unnest(append_stream_id, append_no) as w(s, a)
     where v_ok[w.a]
     order by w.s
    on conflict (stream_id) do nothing
    returning stream_id
  )
  select coalesce(array_agg(stream_id), '{}') into v_created from inserted;

  for r in
    select w.i, h.version
      from unnest(append_stream_id, append_no) with ordinality as w(s, a, i)
      join (select s.stream_id, s.version
              from :SCHEMA.streams s
             where s.stream_id = any(append_stream_id)
             order by s.stream_id
               for update) h on h.stream_id = w.s
     where v_ok[w.a]
  loop
    v_actual[r.i] := r.version;
  end loop;

  -- 3. Expected versions. One failed write fails its whole append.
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

  select count(*) into v_count from unnest(append_event_write) w where v_ok[append_no[w]];

  if v_count > 0 then
    -- 4. Reserve positions. From here to commit this transaction holds the log head.
    update :SCHEMA.log_head set position = position + v_count
     where singleton
    returning position - v_count into v_base;
    v_now := clock_timestamp();

    -- 5. Insert the events of the successful appends, positions in input order.
    for r in
      with ins as (
        insert into :SCHEMA.events
          (position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at)
        select v_base + row_number() over (order by e.ord),
               append_stream_id[e.w], v_actual[e.w] + e.idx, e.id, e.t, e.d, e.m, v_now
          from unnest(append_event_write, append_event_index, append_event_id,
                      append_event_type, append_data, append_metadata)
               with ordinality as e(w, idx, id, t, d, m, ord)
         where v_ok[append_no[e.w]]
        returning position, stream_id, stream_version
      )
      select w.i, min(ins.position) as first, max(ins.position) as last, max(ins.stream_version) as version
        from ins
        join unnest(append_stream_id) with ordinality as w(s, i) on w.s = ins.stream_id
       group by w.i
    loop
      v_first[r.i] := r.first;
      v_last[r.i] := r.last;
      v_version[r.i] := r.version;
    end loop;

    update :SCHEMA.streams s
       set version = w.version, updated_at = v_now
      from unnest(append_stream_id, v_version, append_no) as w(s, version, a)
     where s.stream_id = w.s and v_ok[w.a];

    -- 6. One notification per transaction, carrying the last position.
    perform pg_notify(:CHANNEL, (v_base + v_count)::text);
  end if;

  -- Heads this call created for appends that then failed are removed again.
  if cardinality(v_created) > 0 then
    delete from :SCHEMA.streams s
     using unnest(append_stream_id, append_no) as w(s, a)
     where s.stream_id = w.s and not v_ok[w.a] and s.stream_id = any(v_created);
  end if;

  return query
    select w.i::int, v_outcome[w.a], v_actual[w.i], v_version[w.i], v_first[w.i], v_last[w.i]
      from unnest(append_no) with ordinality as w(a, i);
end;
$$;
