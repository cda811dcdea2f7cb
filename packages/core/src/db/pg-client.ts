import { createHash } from 'node:crypto';
import pg from 'pg';
import type { QueryOptions, SqlClient, SqlQueryable } from './sql-client.js';

const statementNames = new Map<string, string>();

/** A stable name for a prepared statement: the same text always gets the same name. */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `annals_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** Options of {@link createPostgresClient}: a connection string or a `pg.Pool` you own. */
export type PostgresClientOptions =
  | { connectionString: string; maxConnections?: number; applicationName?: string }
  | { pool: pg.Pool };

/**
 * A {@link SqlClient} on a PostgreSQL server through node-postgres. Given a connection string it
 * opens (and on `close` ends) its own pool; given a pool it borrows it and leaves it open.
 */
export function createPostgresClient(options: PostgresClientOptions): SqlClient {
  const owned = !('pool' in options);
  const pool =
    'pool' in options
      ? options.pool
      : new pg.Pool({
          connectionString: options.connectionString,
          max: options.maxConnections ?? 10,
          application_name: options.applicationName ?? 'annals',
        });
  // An idle client that loses its connection emits 'error' on the pool; without a listener
  // that would crash the process. The next query simply gets a new connection.
  if (owned) pool.on('error', () => {});

  const queryable = (runner: pg.Pool | pg.PoolClient): SqlQueryable => ({
    async query<Row>(text: string, params?: readonly unknown[], options?: QueryOptions) {
      const values = params as unknown[] | undefined;
      const result = await runner.query(
        options?.prepare ? { name: statementName(text), text, values } : { text, values },
      );
      return result.rows as Row[];
    },
    async exec(script: string) {
      // Without parameters node-postgres uses the simple protocol, which runs several statements.
      await runner.query(script);
    },
  });

  return {
    capabilities: { concurrentConnections: true, durable: true },
    ...queryable(pool),
    async transaction(fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('begin');
        const result = await fn(queryable(client));
        await client.query('commit');
        return result;
      } catch (error) {
        try {
          await client.query('rollback');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        throw error;
      } finally {
        // A connection whose rollback failed is in an unknown state: destroy it.
        client.release(broken);
      }
    },
    async close() {
      if (owned) await pool.end();
    },
  };
}
