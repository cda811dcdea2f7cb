/**
 * The database port: the little the store needs from a PostgreSQL connection. Two adapters
 * implement it, `pg` for a server ({@link createPostgresClient}) and PGlite for the embedded
 * default (`createPgliteClient` from `@annals/core/pglite`). Backend quirks stay inside them.
 */

/** What a backend can do; tests and features check these, never the backend's name. */
export interface SqlCapabilities {
  /** Several connections at once (false for PGlite: everything runs one at a time). */
  concurrentConnections: boolean;
  /** Durable on commit (fsync). False for PGlite, which is for development only. */
  durable: boolean;
}

/** Options of one statement. */
export interface QueryOptions {
  /**
   * Keep the statement prepared on the connection and reuse it: saves parsing and planning on
   * every call. Only for the store's own fixed statements (each text is prepared once per
   * connection and kept until it closes).
   */
  prepare?: boolean;
  /**
   * An autocommit write that may share its transaction (and its flush to disk) with writes of
   * other tenants arriving at the same time; it still succeeds or fails on its own. Only the
   * store's appends; clients without group commit ignore it.
   */
  groupCommit?: boolean;
  /**
   * Parsers of result columns by type oid, for this statement only, in place of the driver's
   * defaults for those types (the driver's own type parsers are global: changing them would
   * change every other query of the process). A client may ignore it, so a parser must return
   * what the default would. The pg adapter uses it; PGlite keeps its own parsers.
   */
  parsers?: Readonly<Record<number, (text: string) => unknown>>;
}

/** Runs statements. */
export interface SqlQueryable {
  /** One statement with `$1..$n` parameters. */
  query<Row = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<Row[]>;
  /** Several statements without parameters, as one script (for migrations). */
  exec(script: string): Promise<void>;
  /**
   * Runs `statement`, a `copy <table> (<columns>) from stdin` in PostgreSQL's text format,
   * fed with `chunks` (rows, each ending in a newline, split anywhere). Both adapters have it;
   * a client without it makes bulk imports fall back to multi-row inserts.
   */
  copyFrom?(statement: string, chunks: Iterable<string> | AsyncIterable<string>): Promise<void>;
}

/** A LISTEN that keeps itself alive; see {@link SqlClient.listen}. */
export interface Listener {
  /** Stops listening and releases the connection. */
  close(): Promise<void>;
}

/** A connection held for one caller until released (for session locks). */
export interface SqlSession extends SqlQueryable {
  /** Resolves when the connection is lost (ended by the server, network...). */
  readonly lost: Promise<Error>;
  /** Gives the connection back (or destroys it, when `broken`). */
  release(broken?: boolean): Promise<void>;
}

/** Connections of a pool, as {@link SqlClient.poolStats} reports them. */
export interface PoolStats {
  /** Connections open. */
  total: number;
  /** Open connections not in use. */
  idle: number;
  /** Callers waiting for a connection. */
  waiting: number;
}

/** A connection (or pool of them) to one PostgreSQL database. */
export interface SqlClient extends SqlQueryable {
  readonly capabilities: SqlCapabilities;
  /** Runs `fn` in a transaction on one connection: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` for each NOTIFY on `channel`. When the connection drops it reconnects
   * (with backoff) and then calls `onReconnect`, since notifications sent meanwhile are lost:
   * NOTIFY is only a hint to read sooner.
   */
  listen(channel: string, onNotify: (payload: string) => void, onReconnect: () => void): Promise<Listener>;
  /** A connection of its own, held until released: for session-level advisory locks. */
  session(): Promise<SqlSession>;
  /** How the client's connections are used now (for metrics); absent where it has no pool. */
  poolStats?(): PoolStats;
  /** Closes connections this client opened (a pool passed in by the caller stays open). */
  close(): Promise<void>;
}
