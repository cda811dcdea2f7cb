/**
 * A projection's read model as it was at a moment, built in a scratch schema inside one
 * transaction that is always rolled back.
 *
 * 1. Create a schema `annals_scratch_<random>` with an empty `documents` table shaped like
 *    the store's, and make it the transaction's only `search_path`: the projection's own
 *    tables, created by its `setup` and named without a schema, land there, and a table it
 *    did not create is not found (rather than found among the live ones).
 * 2. Feed the projection the log up to the position, a page at a time, exactly as its runner
 *    would (same filters, same handlers), writing to the scratch tables.
 * 3. Hand the transaction to `query`, keep what it returns, then roll everything back: the
 *    scratch schema never becomes visible to anyone else and nothing is left behind, even if
 *    the process dies halfway. Live read models are never touched (a projection that names
 *    its tables with a schema would write to those — inside the same rolled-back transaction).
 */
import { randomBytes } from 'node:crypto';
import type { SqlClient, SqlQueryable } from '../db/sql-client.js';
import { type Documents, documents } from '../queries/documents.js';
import { readAllEvents } from '../store/event-reads.js';
import { applyProjection, type Projection, projectionEventTypes } from './projection.js';

class Discard<T> {
  constructor(readonly result: T) {}
}

export async function buildProjectionAt<T>(
  client: SqlClient,
  schema: string,
  projection: Projection,
  upTo: number,
  query: (tx: SqlQueryable, documents: Documents) => Promise<T>,
  pageSize: number,
): Promise<T> {
  const scratch = `annals_scratch_${randomBytes(6).toString('hex')}`;
  const eventTypes = projectionEventTypes(projection);
  try {
    await client.transaction(async (tx) => {
      await tx.exec(`create schema "${scratch}";
        create table "${scratch}".documents (like "${schema}".documents including all);
        set local search_path = "${scratch}"`);
      if (projection.setup) await projection.setup(tx);
      const docs = documents(tx, scratch);
      let after = 0;
      while (after < upTo) {
        const page = (
          await readAllEvents(tx, schema, after, pageSize, { categories: projection.categories, eventTypes })
        ).filter((event) => event.position <= upTo);
        if (page.length === 0) break;
        await applyProjection(projection, page, tx, docs);
        after = (page.at(-1) as { position: number }).position;
      }
      throw new Discard(await query(tx, docs));
    });
  } catch (error) {
    if (error instanceof Discard) return error.result as T;
    throw error;
  } finally {
    // Needed only if a handler or the query committed the transaction itself: then the
    // scratch schema (which may hold decrypted personal data) survived the rollback.
    await client.exec(`drop schema if exists "${scratch}" cascade`).catch(() => {});
  }
  throw new Error('unreachable: the scratch transaction always ends in a rollback');
}
