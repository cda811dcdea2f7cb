/** Per-transaction settings the store changes. */
import type { SqlQueryable } from '../db/sql-client.js';

/** Cuts off every later statement of this transaction that runs longer than `ms`. */
export async function limitStatementsFor(tx: SqlQueryable, ms: number): Promise<void> {
  await tx.query(`select set_config('statement_timeout', $1, true)`, [String(ms)], { prepare: true });
}
