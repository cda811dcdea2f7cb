-- 0005 — tamper evidence. A sealer walks the log in position order (behind the appends, never
-- in their way) and writes one seal per event: a SHA-256 over the event as stored (its jsonb
-- text, not a client's JSON) and over the previous seal of the same stream. One chain per
-- stream; `verify` recomputes them and names the first link that does not hold.
--
-- Seals are dense like positions: position 1..n sealed, n+1.. not yet. The sealer holds the
-- transaction-level advisory lock (hashtext('annals.seal'), hashtext(schema)) while it writes,
-- so two sealers never interleave; a second one waits, then continues after the first.

create table :SCHEMA.seals (
  position       bigint      not null,
  stream_id      text        not null,
  stream_version bigint      not null,
  hash           bytea       not null,
  sealed_at      timestamptz not null default now(),
  constraint seals_pkey primary key (position),
  constraint seals_stream_version_key unique (stream_id, stream_version),
  constraint seals_hash_check check (octet_length(hash) = 32)
);

-- Seals are evidence: like events they are never changed once written.
create trigger seals_reject_update_delete before update or delete on :SCHEMA.seals
  for each row execute function :SCHEMA.reject_event_change();
create trigger seals_reject_truncate before truncate on :SCHEMA.seals
  for each statement execute function :SCHEMA.reject_event_change();
