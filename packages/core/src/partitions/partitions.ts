/**
 * The partitions facet of a store: reclaiming space without rewriting the log. The owner may
 * partition the events table by position range (in place, no row copied), keep ranges
 * attached ahead of the head, and detach a full, sealed range whose every event is hidden
 * from reads (tombstoned or archived streams, versions below truncate-before). Detaching
 * deletes no row: the table leaves the log for the owner to dump and drop, the positions stay
 * as they were, the seals of what left stay, and the range is recorded. sql/0011 holds the
 * mechanism; docs/operations.md, "Reclaiming space", how to use it.
 */
import { InvalidInputError, ReclaimRefusedError, sqlStateOf, toAnnalsError } from '../errors.js';
import {
  addEventPartitions,
  detachEventPartition,
  type EventPartition,
  isPartitioned,
  partitionEvents,
  type ReclaimedRange,
  readEventPartitions,
  readPartitionSize,
  readReclaimedRanges,
} from '../queries/partitions.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import { assertInteger, readOptions } from '../validation.js';

export type { EventPartition, ReclaimedRange };

/** The log's partitions now. */
export interface PartitionsStatus {
  /** Whether the events table is partitioned. */
  partitioned: boolean;
  /** Events per range (null: not partitioned). */
  size: number | null;
  /** Attached partitions in position order, the default partition last. */
  partitions: EventPartition[];
  /** Ranges detached so far. */
  reclaimed: ReclaimedRange[];
}

/** What a detach recorded. */
export interface DetachResult {
  /** The detached table's name (it stays in the schema until the owner drops it). */
  partition: string;
  /** Its first position. */
  fromPosition: number;
  /** Its last position. */
  toPosition: number;
  /** Events it held. */
  eventCount: number;
  /** The log hash at `toPosition`, hex (the seals left in the log reproduce it). */
  logHash: string;
}

/** Partitioning and reclaiming space; every call is the schema owner's. */
export interface Partitions {
  /**
   * Partitions the events table by position range, `size` events a range (at least 1000).
   * The table becomes the first range, up to the first multiple of `size` at or past the head; a
   * range after it and a default partition are attached. Appends and reads wait while the
   * tables are swapped (one scan of the table checks its range). False when already done.
   */
  enable(options: { size: number }): Promise<boolean>;
  /**
   * Attaches ranges until `ahead` empty ones lie past the head (run it from time to time:
   * events beyond every range land in the default partition, which is correct, only not
   * detachable). Returns how many it attached. @defaultValue ahead 2
   */
  maintain(options?: { ahead?: number }): Promise<number>;
  /** The partitions and what was reclaimed. */
  status(): Promise<PartitionsStatus>;
  /**
   * Detaches a range from the log when it is full, sealed past its end and every event in it is
   * hidden from reads; otherwise {@link ReclaimRefusedError} says why and nothing changes.
   * The table stays in the schema, detached: dump it (`pg_dump -t`), then drop it.
   */
  detach(partition: string, options: { reason: string; actor?: string }): Promise<DetachResult>;
}

const refused = (error: unknown): never => {
  const code = sqlStateOf(error);
  if (code === 'AN005' || code === 'AN006') {
    throw new ReclaimRefusedError(error instanceof Error ? error.message : String(error), error);
  }
  if (code === '55P03') {
    throw new ReclaimRefusedError(
      'the log is busy: its lock was not free within 5 s (a long read or transaction holds it); nothing changed, try again',
      error,
    );
  }
  throw toAnnalsError(error);
};

/** The partitions facet of `store`. */
export function partitions(store: EventStore): Partitions {
  const context = contextOf(store);
  const { schema } = context;
  const run = <T>(work: () => Promise<T>): Promise<T> => {
    context.assertOpen();
    return work().catch(refused);
  };
  return {
    async enable(options) {
      const { size } = readOptions<{ size: number }>(options, 'options');
      assertInteger(size, 'size', 1000);
      return run(() => partitionEvents(context.client, schema, size));
    },
    async maintain(options) {
      const { ahead = 2 } = readOptions<{ ahead: number }>(options ?? {}, 'options');
      assertInteger(ahead, 'ahead', 1);
      if (ahead > 100) throw new InvalidInputError('ahead', 'must be at most 100');
      return run(() => addEventPartitions(context.client, schema, ahead));
    },
    status() {
      return run(async () => {
        const partitioned = await isPartitioned(context.client, schema);
        return {
          partitioned,
          size: partitioned ? await readPartitionSize(context.client, schema) : null,
          partitions: partitioned ? await readEventPartitions(context.client, schema) : [],
          reclaimed: await readReclaimedRanges(context.client, schema),
        };
      });
    },
    async detach(partition, options) {
      if (typeof partition !== 'string' || !/^events_(p\d+|default)$/.test(partition)) {
        throw new InvalidInputError('partition', 'must name a partition of the log, e.g. events_p1');
      }
      const { reason, actor = 'annals' } = readOptions<{ reason: string; actor: string }>(options, 'options');
      for (const [field, value] of [
        ['reason', reason],
        ['actor', actor],
      ] as const) {
        if (typeof value !== 'string' || value.trim() === '' || value.length > 1000) {
          throw new InvalidInputError(field, 'must be a non-empty string of at most 1000 characters');
        }
      }
      return run(async () => {
        if (!(await isPartitioned(context.client, schema))) {
          throw new ReclaimRefusedError('the log is not partitioned: enable partitions first');
        }
        const range = await context.client.transaction((tx) =>
          detachEventPartition(tx, schema, partition, actor, reason as string),
        );
        return { partition, ...range };
      });
    },
  };
}
