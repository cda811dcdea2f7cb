-- 0004 — audit read paths: everything one actor did, and every event of one request (its
-- correlation id), each in log order through an index of its own. Time ranges need no index:
-- recorded_at never decreases along positions, so a time maps to a position by binary search.

create index events_actor_position_idx on :SCHEMA.events ((metadata ->> 'actor'), position)
  where metadata ? 'actor';
create index events_correlation_position_idx on :SCHEMA.events ((metadata ->> 'correlationId'), position)
  where metadata ? 'correlationId';
