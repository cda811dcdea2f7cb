-- 0002 — snapshots: a cache of a stream's state as one decider folds it, never the source of
-- truth. One row per (stream, decider); replaced as the stream grows. A snapshot whose
-- model_version differs from the decider's is ignored and rebuilt from events.

create table :SCHEMA.snapshots (
  stream_id      text        not null,
  decider        text        not null,
  model_version  integer     not null,
  stream_version bigint      not null,
  state          jsonb       not null,
  created_at     timestamptz not null default now(),
  constraint snapshots_pkey primary key (stream_id, decider),
  constraint snapshots_stream_version_check check (stream_version >= 1)
);
