-- 0008 — append_events plans once per connection, not once per call.
--
-- Profiled (perf on the backend), a one-event append_events call cost about 1 ms of backend CPU
-- against 0.23 ms for a one-row INSERT, and most of it was planning, not work:
--
-- * is_plain_array, a SQL function with its own SET search_path, cannot be inlined, and
--   PostgreSQL parses and plans the body of a SQL function that is not inlined on every call:
--   ten checks, ten parses and plans per append (about a fifth of the backend's time).
--   Without the SET clause it is inlined into append_events' expressions, which are planned
--   under append_events' own pinned search_path; the functions it calls are schema-qualified,
--   so it means the same under any search_path a direct caller might have.
-- * PL/pgSQL keeps a cached plan per statement, but the plan cache replans a statement with
--   parameters for every call as long as a custom plan looks cheaper than the generic one (on
--   these index probes it always does): another fifth. Every statement in append_events is an
--   index lookup by design (and enable_seqscan is off in it), so the generic plan is the plan:
--   force_generic_plan makes each statement plan once per connection.
--
-- Together they halve the backend CPU of an append call (about 1.0 ms to 0.5 ms for one event);
-- docs/performance.md has the figures. Nothing about what append_events checks or does changes.

create or replace function :SCHEMA.is_plain_array(a anyarray, n int) returns boolean
language sql immutable
as $$
  select case
    when a is null then false
    when n = 0 then pg_catalog.cardinality(a) = 0
    else pg_catalog.array_ndims(a) = 1 and pg_catalog.array_lower(a, 1) = 1
         and pg_catalog.cardinality(a) = n and pg_catalog.array_position(a, null) is null
  end
$$;

alter function :SCHEMA.append_events(
  int[], text[], bigint[], int[], int[], int[], uuid[], text[], jsonb[], jsonb[]
) set plan_cache_mode = force_generic_plan;
