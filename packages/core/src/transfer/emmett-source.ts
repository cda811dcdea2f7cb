/**
 * Emmett to Annals: the events of an Emmett PostgreSQL store as lines of the transfer format,
 * for an append-mode import. The mapping, column by column (docs/operations.md has a worked
 * example):
 *
 * | `emt_messages`     | line            |
 * | ------------------ | --------------- |
 * | `message_id`       | `id` (a UUID, as Emmett makes them; any other id is refused by the import) |
 * | `stream_id`        | `streamId` (its category is the part before the first `-`) |
 * | `stream_position`  | `streamVersion` |
 * | `message_type`     | `type`          |
 * | `message_data`     | `data`, as stored (jsonb text) |
 * | `message_metadata` | `metadata`, as stored |
 * | `created`          | `recordedAt`, to the microsecond |
 * | `global_position`  | order only: Annals gives new, dense positions |
 *
 * Only events (`message_kind = 'E'`) of one partition; Emmett's other message kinds and its
 * subscription checkpoints have no counterpart in the log.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import { readEmmettPage } from '../queries/emmett.js';
import { assertInteger, readOptions } from '../validation.js';
import { formatLine } from './ndjson.js';

/** Options of {@link emmettSource}. */
export interface EmmettSourceOptions {
  /** The schema of Emmett's tables. @defaultValue 'public' */
  schema?: string;
  /** Emmett's partition. @defaultValue 'emt:default' */
  partition?: string;
  /** Start after this Emmett global position (to resume). @defaultValue 0 */
  after?: number;
  /** Include archived events. @defaultValue true */
  includeArchived?: boolean;
  /** Rows read per query. @defaultValue 5000 */
  pageSize?: number;
}

/**
 * The events of an Emmett PostgreSQL event store (`@event-driven-io/emmett-postgresql`, table
 * `emt_messages`) in global order, as lines of the transfer format without positions: import
 * them with `transfer(store).import(emmettSource(db), { mode: 'append' })`. `db` is a client on
 * the Emmett database. Reads pages, so memory stays flat.
 *
 * @example
 * ```ts
 * import { createPostgresClient, emmettSource, transfer } from '@annals/core';
 *
 * const emmett = createPostgresClient({ connectionString: 'postgres://localhost/emmett' });
 * const result = await transfer(store).import(emmettSource(emmett), { mode: 'append' });
 * console.log(`${result.imported} Emmett events imported`);
 * await emmett.close();
 * ```
 */
export function emmettSource(db: SqlQueryable, options?: EmmettSourceOptions): AsyncIterable<string> {
  const {
    schema = 'public',
    partition = 'emt:default',
    after = 0,
    includeArchived = true,
    pageSize = 5000,
  } = readOptions<EmmettSourceOptions>(options, 'options');
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_$]*$/.test(schema)) {
    throw new InvalidInputError('schema', 'must be a plain SQL identifier');
  }
  if (typeof partition !== 'string') throw new InvalidInputError('partition', 'must be a string');
  if (typeof includeArchived !== 'boolean') throw new InvalidInputError('includeArchived', 'must be a boolean');
  assertInteger(after, 'after', 0);
  assertInteger(pageSize, 'pageSize', 1);
  return {
    async *[Symbol.asyncIterator]() {
      let from = after;
      for (;;) {
        const rows = await readEmmettPage(db, { schema, partition, after: from, limit: pageSize, includeArchived });
        for (const row of rows) yield formatLine({ ...row, position: undefined });
        if (rows.length < pageSize) return;
        from = Number(rows.at(-1)?.globalPosition);
      }
    },
  };
}
