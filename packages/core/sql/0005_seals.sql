-- 0005 — tamper evidence. A sealer walks the log in position order (behind the appends, never
-- in their way) and writes one seal per event: a SHA-256 over the event as stored (its jsonb
-- text, not a client's JSON) and over the previous seal of the same stream. One chain per
-- stream; `verify` recomputes them and names the first link that does not hold.
--
-- Each seal also carries a log hash: SHA-256 over the previous position's log hash and its own
-- hash, one chain over the whole log. The last log hash (`verify`'s headHash) thus stands for
-- every seal before it: kept outside the database, it shows any later rewrite, including a
-- truncated tail.
--
-- Seals are dense like positions: position 1..n sealed, n+1.. not yet. The sealer holds the
-- transaction-level advisory lock (hashtext('annals.seal'), hashtext(schema)) while it writes,
-- so two sealers never interleave; a second one waits, then continues after the first.

create table :SCHEMA.seals (
  position       bigint      not null,
  stream_id      text        not null,
  stream_version bigint      not null,
  hash           bytea       not null,
  log_hash       bytea       not null,
  sealed_at      timestamptz not null default now(),
  constraint seals_pkey primary key (position),
  constraint seals_stream_version_key unique (stream_id, stream_version),
  constraint seals_hash_check check (octet_length(hash) = 32 and octet_length(log_hash) = 32)
);

-- Seals are evidence: like events they are never changed once written.
create trigger seals_reject_update_delete before update or delete on :SCHEMA.seals
  for each row execute function :SCHEMA.reject_event_change();
create trigger seals_reject_truncate before truncate on :SCHEMA.seals
  for each statement execute function :SCHEMA.reject_event_change();

-- The canonical form of an event's time is its microseconds since 1970 from extract(), exact
-- (numeric) from PostgreSQL 14 on.
do $$
begin
  if current_setting('server_version_num')::int < 140000 then
    raise exception 'Annals needs PostgreSQL 14 or newer (found %)', current_setting('server_version');
  end if;
end;
$$;
