/**
 * Who holds the log. An append holds the `log_head` row lock from reserving its positions to
 * its commit; meanwhile other appends wait and readers see the log up to before it. The
 * holder's transaction id is the `xmax` of the head row as we see it (the row is locked or
 * updated by an open transaction), and `pg_stat_activity` names its backend.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import type { LogHolder } from '../types.js';

export async function readLogHolders(db: SqlQueryable, schema: string): Promise<LogHolder[]> {
  const rows = await db.query<{
    pid: number;
    xact_start: Date | null;
    open_for_ms: number | string | null;
    state: string | null;
    query: string | null;
    application_name: string | null;
    waiting: number | string | bigint;
  }>(
    `select a.pid, a.xact_start, a.state, a.query, a.application_name,
            extract(epoch from (clock_timestamp() - a.xact_start)) * 1000 as open_for_ms,
            (select count(*) from pg_stat_activity w where a.pid = any(pg_blocking_pids(w.pid))) as waiting
       from "${schema}".log_head h
       join pg_stat_activity a on a.backend_xid = h.xmax
      where h.singleton and h.xmax <> '0'::xid`,
  );
  return rows.map((row) => ({
    pid: row.pid,
    transactionStartedAt: row.xact_start,
    openForMs: Math.round(Number(row.open_for_ms ?? 0)),
    state: row.state,
    query: row.query,
    applicationName: row.application_name,
    waiting: Number(row.waiting),
  }));
}
