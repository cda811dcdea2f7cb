/**
 * Who holds the log. An append holds the log lock (a row lock on the one row of `log_head`,
 * see sql/0007_least_privilege.sql and docs/ordering.md) from drawing positions to its commit;
 * meanwhile other appends wait and readers see the log up to before it. The row's `xmax` is
 * the id of the transaction that locked it last: while that transaction is open it holds the
 * granted lock on its own id in `pg_locks`, and waiters wait on that id (the first of them) or
 * on the row (the others).
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
    `with head as (select xmax as locker from "${schema}".log_head),
     holder as (
       select distinct l.pid
         from pg_locks l, head
        where l.locktype = 'transactionid' and l.granted and l.transactionid = head.locker),
     waiter as (
       select distinct l.pid
         from pg_locks l, head
        where not l.granted
          and ((l.locktype = 'transactionid' and l.transactionid = head.locker)
            or (l.locktype = 'tuple' and l.relation = '"${schema}".log_head'::regclass
                and l.database = (select oid from pg_database where datname = current_database()))))
     select a.pid, a.xact_start, a.state, a.query, a.application_name,
            extract(epoch from (clock_timestamp() - a.xact_start)) * 1000 as open_for_ms,
            (select count(*) from waiter) as waiting
       from holder h
       join pg_stat_activity a on a.pid = h.pid`,
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
