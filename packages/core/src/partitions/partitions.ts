/**
 * The partitions facet of a store: reclaiming space without rewriting the log. The owner may
 * partition the events table by position range (in place, no row copied), keep ranges
 * attached ahead of the head, and detach a full, sealed range whose every event is gone for
 * good (tombstoned streams, versions below truncate-before) and which holds no live stream's
 * last event. Detaching
 * deletes no row: the table leaves the log for the owner to dump and drop, the positions stay
 * as they were, the seals of what left stay, and the range is recorded. sql/0011 holds the
 * mechanism; docs/operations.md, "Reclaiming space", how to use it.
 */

import type { SqlQueryable } from '../db/sql-client.js';
import { InvalidInputError, ReclaimRefusedError, sqlStateOf, toAnnalsError } from '../errors.js';
import { genesisHash, sealHash } from '../integrity/seal-hash.js';
import { sealAll } from '../integrity/sealing.js';
import { lifecycleStream } from '../queries/lifecycle.js';
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
import { readLastSealed, readPartitionSeals } from '../queries/seals.js';
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
   * gone for good (its stream tombstoned, or below its truncate-before), every event still
   * matches its seal, and no stream that may take appends again has its last event in it;
   * otherwise {@link ReclaimRefusedError} says why and nothing changes. Recorded in
   * `reclaimed_ranges` and as a `LogRangeDetached` event in `$lifecycle`, then sealed.
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
      'the log is busy: its lock was not free within 2 s (a long read or transaction holds it); nothing changed, try again',
      error,
    );
  }
  throw toAnnalsError(error);
};

/** The type of the `$lifecycle` event that records a detach. */
export const detachRecordType = 'LogRangeDetached';

/**
 * Refuses a range whose events no longer match their seals: what leaves the log must be what
 * was sealed (verify could not tell afterwards). One page at a time, outside the log lock;
 * stored events cannot change meanwhile.
 */
async function checkSeals(db: SqlQueryable, schema: string, partition: string): Promise<void> {
  for (let after = 0; ; ) {
    const page = await readPartitionSeals(db, schema, partition, after, 2000);
    for (const { event, hash, previous } of page) {
      const where = `position ${event.position} (${event.streamId}@${event.streamVersion})`;
      if (hash === null || (previous === null && event.streamVersion > 1)) {
        throw new ReclaimRefusedError(`${partition}: the seal of ${where} is missing: run verify`);
      }
      if (!sealHash(event, previous ?? genesisHash).equals(hash)) {
        throw new ReclaimRefusedError(`${partition}: the event at ${where} does not match its seal: run verify`);
      }
    }
    const last = page.at(-1);
    if (!last || page.length < 2000) return;
    after = last.event.position;
  }
}

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
        const bounds = (await readEventPartitions(context.client, schema)).find((p) => p.name === partition);
        if (!bounds) throw new ReclaimRefusedError(`no partition ${partition} is attached to the log`);
        // The seals are checked once the range could leave at all; else the SQL below says why not.
        const last = bounds.toPosition;
        if (last !== null && (await readLastSealed(context.client, schema)) > last) {
          await checkSeals(context.client, schema, partition);
        }
        const range = await context.client.transaction(async (tx) => {
          const detached = await detachEventPartition(tx, schema, partition, actor, reason as string);
          // The record in the log, sealed like any event: verify accepts the range's missing
          // events only with it, so a row written into reclaimed_ranges alone proves nothing.
          const record = context.pipeline.prepare([
            {
              streamId: lifecycleStream,
              events: [{ type: detachRecordType, data: { partition, ...detached }, metadata: { actor, reason } }],
            },
          ]);
          await context.pipeline.appendInTransaction(tx, record);
          return detached;
        });
        // Sealed now, so that verify believes the range at once; a failure here leaves it to
        // the next seal (the detach itself is done).
        await sealAll(context.client, schema).catch(() => {});
        return { partition, ...range };
      });
    },
  };
}
