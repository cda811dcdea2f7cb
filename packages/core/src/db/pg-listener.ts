/**
 * LISTEN for every client of a `pg.Pool` on ONE connection of it. A client per tenant on a
 * shared pool, each store with a live listener, would otherwise hold a connection per store and
 * exhaust the pool; a connection can LISTEN on any number of channels, so one per pool is enough.
 *
 * Channels are refcounted: `LISTEN` when the first listener of a channel arrives, `UNLISTEN`
 * when the last leaves, and the connection goes when the pool's last listener leaves. Statements
 * on the connection run one after another in the order they were asked for (see `statement`), so
 * LISTENs and UNLISTENs of one channel never overtake each other. The connection is taken with `pool.connect()` whatever the
 * role of the clients (LISTEN needs no privilege) and always destroyed, never returned to the
 * pool: it carries LISTEN state and our event handlers, and so never goes back with a stale role.
 */
import type pg from 'pg';
import type { Listener } from './sql-client.js';

interface Entry {
  channel: string;
  onNotify: (payload: string) => void;
  onReconnect: () => void;
}

/** The one LISTEN connection of a pool and who listens on it. */
interface Multiplexer {
  pool: pg.Pool;
  /** Listeners by channel; a channel is here as long as it has one. */
  channels: Map<string, Set<Entry>>;
  /** The live connection, if any. */
  connection: pg.PoolClient | undefined;
  /** The LISTEN of each channel sent on `connection` (resolves once the server has run it). */
  listened: Map<string, Promise<void>>;
  /** The last statement asked for on `connection`: the next one runs after it. */
  last: Promise<unknown>;
  /** A connect under way, shared by everyone who needs the connection meanwhile. */
  connecting: Promise<pg.PoolClient> | undefined;
  /** Listeners that were listening when a connection was lost: each gets `onReconnect` once. */
  missed: Set<Entry>;
  reconnecting: boolean;
}

const multiplexers = new WeakMap<pg.Pool, Multiplexer>();

/**
 * Calls `onNotify` for each NOTIFY on `channel`, on the pool's shared LISTEN connection (opened
 * if there is none). When it is lost it is replaced after a backoff of 0.1 s doubling to 5 s,
 * every channel is listened again, and then every listener's `onReconnect` runs, so that each
 * reads what it may have missed. A failure to listen now (the first connect) is thrown.
 * `channel` must be a checked identifier: it is put into the statement as is.
 */
export async function listenOnPool(
  pool: pg.Pool,
  channel: string,
  onNotify: (payload: string) => void,
  onReconnect: () => void,
): Promise<Listener> {
  let mux = multiplexers.get(pool);
  if (mux === undefined) {
    mux = {
      pool,
      channels: new Map(),
      connection: undefined,
      listened: new Map(),
      last: Promise.resolve(),
      connecting: undefined,
      missed: new Set(),
      reconnecting: false,
    };
    multiplexers.set(pool, mux);
  }
  const entry: Entry = { channel, onNotify, onReconnect };
  let listeners = mux.channels.get(channel);
  if (listeners === undefined) {
    listeners = new Set();
    mux.channels.set(channel, listeners);
  }
  // Registered before the LISTEN runs: a notification in between is only an early hint.
  listeners.add(entry);
  try {
    const connection = await connectionOf(mux);
    await listening(mux, connection, channel);
  } catch (error) {
    remove(mux, entry);
    throw error;
  }
  const registered = mux;
  return {
    async close() {
      remove(registered, entry);
    },
  };
}

/** The live connection, or a new one (every registered channel is then listened on it). */
function connectionOf(mux: Multiplexer): Promise<pg.PoolClient> {
  if (mux.connection) return Promise.resolve(mux.connection);
  mux.connecting ??= connect(mux).finally(() => {
    mux.connecting = undefined;
  });
  return mux.connecting;
}

async function connect(mux: Multiplexer): Promise<pg.PoolClient> {
  const client = await mux.pool.connect();
  if (mux.channels.size === 0) {
    // Everyone left while it was connecting.
    client.release(new Error('listen connection no longer needed'));
    throw new Error('no listener left');
  }
  // Kept for the connection's life: after its release it may still emit, and an 'error'
  // without a handler would crash the process. `lost` ignores a connection no longer current.
  client.on('error', () => lost(mux, client));
  client.on('end', () => lost(mux, client));
  client.on('notification', (message) => {
    if (mux.connection !== client) return;
    const listeners = mux.channels.get(message.channel);
    // A copy, and each still there: a callback may close itself or another listener.
    for (const entry of [...(listeners ?? [])]) {
      if (listeners?.has(entry)) isolated(() => entry.onNotify(message.payload ?? ''));
    }
  });
  mux.connection = client;
  mux.listened = new Map();
  mux.last = Promise.resolve();
  for (const channel of mux.channels.keys()) void listening(mux, client, channel).catch(() => {});
  return client;
}

