/**
 * Every advisory lock the store takes, in one place, so that no two features can pick the
 * same key by accident and `pg_locks` can be read knowing what each key means.
 *
 * All keys are pairs of int4 (the two-key form of the advisory lock functions): a class
 * (`hashtext('annals.<what>')`) and an object within it (the schema, or schema + name). The
 * two-key form never collides with the one-key (int8) form an application may use.
 *
 * | lock | form | held by | for |
 * | --- | --- | --- | --- |
 * | log (0001-0006 only) | transaction | every append, from drawing positions to commit | the gap-free, commit-ordered log |
 * | migrate | transaction | `migrate` | one migrator per schema at a time |
 * | seal | transaction | a sealing step | one sealer writing at a time |
 * | projection lease | session | the active runner of a projection | one runner per projection across processes |
 * | group partition | session | the member running a consumer-group partition | one member per partition |
 * | tenancy | session | creating or dropping a tenant | one change to the tenant directory at a time |
 * | append coordinator | session | the process coordinating appends | one coordinator per log across processes |
 *
 * The log lock itself is no longer an advisory lock: from migration 0007 it is a row lock on the
 * one row of `log_head`, which only `append_events` (running as the schema's owner) may take;
 * any role can take any advisory lock, and so could stall every append (docs/ordering.md).
 */
import { assertSchemaName } from '../options.js';
import type { SqlQueryable } from './sql-client.js';

/** An advisory lock key: SQL for its two int4 keys, with the parameters that SQL uses. */
export interface LockKey {
  sql: string;
  params: unknown[];
}

/**
 * The keys of the log's advisory lock of migrations 0001-0006, as a SQL literal (no
 * parameters): released migrations splice it into the append function they define, which
 * 0007 replaces by one that locks the log-head row instead.
 */
export function logLockSql(schema: string): string {
  assertSchemaName(schema);
  return `hashtext('annals.log'), hashtext('${schema}')`;
}

/** Serializes migrations of one schema. */
export const migrateLock = (schema: string): LockKey => ({
  sql: `hashtext('annals.migrate'), hashtext($1)`,
  params: [schema],
});

/** Serializes sealing steps of one schema. */
export const sealLock = (schema: string): LockKey => ({
  sql: `hashtext('annals.seal'), hashtext($1)`,
  params: [schema],
});

/** The lease of one projection (by its checkpoint name) in one schema. */
export const projectionLease = (schema: string, checkpoint: string): LockKey => ({
  sql: `hashtext('annals.projection'), hashtext($1)`,
  params: [`${schema}.${checkpoint}`],
});

/** One partition of one consumer group in one schema. */
export const groupPartitionLock = (schema: string, group: string, partition: number): LockKey => ({
  sql: `hashtext($1), $2::int4`,
  params: [`annals.group.${schema}.${group}`, partition],
});

/**
 * The append coordinator's role for one schema. Its two keys are SQL constants of the schema
 * (no parameter), so that `pg_locks` can be matched against them (queries/append-coordinator.ts).
 */
export function appendCoordinatorKeys(schema: string): { classKey: string; objectKey: string } {
  assertSchemaName(schema);
  return { classKey: `hashtext('annals.coordinator')`, objectKey: `hashtext('${schema}')` };
}

/** The lease of the append coordinator of one schema; see {@link appendCoordinatorKeys}. */
export const appendCoordinatorLease = (schema: string): LockKey => {
  const { classKey, objectKey } = appendCoordinatorKeys(schema);
  return { sql: `${classKey}, ${objectKey}`, params: [] };
};

/** Serializes creating and dropping tenants (roles and schemas are cluster-wide). */
export const tenancyLock = (directory: string): LockKey => ({
  sql: `hashtext('annals.tenancy'), hashtext($1)`,
  params: [directory],
});

/** Waits for a session-level lock; release it with {@link unlockForSession} on the same session. */
export async function lockForSession(db: SqlQueryable, key: LockKey): Promise<void> {
  await db.query(`select pg_advisory_lock(${key.sql})`, key.params);
}

/** Waits for a transaction-level lock (released at commit or rollback). */
export async function lockForTransaction(db: SqlQueryable, key: LockKey): Promise<void> {
  await db.query(`select pg_advisory_xact_lock(${key.sql})`, key.params);
}

/** Takes a session-level lock if it is free; false when another session holds it. */
export async function tryLockForSession(db: SqlQueryable, key: LockKey): Promise<boolean> {
  const [row] = await db.query<{ locked: boolean }>(`select pg_try_advisory_lock(${key.sql}) as locked`, key.params);
  return row?.locked === true;
}

/** Releases a session-level lock taken by {@link tryLockForSession} on the same session. */
export async function unlockForSession(db: SqlQueryable, key: LockKey): Promise<void> {
  await db.query(`select pg_advisory_unlock(${key.sql})`, key.params);
}
