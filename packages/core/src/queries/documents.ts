/**
 * Document-style read models: JSON documents by (collection, id), written by projections
 * through their transaction and read by anyone.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import type { JsonObject, JsonValue } from '../types.js';
import { assertStreamId, toJson } from '../validation.js';

/** Documents of one store, through one connection or transaction. */
export interface Documents {
  get<T extends JsonValue = JsonObject>(collection: string, id: string): Promise<T | null>;
  /** Stores `data` as the document (replacing any). */
  put(collection: string, id: string, data: JsonValue): Promise<void>;
  /** Reads the document (or `initial`), applies `change`, stores the result; returns it. */
  update<T extends JsonValue = JsonObject>(
    collection: string,
    id: string,
    initial: T,
    change: (doc: T) => T,
  ): Promise<T>;
  delete(collection: string, id: string): Promise<void>;
  /** Documents of a collection whose data contains `match` (jsonb `@>`), by id. */
  find<T extends JsonValue = JsonObject>(
    collection: string,
    options?: { match?: JsonObject; limit?: number; afterId?: string },
  ): Promise<{ id: string; data: T }[]>;
}

export function documents(db: SqlQueryable, schema: string): Documents {
  const check = (collection: unknown, id?: unknown) => {
    assertStreamId(collection, 'collection', 200);
    if (id !== undefined) assertStreamId(id, 'id', 1000);
  };
  const table = `"${schema}".documents`;
  const self: Documents = {
    async get<T extends JsonValue>(collection: string, id: string) {
      check(collection, id);
      const [row] = await db.query<{ data: T }>(`select data from ${table} where collection = $1 and id = $2`, [
        collection,
        id,
      ]);
      return row ? row.data : null;
    },
    async put(collection, id, data) {
      check(collection, id);
      await db.query(
        `insert into ${table} (collection, id, data) values ($1, $2, $3::jsonb)
         on conflict (collection, id) do update set data = excluded.data, updated_at = now()`,
        [collection, id, toJson(data, 'data')],
      );
    },
    async update<T extends JsonValue>(collection: string, id: string, initial: T, change: (doc: T) => T) {
      const next = change((await self.get<T>(collection, id)) ?? initial);
      await self.put(collection, id, next);
      return next;
    },
    async delete(collection, id) {
      check(collection, id);
      await db.query(`delete from ${table} where collection = $1 and id = $2`, [collection, id]);
    },
    async find<T extends JsonValue>(
      collection: string,
      options: { match?: JsonObject; limit?: number; afterId?: string } = {},
    ) {
      check(collection);
      const limit = options.limit ?? 100;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
        throw new InvalidInputError('limit', 'must be an integer from 1 to 10000');
      }
      const rows = await db.query<{ id: string; data: T }>(
        `select id, data from ${table}
          where collection = $1 and ($2::jsonb is null or data @> $2::jsonb) and ($3::text is null or id > $3)
          order by id limit $4`,
        [
          collection,
          options.match === undefined ? null : toJson(options.match, 'match'),
          options.afterId ?? null,
          limit,
        ],
      );
      return rows;
    },
  };
  return self;
}
