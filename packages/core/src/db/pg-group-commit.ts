/**
 * Group commit across the tenants of one pool. Each tenant's store coalesces its own
 * concurrent appends into one statement, but a server of many tenants sees few appends per
 * tenant at a time: each would commit alone, and the disk's flush rate would cap them all
 * (100 tenants: 0.04x of one tenant's throughput, bench section `tenants`). Here the append
 * statements of different tenants that arrive together share one transaction, so one flush:
 *
 *   begin; set local lock_timeout;
 *   for each statement, in role order: set local role <its tenant>; <statement>
 *   commit
 *
 * - Isolation is unchanged: each statement runs as its own tenant's role.
 * - Each statement still succeeds or fails alone. Every caller is answered only after the
 *   COMMIT. If anything fails (a statement, a lock wait, the commit, the connection), nothing
 *   of the group was committed (a transaction is atomic), and each statement runs again on
 *   its own, so it gets its own answer; an append is idempotent by its event ids, and the
 *   store's appends report conflicts as rows, not errors, so this is rare. No savepoint per
 *   statement: that would cost two more round trips each.
 * - Each tenant's log stays gap-free and in commit order: its statement takes that tenant's
 *   log lock, held to the group's commit, exactly as a lone append holds it to its own.
 * - No deadlock between groups: each takes the tenants' log locks in one order (by role).
 * - No tenant stalls the others for long: a statement that waits more than `lock_timeout`
 *   for its tenant's log lock (held elsewhere, say by a slow inline projection) fails the
 *   group, whose statements then run alone.
 *
 * Up to `maxGroups` groups are in flight at once; statements that arrive meanwhile form the
 * next group, as the store's own batcher does.
 */
import type pg from 'pg';

interface Pending {
  role: string;
  config: pg.QueryConfig;
  resolve(rows: unknown[]): void;
  reject(error: unknown): void;
}

/** A lock wait longer than this sends a statement out of its group. */
const groupLockTimeoutMs = 100;

/** Runs one statement alone, on a connection set to `role` (the client's own path). */
export type RunAlone = (role: string, config: pg.QueryConfig) => Promise<unknown[]>;

/** Group commit for the role clients of one pool; see the module comment. */
export class GroupCommit {
  readonly #pool: pg.Pool;
  readonly #maxGroups: number;
  readonly #runAlone: RunAlone;
  #queue: Pending[] = [];
  #inFlight = 0;

  constructor(pool: pg.Pool, runAlone: RunAlone, maxGroups = 4) {
    this.#pool = pool;
    this.#runAlone = runAlone;
    this.#maxGroups = maxGroups;
  }

  /** Runs `config` as `role`, in a group with whatever else arrives at the same time. */
  run(role: string, config: pg.QueryConfig): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ role, config, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    while (this.#inFlight < this.#maxGroups && this.#queue.length > 0) {
      const group = this.#queue;
      this.#queue = [];
      this.#inFlight++;
      void this.#flush(group).finally(() => {
        this.#inFlight--;
        this.#kick();
      });
    }
  }

  async #flush(group: Pending[]): Promise<void> {
    if (group.length === 1) {
      const [only] = group as [Pending];
      await this.#runAlone(only.role, only.config).then(only.resolve, only.reject);
      return;
    }
    // One lock order for every group: by role (stable, so one tenant's statements keep theirs).
    const ordered = [...group].sort((a, b) => (a.role < b.role ? -1 : a.role > b.role ? 1 : 0));
    const done: { pending: Pending; rows: unknown[] }[] = [];
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      for (const pending of ordered) pending.reject(error);
      return;
    }
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken = error;
    };
    client.on('error', onError);
    let failed = false;
    try {
      await client.query(`begin; set local lock_timeout = '${groupLockTimeoutMs}ms'`);
      let current: string | undefined;
      for (const pending of ordered) {
        if (pending.role !== current) {
          await client.query(`set local role "${pending.role}"`);
          current = pending.role;
        }
        const result = await client.query(pending.config);
        done.push({ pending, rows: result.rows });
      }
      const commit = await client.query('commit');
      // COMMIT answering ROLLBACK: the transaction had failed, the connection is fine.
      if (commit.command === 'ROLLBACK') failed = true;
    } catch (error) {
      failed = true;
      if (!(error as { code?: string }).code) broken ??= error as Error;
      await client.query('rollback').catch((rollbackError: Error) => {
        broken ??= rollbackError;
      });
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
    // A statement failed (rare: the store's appends report conflicts as rows, not errors), a
    // lock wait ran out, or the connection or the commit failed: nothing of the group was
    // committed, so each statement runs again alone and gets its own answer.
    if (failed) {
      await Promise.all(
        ordered.map((pending) => this.#runAlone(pending.role, pending.config).then(pending.resolve, pending.reject)),
      );
      return;
    }
    for (const { pending, rows } of done) pending.resolve(rows);
  }
}
