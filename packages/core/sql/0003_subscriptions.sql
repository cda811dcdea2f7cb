-- 0003 — subscriptions and projections: durable checkpoints and parked events. Both mutable,
-- so both beside the log, never in it.

-- Where each named subscription or projection is in the global log. A projection updates its
-- row in the same transaction as its read-model writes (compare-and-set on position).
create table :SCHEMA.checkpoints (
  name       text        not null,
  position   bigint      not null default 0,
  updated_at timestamptz not null default now(),
  constraint checkpoints_pkey primary key (name),
  constraint checkpoints_position_check check (position >= 0)
);

-- Events a subscription gave up on after its retries, with the last error. Replaying one
-- delivers it again and, on success, removes it.
create table :SCHEMA.parked_events (
  subscription text        not null,
  position     bigint      not null,
  event_id     uuid        not null,
  attempts     integer     not null,
  error        text        not null,
  parked_at    timestamptz not null default now(),
  constraint parked_events_pkey primary key (subscription, position)
);

-- Members of consumer groups, alive while they renew heartbeat_at. Each live member takes
-- the partitions p with p mod (live members) = its rank among them.
create table :SCHEMA.group_members (
  group_name   text        not null,
  member_id    uuid        not null,
  heartbeat_at timestamptz not null default now(),
  constraint group_members_pkey primary key (group_name, member_id)
);

-- Document-style read models: JSON documents by collection and id, written by projections
-- in their batch transactions.
create table :SCHEMA.documents (
  collection text        not null,
  id         text        not null,
  data       jsonb       not null,
  updated_at timestamptz not null default now(),
  constraint documents_pkey primary key (collection, id)
);
