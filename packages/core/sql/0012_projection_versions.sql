-- 0012 — which version of a projection readers are served. A new version of a projection is a
-- new read model, built beside the serving one (its own checkpoint, its own tables); a
-- rebuild that reaches the head switches readers to it by writing this row, and readers ask
-- which version to read. A projection without a row serves the version it was run with.

create table :SCHEMA.projection_versions (
  name        text        not null,
  version     int         not null,
  switched_at timestamptz not null default now(),
  switched_by text,
  constraint projection_versions_pkey primary key (name),
  constraint projection_versions_version_check check (version >= 1)
);
