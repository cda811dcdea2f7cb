-- 0006 — erasure without rewriting history (crypto-shredding). Personal fields of an event are
-- stored encrypted with a key of their data subject (a customer, a user); the event's
-- metadata names the subject and the encrypted fields under "$personal". Forgetting a subject
-- deletes its key: the one deliberate DELETE of the schema, in a table of its own. The events
-- stay as they are (their seals still verify); their personal fields read as redacted.
--
-- Backups keep deleted keys until they expire: keep their retention within the erasure deadline.

create table :SCHEMA.subject_keys (
  subject_id text        not null,
  key        bytea       not null,
  created_at timestamptz not null default now(),
  constraint subject_keys_pkey primary key (subject_id),
  constraint subject_keys_key_check check (octet_length(key) = 32)
);

-- Which streams hold a subject's personal data, written with the append. Forgetting drops the
-- snapshots of those streams; a snapshot is only written while every subject of its stream
-- still has its key (see queries/snapshots.ts), so none with decrypted data outlives an erasure.
create table :SCHEMA.subject_streams (
  subject_id text not null,
  stream_id  text not null,
  constraint subject_streams_pkey primary key (subject_id, stream_id)
);
create index subject_streams_stream_idx on :SCHEMA.subject_streams (stream_id);

-- Every event holding a subject's personal data, in log order: what forgetting must reach
-- (snapshots of those streams) and what a subject access request lists.
create index events_subject_position_idx on :SCHEMA.events ((metadata #>> '{$personal,subject}'), position)
  where metadata ? '$personal';
