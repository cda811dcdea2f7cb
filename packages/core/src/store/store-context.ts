/**
 * What the facets of a store (`subscriptions(store)`, `projections(store)`, `integrity(store)`,
 * `snapshots(store)`, `personalData(store)`, `auditTrail(store)`) share with it, without the
 * store's public object carrying any of it: the database client, the resolved options, the
 * append pipeline, one LISTEN connection for every worker, and the list of running workers
 * that `close` stops first. The store registers its context here when it opens; a facet
 * looks it up by the store.
 */
import { notifyChannel } from '../db/migrate.js';
import type { Listener, SqlClient } from '../db/sql-client.js';
import { InvalidInputError, StoreClosedError, toAnnalsError } from '../errors.js';
import type { StoreOptions } from '../options.js';
import type { WorkerHost } from '../workers/worker-loop.js';
import type { AppendPipeline } from './append-pipeline.js';

/** A background worker the store stops on `close`. */
export interface RunningWorker {
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

/** @internal The store's insides, for its facets; see the module comment. */
export interface StoreContext extends WorkerHost {
  readonly options: Readonly<StoreOptions>;
  readonly pipeline: AppendPipeline;
  readonly closed: boolean;
  /** Throws {@link StoreClosedError} once the store is closed. */
  assertOpen(): void;
  /** Runs `run` on the client, with driver errors turned into typed ones. */
  query<T>(run: (db: SqlClient) => Promise<T>): Promise<T>;
  /** Keeps a worker so that `close` stops it first; returns it. */
  track<T extends RunningWorker>(worker: T): T;
  /** Stops the workers and the LISTEN connection, and waits for appends in flight. */
  shutdown(): Promise<void>;
}

const contexts = new WeakMap<object, StoreContext>();

/** Makes the context of a store. */
export function createStoreContext(
  client: SqlClient,
  options: Readonly<StoreOptions>,
  pipeline: AppendPipeline,
): StoreContext {
  let closed = false;
  const running = new Set<RunningWorker>();
  const wakers = new Set<() => void>();
  let listener: Promise<Listener> | undefined;
  const assertOpen = () => {
    if (closed) throw new StoreClosedError();
  };
  return {
    client,
    schema: options.schema,
    options,
    pipeline,
    get closed() {
      return closed;
    },
    assertOpen,
    async query(run) {
      assertOpen();
      try {
        return await run(client);
      } catch (error) {
        throw toAnnalsError(error);
      }
    },
    track(worker) {
      running.add(worker);
      const forget = () => running.delete(worker);
      void worker.done.then(forget, forget);
      return worker;
    },
    // One LISTEN connection per store, opened on first use and kept until `close`, fans
    // notifications out to every worker of this store.
    async onAppended(wake) {
      wakers.add(wake);
      const fire = () => {
        for (const w of wakers) w();
      };
      listener ??= client.listen(notifyChannel(options.schema), fire, fire);
      try {
        await listener;
      } catch (error) {
        wakers.delete(wake);
        listener = undefined;
        throw error;
      }
      return () => {
        wakers.delete(wake);
      };
    },
    async shutdown() {
      closed = true;
      await Promise.all([...running].map((worker) => worker.stop()));
      const open = listener;
      listener = undefined;
      if (open) await (await open.catch(() => undefined))?.close();
      // The coordinator first: as holder it answers what it took; as a link, what it had sent
      // comes back to run here. Then what is left in this process.
      await pipeline.stopCoordinator();
      await pipeline.drain();
    },
  };
}

/** Registers `context` as the context of `store`. */
export function bindStoreContext(store: object, context: StoreContext): void {
  contexts.set(store, context);
}

/** The context of a store opened by `openEventStore`; throws {@link InvalidInputError} for anything else. */
export function contextOf(store: unknown): StoreContext {
  const context = typeof store === 'object' && store !== null ? contexts.get(store) : undefined;
  if (!context) throw new InvalidInputError('store', 'must be an event store opened by openEventStore');
  return context;
}
