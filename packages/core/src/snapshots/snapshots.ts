/**
 * The snapshots facet of a store: a decider's state saved at a stream version, so that a
 * command loads the latest snapshot and the events after it instead of the whole stream.
 * Snapshots are a cache, never the truth: they live in their own table (not the log), can be
 * dropped at any time, and are keyed by decider name and model version so that a changed
 * `evolve` ignores old ones.
 */
import { PayloadTooLargeError } from '../errors.js';
import { readSnapshot, type Snapshot, writeSnapshot } from '../queries/snapshots.js';
import { loadStreamEvents } from '../store/event-reads.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import type { RecordedEvent } from '../types.js';
import { assertInteger, assertStreamId, readOptions, toJson } from '../validation.js';

/** A stream ready to fold: its latest usable snapshot, and the events after it. */
export interface LoadedStream {
  snapshot: Snapshot | null;
  events: AsyncIterable<RecordedEvent>;
}

/** Snapshots of one store; see {@link snapshots}. */
export interface Snapshots {
  /** The stored snapshot of `streamId` for `decider`, or null. */
  load(streamId: string, decider: string): Promise<Snapshot | null>;
  /** Stores a snapshot, unless a newer one of the same model version is already stored. */
  save(snapshot: Snapshot): Promise<void>;
  /**
   * A stream for folding into state: the latest snapshot of `snapshotOf` (when given, and not
   * past `toVersion`), then the events after it up to `toVersion`, paged. The snapshot and the
   * first page come in one round trip.
   */
  loadStream(
    streamId: string,
    options?: { snapshotOf?: { decider: string; modelVersion: number }; toVersion?: number },
  ): Promise<LoadedStream>;
}

/** The snapshots of `store`. */
export function snapshots(store: EventStore): Snapshots {
  const context = contextOf(store);
  const { schema, options } = context;
  return {
    load(streamId, decider) {
      assertStreamId(streamId, 'streamId', options.maxStreamIdLength);
      assertStreamId(decider, 'decider', options.maxStreamIdLength);
      return context.query((db) => readSnapshot(db, schema, streamId, decider));
    },
    async save(given) {
      const snapshot = readOptions<Snapshot>(given, 'snapshot') as Snapshot;
      assertStreamId(snapshot.streamId, 'streamId', options.maxStreamIdLength);
      assertStreamId(snapshot.decider, 'decider', options.maxStreamIdLength);
      assertInteger(snapshot.modelVersion, 'modelVersion', 0);
      assertInteger(snapshot.streamVersion, 'streamVersion', 1);
      const json = toJson(snapshot.state, 'state');
      const limit = 64 * options.maxEventBytes;
      if (Buffer.byteLength(json) > limit) throw new PayloadTooLargeError('state', limit, Buffer.byteLength(json));
      await context.query((db) => writeSnapshot(db, schema, snapshot, json));
    },
    async loadStream(streamId, given) {
      assertStreamId(streamId, 'streamId', options.maxStreamIdLength);
      const read = readOptions<NonNullable<Parameters<Snapshots['loadStream']>[1]>>(given, 'options');
      const { toVersion = Number.MAX_SAFE_INTEGER } = read;
      const snapshotOf =
        read.snapshotOf === undefined
          ? undefined
          : (readOptions<{ decider: string; modelVersion: number }>(read.snapshotOf, 'snapshotOf') as {
              decider: string;
              modelVersion: number;
            });
      if (snapshotOf) {
        assertStreamId(snapshotOf.decider, 'snapshotOf.decider', options.maxStreamIdLength);
        assertInteger(snapshotOf.modelVersion, 'snapshotOf.modelVersion', 0);
      }
      assertInteger(toVersion, 'toVersion', 0);
      const pageSize = options.pageSize;
      const { snapshot, events: firstPage } = await context.query((db) =>
        loadStreamEvents(db, schema, streamId, snapshotOf ?? null, toVersion, pageSize + 1),
      );
      return {
        snapshot,
        events: {
          async *[Symbol.asyncIterator]() {
            yield* firstPage.slice(0, pageSize);
            if (firstPage.length <= pageSize) return;
            const next = (firstPage[pageSize - 1] as RecordedEvent).streamVersion + 1;
            yield* store.readStream(streamId, { fromVersion: next, limit: toVersion - next + 1 });
          },
        },
      };
    },
  };
}
