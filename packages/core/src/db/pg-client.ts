import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyStream } from 'pg-copy-streams';
import { GroupCommit } from './pg-group-commit.js';
import { listenOnPool } from './pg-listener.js';
import type { Listener, QueryOptions, SqlClient, SqlQueryable, SqlSession } from './sql-client.js';

const statementNames = new Map<string, string>();

/** pg's per-query `types` for a {@link QueryOptions}.parsers, made once per parsers object. */
const typeOverrides = new WeakMap<NonNullable<QueryOptions['parsers']>, pg.CustomTypesConfig>();

function typesFor(parsers: NonNullable<QueryOptions['parsers']>): pg.CustomTypesConfig {
  let types = typeOverrides.get(parsers);
  if (!types) {
    types = {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        (format ?? 'text') === 'text' && parsers[oid]
          ? parsers[oid]
          : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
    };
    typeOverrides.set(parsers, types);
  }
  return types;
}

type CopyFrom = NonNullable<SqlQueryable['copyFrom']>;

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
export type PostgresClientOptions = (
  | { connectionString: string; maxConnections?: number; applicationName?: string }
  | { pool: pg.Pool }
) & {
  /**
   * Run every statement as this role (`SET ROLE`), whatever the connection logged in as:
   * privileges are then those of the role, so a tenant's client reaches only its tenant's
   * schema however it is asked (docs/tenancy.md). `null`: as the login role itself
   * (`RESET ROLE`). Several clients with different roles may share one pool; each sets its
   * role on the connections it takes. A pool shared so must be used only through such clients.
   */
  role?: string | null;
  /**
   * With `role`: statements the store marks `groupCommit` (its appends) share one transaction,
   * so one flush to disk, with those of other roles' clients on the same pool
   * (pg-group-commit.ts). For many tenants on one pool; `createTenantClients` sets it.
   */
  groupCommit?: GroupCommit;
};

/**
 * The role each pooled connection was last set to ('' = the login role), across clients. The
 * pool's LISTEN connection (pg-listener.ts) is taken without a role and destroyed on release,
 * so it never returns to the pool with a role this map does not know.
 */
const connectionRoles = new WeakMap<pg.PoolClient, string>();

