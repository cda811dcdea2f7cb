/**
 * The embedded backend: PostgreSQL compiled to WebAssembly, in-process, file-backed.
 * Single connection and no fsync: for development, tests and demos, never production.
 */
import { PGlite } from '@electric-sql/pglite';
import type { SqlClient, SqlQueryable } from './sql-client.js';

type CopyFrom = NonNullable<SqlQueryable['copyFrom']>;

/** Options of {@link createPgliteClient}. */
export interface PgliteClientOptions {
  /** Directory of the database files; omit for an in-memory database. */
  dataDir?: string;
  /** An open PGlite instance to borrow instead (left open on `close`). */
  db?: PGlite;
}

/**
 * A {@link SqlClient} on embedded PGlite. PGlite has one connection, so every query and
 * transaction here runs one at a time through a queue: a query never lands inside someone
 * else's open transaction.
 */
export function createPgliteClient(options: PgliteClientOptions = {}): SqlClient {
  const owned = options.db === undefined;
  const db = options.db ?? new PGlite(options.dataDir);
  let tail: Promise<unknown> = Promise.resolve();
  const serialize = <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(work, work);
    tail = run.catch(() => {});
    return run;
  };
  const queryable = (runner: Pick<PGlite, 'query' | 'exec'>): SqlQueryable => ({
    async query<Row>(text: string, params?: readonly unknown[]) {
      const result = await runner.query<Row>(text, params as unknown[] | undefined);
      return result.rows;
    },
    async exec(script: string) {
      await runner.exec(script);
    },
    // PGlite has no COPY stream: it reads COPY data from a blob, named '/dev/blob'. The rows
    // are gathered first (an import hands over one batch at a time).
    async copyFrom(statement: string, chunks: Iterable<string> | AsyncIterable<string>) {
      const parts: string[] = [];
      for await (const chunk of chunks) parts.push(chunk);
      const fromBlob = statement.replace(/\bfrom\s+stdin\s*$/i, "from '/dev/blob'");
      if (fromBlob === statement) throw new Error('copyFrom: the statement must end in "from stdin"');
      await runner.query(fromBlob, [], { blob: new Blob(parts) });
    },
  });
  const direct = queryable(db);

  return {
    capabilities: { concurrentConnections: false, durable: false },
    query: (text, params) => serialize(() => direct.query(text, params)),
    exec: (script) => serialize(() => direct.exec(script)),
    copyFrom: (statement, chunks) => serialize(() => (direct.copyFrom as CopyFrom)(statement, chunks)),
    transaction: (fn) =>
      serialize(() =>
        db.transaction((tx) => {
          // As on pg: a statement sent after the transaction ended is refused, never run outside it.
          let ended = false;
          const inner = queryable(tx);
          const fenced: SqlQueryable = {
            query: (text, params) => (ended ? Promise.reject(transactionEnded()) : inner.query(text, params)),
            exec: (script) => (ended ? Promise.reject(transactionEnded()) : inner.exec(script)),
            copyFrom: (statement, chunks) =>
              ended ? Promise.reject(transactionEnded()) : (inner.copyFrom as CopyFrom)(statement, chunks),
          };
          return fn(fenced).finally(() => {
            ended = true;
          });
        }),
      ),
    // One in-process connection: notifications arrive as the queries that send them finish,
    // and the connection is never lost.
    async listen(channel, onNotify) {
      const unsubscribe = await serialize(() => db.listen(channel, onNotify));
      return { close: () => serialize(() => unsubscribe()) };
    },
    async session() {
      return {
        query: (text, params) => serialize(() => direct.query(text, params)),
        exec: (script) => serialize(() => direct.exec(script)),
        lost: new Promise<Error>(() => {}),
        async release() {},
      };
    },
    async close() {
      if (owned) await serialize(() => db.close());
    },
  };
}

function transactionEnded(): Error {
  return new Error('the transaction has ended: a statement sent through it after commit or rollback is refused');
}