/** Resolves once `channel` is listened on `connection` (sending the LISTEN if nobody has). */
function listening(mux: Multiplexer, connection: pg.PoolClient, channel: string): Promise<void> {
  if (mux.connection !== connection) return Promise.reject(new Error('listen connection lost'));
  let done = mux.listened.get(channel);
  if (done === undefined) {
    const sent: Promise<void> = statement(mux, connection, `listen ${channel}`).then(
      () => {},
      (error) => {
        // Not kept: the next listener of the channel tries again rather than get this failure.
        if (mux.listened.get(channel) === sent) mux.listened.delete(channel);
        throw error;
      },
    );
    done = sent;
    mux.listened.set(channel, done);
  }
  return done;
}

/** Forgets `entry`; UNLISTENs its channel if it was the last there, drops the connection if the last of all. */
function remove(mux: Multiplexer, entry: Entry): void {
  const listeners = mux.channels.get(entry.channel);
  if (!listeners?.delete(entry)) return;
  mux.missed.delete(entry);
  if (listeners.size > 0) return;
  mux.channels.delete(entry.channel);
  const connection = mux.connection;
  if (connection === undefined) return;
  if (mux.channels.size === 0) {
    // The pool's last listener: no UNLISTEN needed, the connection is destroyed.
    mux.connection = undefined;
    mux.listened = new Map();
    connection.release(new Error('listen connection no longer needed'));
    return;
  }
  if (mux.listened.delete(entry.channel)) {
    // Not awaited: `close` must not wait on a connection that may hang. A failure means the
    // connection is lost, which its 'error'/'end' handles.
    void statement(mux, connection, `unlisten ${entry.channel}`).catch(() => {});
  }
}

/**
 * Runs `text` on `connection` once the statements asked for before it have run (failed or not).
 * node-postgres would queue them itself, but that is deprecated (and goes in pg 9).
 */
function statement(mux: Multiplexer, connection: pg.PoolClient, text: string): Promise<unknown> {
  const run = mux.last.then(
    () => connection.query(text),
    () => connection.query(text),
  );
  mux.last = run.catch(() => {});
  return run;
}

/** The current connection ended or failed: destroy it and reconnect for whoever still listens. */
function lost(mux: Multiplexer, connection: pg.PoolClient): void {
  if (mux.connection !== connection) return;
  mux.connection = undefined;
  mux.listened = new Map();
  connection.release(new Error('listen connection lost'));
  for (const listeners of mux.channels.values()) for (const entry of listeners) mux.missed.add(entry);
  if (mux.channels.size > 0) void reconnect(mux);
}

/**
 * Reconnects until every channel is listened again on a connection that is still current, then
 * calls `onReconnect` of every listener that missed notifications. One loop at a time; a loss
 * during it is handled by the loop itself (it sees the connection changed).
 */
async function reconnect(mux: Multiplexer): Promise<void> {
  if (mux.reconnecting) return;
  mux.reconnecting = true;
  try {
    for (let attempt = 0; mux.channels.size > 0; attempt++) {
      let connection: pg.PoolClient | undefined;
      try {
        connection = await connectionOf(mux);
        const current = connection;
        await Promise.all([...mux.channels.keys()].map((channel) => listening(mux, current, channel)));
        if (mux.connection === connection) {
          const missed = [...mux.missed];
          mux.missed.clear();
          for (const entry of missed) isolated(entry.onReconnect);
          return;
        }
      } catch {
        // A LISTEN refused on a live connection: start over on a fresh one.
        if (connection && mux.connection === connection) lost(mux, connection);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)));
    }
  } finally {
    mux.reconnecting = false;
    // Everyone left: nobody is owed an `onReconnect`.
    if (mux.channels.size === 0) mux.missed.clear();
  }
}

/** Runs a listener's callback so that its failure does not keep the others from theirs; the error still surfaces. */
function isolated(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    setImmediate(() => {
      throw error;
    });
  }
}