const rolePattern = /^[a-z_][a-z0-9_]{0,62}$/;

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
          // No JIT on the connections it opens: the store's statements are short, and a filter
          // the planner cannot estimate (a consumer group's partition hash) priced a page high
          // enough to compile it, 20 ms and more for a read of 1 ms (docs/performance.md). Set
          // once connected, before the connection is handed out, not as a startup option, which
          // PgBouncer refuses; a connection string with `options` of its own is left as it says.
          ...(/[?&]options=/.test(options.connectionString)
            ? {}
            : {
                onConnect: async (connection: pg.ClientBase) => {
                  await connection.query('set jit = off').catch(() => {});
                },
              }),
        });
  // An idle client that loses its connection emits 'error' on the pool; without a listener
  // that would crash the process. The next query simply gets a new connection.
  if (owned) pool.on('error', () => {});
  const role = options.role === undefined ? undefined : (options.role ?? '');
  if (role !== undefined && role !== '' && !rolePattern.test(role)) throw new Error(`bad role name ${role}`);
  const connect = () => connectAs(pool, role);
  /** The pool's own `query` when no role is set; with one, each statement on a connection set to it. */
  const pooled: Pick<pg.Pool, 'query'> =
    role === undefined
      ? pool
      : { query: ((config: pg.QueryConfig) => runAs(pool, role, config)) as unknown as pg.Pool['query'] };
  const group = role === undefined ? undefined : options.groupCommit;

  const queryable = (runner: Pick<pg.Pool, 'query'> | pg.PoolClient): SqlQueryable => ({
    async query<Row>(text: string, params?: readonly unknown[], options?: QueryOptions) {
      const values = params as unknown[] | undefined;
      const config: pg.QueryConfig = options?.prepare ? { name: statementName(text), text, values } : { text, values };
      if (options?.parsers) config.types = typesFor(options.parsers);
      // Only an autocommit statement on the pool joins a group (never one inside a transaction).
      if (group && options?.groupCommit && runner === pooled) {
        return (await group.run(role as string, config)) as Row[];
      }
      const result = await runner.query(config);
      return result.rows as Row[];
    },
    async exec(script: string) {
      // Without parameters node-postgres uses the simple protocol, which runs several statements.
      await runner.query(script);
    },
    async copyFrom(statement: string, chunks: Iterable<string> | AsyncIterable<string>) {
      // A COPY holds its connection until the data ends: on the pool, on one of its own.
      if (!(runner instanceof pg.Client)) {
        const client = await connect();
        let broken: Error | undefined;
        try {
          await pipeline(Readable.from(chunks, { objectMode: false }), client.query(copyStream(statement)));
        } catch (error) {
          broken = error as Error;
          throw error;
        } finally {
          client.release(broken);
        }
        return;
      }
      await pipeline(Readable.from(chunks, { objectMode: false }), runner.query(copyStream(statement)));
    },
  });

  return {
    capabilities: { concurrentConnections: true, durable: true },
    ...queryable(pooled),
    async transaction(fn) {
      const client = await connect();
      // A connection that dies between two statements emits 'error' on the client, which
      // would crash the process without a listener; the next statement fails anyway.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken = error;
      };
      client.on('error', onError);
      // A statement sent through `tx` after the transaction ended (a handler that timed out,
      // or one that did not await its queries) must not land on this connection once it is
      // back in the pool, inside someone else's transaction.
      let ended = false;
      const inner = queryable(client);
      const tx: SqlQueryable = {
        query: (text, params, options) =>
          ended ? Promise.reject(transactionEnded()) : inner.query(text, params, options),
        exec: (script) => (ended ? Promise.reject(transactionEnded()) : inner.exec(script)),
        copyFrom: (statement, chunks) =>
          ended ? Promise.reject(transactionEnded()) : (inner.copyFrom as CopyFrom)(statement, chunks),
      };
      try {
        await client.query('begin');
        const result = await fn(tx).finally(() => {
          ended = true;
        });
        // COMMIT of a transaction that failed inside `fn` (an error caught and swallowed there)
        // answers ROLLBACK instead of an error: it must not pass for a commit.
        const commit = await client.query('commit');
        if (commit.command === 'ROLLBACK') throw new Error('the transaction failed and was rolled back');
        return result;
      } catch (error) {
        try {
          await client.query('rollback');
        } catch (rollbackError) {
          broken ??= rollbackError as Error;
        }
        throw error;
      } finally {
        ended = true;
        client.removeListener('error', onError);
        // A connection whose rollback failed is in an unknown state: destroy it.
        client.release(broken);
      }
    },
    listen: (channel, onNotify, onReconnect) => listen(pool, channel, onNotify, onReconnect),
    async session(): Promise<SqlSession> {
      const client = await connect();
      let lose: (error: Error) => void = () => {};
      const lost = new Promise<Error>((resolve) => {
        lose = resolve;
      });
      const onError = (error: Error) => lose(error);
      const onEnd = () => lose(new Error('connection ended'));
      client.on('error', onError);
      client.on('end', onEnd);
      return {
        ...queryable(client),
        lost,
        async release(broken = false) {
          client.removeListener('error', onError);
          client.removeListener('end', onEnd);
          client.release(broken ? new Error('released as broken') : undefined);
        },
      };
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      if (owned) await pool.end();
    },
  };
}

/**
 * LISTEN on the pool's one LISTEN connection, shared by every client on the pool and every
 * channel (pg-listener.ts): a client per tenant on a shared pool must not hold a connection each.
 */
async function listen(
  pool: pg.Pool,
  channel: string,
  onNotify: (payload: string) => void,
  onReconnect: () => void,
): Promise<Listener> {
  // The name goes into the statement as is.
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  return listenOnPool(pool, channel, onNotify, onReconnect);
}

/** A connection of `pool` running as `role` (undefined: as it is); a round trip only when it ran as another. */
async function connectAs(pool: pg.Pool, role: string | undefined): Promise<pg.PoolClient> {
  const client = await pool.connect();
  if (role === undefined || connectionRoles.get(client) === role) return client;
  try {
    await client.query(role === '' ? 'reset role' : `set role "${role}"`);
  } catch (error) {
    client.release(error as Error);
    throw error;
  }
  connectionRoles.set(client, role);
  return client;
}

/** One statement on a connection of `pool` set to `role`. */
async function runAs(pool: pg.Pool, role: string, config: pg.QueryConfig): Promise<pg.QueryResult> {
  const client = await connectAs(pool, role);
  let broken: Error | undefined;
  try {
    return await client.query(config);
  } catch (error) {
    // A statement error leaves the connection usable; a lost connection does not.
    if (!(error as { code?: string }).code) broken = error as Error;
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Group commit on `pool` for role clients (see {@link PostgresClientOptions}.groupCommit). */
export function createGroupCommit(pool: pg.Pool, maxGroups?: number): GroupCommit {
  return new GroupCommit(pool, async (role, config) => (await runAs(pool, role, config)).rows, maxGroups);
}

function transactionEnded(): Error {
  return new Error('the transaction has ended: a statement sent through it after commit or rollback is refused');
}
