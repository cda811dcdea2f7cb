-- 0013 — where the append coordinator of this log listens (docs/ordering.md, "Appends from many
-- processes"). At most one row. The process holding the coordinator's advisory lock writes it
-- on the connection that holds the lock, so `backend_pid` names that lock's session: a reader
-- follows the row only while pg_locks shows that backend holding the lock, so a row left behind
-- by a holder that died is never followed. The token is what a forwarding process presents; the
-- reader role may not read this table (see rolesSql).

create table :SCHEMA.append_coordinator (
  id          boolean     not null default true,
  address     text        not null,
  token       text        not null,
  backend_pid int         not null,
  since       timestamptz not null default now(),
  constraint append_coordinator_pkey primary key (id),
  constraint append_coordinator_one_row check (id),
  constraint append_coordinator_address_check check (length(address) between 1 and 300),
  constraint append_coordinator_token_check check (length(token) = 64)
);
