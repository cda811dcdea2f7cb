/**
 * The lifecycle facet of a store: soft delete, tombstone, archive and unarchive a stream, and
 * set its retention, without rewriting history. No stored event changes: a stream's state is a row of
 * `stream_states` (sql/0009_stream_lifecycle.sql), changed by `change_stream_state` under the
 * log lock, and each change is recorded as an event in the stream `$lifecycle` (with who did
 * it and why) through the store's one append path, in the same transaction. What each state
 * means for each read path is in docs/operations.md, "Stream lifecycle".
 */

import type { SqlQueryable } from '../db/sql-client.js';
import {
  ConcurrencyError,
  InvalidInputError,
  StreamDeletedError,
  StreamMetadataChangedError,
  StreamTombstonedError,
  toAnnalsError,
} from '../errors.js';
import { expectedVersionCode } from '../expected-version.js';
import {
  changeStreamState,
  type RetentionChange,
  lifecycleStream as recordStream,
  type StateChange,
  setStreamRetention,
} from '../queries/lifecycle.js';
import { swapStreamMetadata } from '../queries/streams.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import type { ExpectedVersion, JsonObject, StreamRetention, StreamState } from '../types.js';
import {
  assertInteger,
  assertStreamId,
  encodeExpectedVersion,
  type PreparedWrite,
  readOptions,
  toJson,
} from '../validation.js';

/** `value` when it is a JSON object (not an array, not null), else an {@link InvalidInputError}. */
function checkedObject(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(field, 'must be an object');
  }
  return value as JsonObject;
}

/**
 * The stream where every lifecycle change is recorded (category `$lifecycle`). Only
 * `lifecycle(store)` writes it: an append to it is refused with {@link InvalidInputError}.
 */
export const lifecycleStream: string = recordStream;

/** Who changes a stream's lifecycle, why, and what they expect of it. */
export interface LifecycleChange {
  /** Why (recorded with the change; required). */
  reason: string;
  /** Who (recorded with the change as the event's `actor`). */
  actor?: string;
  /**
   * The stream's version the change expects: an exact version, `'stream-exists'` or
   * `'any'` (as an append's, against the stream's version, hidden events included).
   * @defaultValue `'any'`
   */
  expectedVersion?: Exclude<ExpectedVersion, 'no-stream'>;
}

/** What a lifecycle change did. */
export interface LifecycleResult {
  streamId: string;
  /** The state now. */
  state: StreamState;
  /** The state before. */
  previousState: StreamState;
  /** False when the stream already was in that state: nothing was changed nor recorded. */
  changed: boolean;
  /** The stream's version (its last event's; versions never restart). */
  streamVersion: number;
  /** Versions below this are hidden from default reads (0: none). */
  truncateBefore: number;
  /** Position of the recorded change in `$lifecycle` (null when nothing changed). */
  position: number | null;
}

/**
 * A change of a stream's retention, with who and why. A field left out keeps its value;
 * `null` removes that window.
 */
export interface RetentionSettings {
  /** Only the last `maxCount` versions are read (at least 1; null: all). */
  maxCount?: number | null;
  /** Only events recorded in the last `maxAge` seconds are read (at least 1; null: all). */
  maxAge?: number | null;
  /**
   * Hide the versions below this from every default read, the global log included (as
   * KurrentDB's `$tb`). Only ever raised, and at most to the stream's version + 1.
   */
  truncateBefore?: number;
  /** Why (recorded with the change; required). */
  reason: string;
  /** Who (recorded with the change as the event's `actor`). */
  actor?: string;
  /**
   * Also replace the stream's metadata with `to`, in the same transaction, but only if it
   * still equals `from` (as JSON; `{}` for none): else nothing of the change is stored and
   * {@link StreamMetadataChangedError} says what the metadata was. Settings kept in a stream's
   * metadata (as the KurrentDB protocol keeps `$$` streams) then change with its retention.
   */
  metadata?: { from: JsonObject; to: JsonObject };
}

/** What a retention change did. */
export interface RetentionResult extends StreamRetention {
  streamId: string;
  state: StreamState;
  /** False when nothing differed: nothing was changed nor recorded. */
  changed: boolean;
  streamVersion: number;
  truncateBefore: number;
  /** Position of the recorded `StreamRetentionSet` in `$lifecycle` (null when nothing changed). */
  position: number | null;
}

/** The lifecycle operations of one store; see {@link lifecycle}. */
export interface Lifecycle {
  /**
   * Soft-deletes a stream: reads of it answer {@link StreamDeletedError}, `readAll` and the
   * workers skip its events, and every event stays in the log. An append with expected
   * version `'any'` or `'no-stream'` re-opens it at its next version, with the old events
   * still hidden; an exact version or `'stream-exists'` is refused with
   * {@link StreamDeletedError}. Recorded as `StreamDeleted` in `$lifecycle`.
   *
   * @example
   * ```ts
   * import { lifecycle } from '@annals/core';
   *
   * const { truncateBefore } = await lifecycle(store).delete('account-42', {
   *   reason: 'account closed by request #881',
   *   actor: 'support@example.com',
   * });
   * console.log(`versions below ${truncateBefore} are hidden`);
   * ```
   *
   * @throws {@link ConcurrencyError} when the stream is not at `expectedVersion`.
   * @throws {@link StreamTombstonedError} when it is tombstoned.
   */
  delete(streamId: string, change: LifecycleChange): Promise<LifecycleResult>;
  /**
   * Tombstones a stream: deleted for good. Every later append is refused with
   * {@link StreamTombstonedError}; reads answer {@link StreamDeletedError} (`tombstoned:
   * true`). Works on a stream in any state but tombstoned, also one without events (which
   * reserves the name). Recorded as `StreamTombstoned` in `$lifecycle`.
   *
   * @example
   * ```ts
   * import { lifecycle } from '@annals/core';
   *
   * await lifecycle(store).tombstone('account-42', { reason: 'retention period over', expectedVersion: 12 });
   * ```
   */
  tombstone(streamId: string, change: LifecycleChange): Promise<LifecycleResult>;
  /**
   * Archives a stream: kept, hidden from default reads (readable with `includeArchived`)
   * and from the live work of subscriptions and projections; appends are refused with
   * {@link StreamArchivedError} until {@link Lifecycle.unarchive}. A soft-deleted stream
   * cannot be archived ({@link StreamDeletedError}). Recorded as `StreamArchived`.
   *
   * @example
   * ```ts
   * import { lifecycle } from '@annals/core';
   *
   * await lifecycle(store).archive('order-2019-77', { reason: 'closed orders of 2019' });
   * for await (const event of store.readStream('order-2019-77', { includeArchived: true })) console.log(event.type);
   * ```
   */
  archive(streamId: string, change: LifecycleChange): Promise<LifecycleResult>;
  /**
   * Unarchives a stream: back to active, readable and writable as before. A stream that is
   * not archived is left as it is (`changed: false`). Recorded as `StreamUnarchived`.
   *
   * @example
   * ```ts
   * import { lifecycle } from '@annals/core';
   *
   * const { changed } = await lifecycle(store).unarchive('order-2019-77', { reason: 'customer dispute' });
   * console.log(changed);
   * ```
   */
  unarchive(streamId: string, change: LifecycleChange): Promise<LifecycleResult>;
  /**
   * Sets a stream's retention, as KurrentDB's `$maxCount`, `$maxAge` and `$tb`: older events
   * are hidden from reads of the stream (`readStream`, command loads, time travel; a stream
   * with a `maxCount` or `maxAge` is folded without snapshots), never removed, and shown
   * with `includeDeleted`. `truncateBefore` also hides them from the global log and its
   * workers; the moving windows `maxCount` and `maxAge` do not (docs/operations.md).
   * Recorded as `StreamRetentionSet` in `$lifecycle`.
   *
   * @example
   * ```ts
   * import { lifecycle } from '@annals/core';
   *
   * await lifecycle(store).setRetention('sensor-7', { maxCount: 1000, maxAge: 30 * 24 * 3600, reason: 'keep a month' });
   * console.log((await store.getStream('sensor-7'))?.retention);
   * ```
   *
   * @throws {@link StreamTombstonedError} when it is tombstoned.
   * @throws {@link InvalidInputError} for a bad value, or `truncateBefore` past the version + 1.
   */
  setRetention(streamId: string, settings: RetentionSettings): Promise<RetentionResult>;
}

const recordTypes = {
  deleted: 'StreamDeleted',
  tombstoned: 'StreamTombstoned',
  archived: 'StreamArchived',
  active: 'StreamUnarchived',
} as const;

/**
 * The lifecycle facet of `store`: soft delete, tombstone, archive, unarchive and retention.
 *
 * @example
 * ```ts
 * import { lifecycle } from '@annals/core';
 *
 * await lifecycle(store).delete('cart-9', { reason: 'abandoned', actor: 'cleanup-job' });
 * console.log((await store.getStream('cart-9'))?.state); // 'deleted'
 * ```
 */
export function lifecycle(store: EventStore): Lifecycle {
  const context = contextOf(store);
  /** Checks the stream and who and why, before any SQL. */
  const checked = <T extends { reason: string; actor?: string }>(streamId: string, given: T, field: string) => {
    context.assertOpen();
    assertStreamId(streamId, 'streamId', context.options.maxStreamIdLength);
    if (streamId === lifecycleStream) {
      throw new InvalidInputError('streamId', `${lifecycleStream} records lifecycle changes and has none of its own`);
    }
    const by = readOptions<T>(given, field);
    if (typeof by.reason !== 'string' || by.reason.trim() === '') {
      throw new InvalidInputError(`${field}.reason`, 'is required: a lifecycle change is recorded with why');
    }
    if (by.actor !== undefined && typeof by.actor !== 'string') {
      throw new InvalidInputError(`${field}.actor`, 'must be a string');
    }
    return by;
  };
  /** The record of a change in `$lifecycle`, prepared (checked) before any SQL. */
  const recordOf = (
    type: string,
    data: Record<string, string | number | null>,
    by: { reason?: string; actor?: string },
  ) =>
    context.pipeline.prepare([
      {
        streamId: lifecycleStream,
        events: [{ type, data, metadata: { ...(by.actor ? { actor: by.actor } : {}), reason: by.reason as string } }],
      },
    ]);
  /**
   * Runs a change in one transaction, holding the log lock from `run` to commit, and records
   * it in `$lifecycle` (through the one append path) when it changed something.
   */
  const recorded = async <O extends { outcome: string }>(
    run: (tx: SqlQueryable) => Promise<O>,
    record: (outcome: O) => PreparedWrite[],
  ): Promise<[O, number | null]> => {
    try {
      return await context.client.transaction(async (tx) => {
        const outcome = await run(tx);
        if (outcome.outcome !== 'ok') return [outcome, null];
        const [result] = await context.pipeline.appendInTransaction(tx, record(outcome));
        return [outcome, result?.positions[0] ?? null];
      });
    } catch (error) {
      throw toAnnalsError(error);
    }
  };
  const change = async (streamId: string, to: StreamState, given: LifecycleChange): Promise<LifecycleResult> => {
    const by = checked(streamId, given, 'change');
    const expected = by.expectedVersion ?? 'any';
    const expectedCode = encodeExpectedVersion(expected, 'change.expectedVersion');
    if (expectedCode === expectedVersionCode['no-stream']) {
      throw new InvalidInputError('change.expectedVersion', 'must be a version, "any" or "stream-exists"');
    }
    // Checked before any SQL, like an append: the record's metadata must be valid.
    const record = (outcome: StateChange) =>
      recordOf(
        recordTypes[to],
        {
          streamId,
          previousState: outcome.previousState,
          streamVersion: outcome.streamVersion,
          truncateBefore: outcome.truncateBefore,
        },
        by,
      );
    record({ outcome: 'ok', previousState: 'active', streamVersion: 0, truncateBefore: 0 });
    const [outcome, position] = await recorded(
      (tx) => changeStreamState(tx, context.schema, streamId, to, expectedCode),
      record,
    );
    switch (outcome.outcome) {
      case 'conflict':
        throw new ConcurrencyError(streamId, expected, outcome.streamVersion);
      case 'tombstoned':
        throw new StreamTombstonedError(streamId);
      case 'deleted':
        throw new StreamDeletedError(streamId, false, ': re-open it with an append before archiving it');
      default:
        return {
          streamId,
          state: outcome.outcome === 'ok' ? to : outcome.previousState,
          previousState: outcome.previousState,
          changed: outcome.outcome === 'ok',
          streamVersion: outcome.streamVersion,
          truncateBefore: outcome.truncateBefore,
          position,
        };
    }
  };
  return {
    delete: (streamId, given) => change(streamId, 'deleted', given),
    tombstone: (streamId, given) => change(streamId, 'tombstoned', given),
    archive: (streamId, given) => change(streamId, 'archived', given),
    unarchive: (streamId, given) => change(streamId, 'active', given),
    async setRetention(streamId, given) {
      const by = checked(streamId, given, 'settings');
      const settings: { maxCount?: number | null; maxAge?: number | null; truncateBefore?: number } = {};
      for (const field of ['maxCount', 'maxAge'] as const) {
        const value = by[field];
        if (value === undefined) continue;
        if (value !== null) assertInteger(value, `settings.${field}`, 1);
        settings[field] = value;
      }
      if (by.truncateBefore !== undefined) {
        assertInteger(by.truncateBefore, 'settings.truncateBefore', 0);
        settings.truncateBefore = by.truncateBefore;
      }
      const record = (outcome: RetentionChange) =>
        recordOf(
          'StreamRetentionSet',
          {
            streamId,
            maxCount: outcome.maxCount,
            maxAge: outcome.maxAge,
            truncateBefore: outcome.truncateBefore,
            streamVersion: outcome.streamVersion,
          },
          by,
        );
      record({ outcome: 'ok', state: 'active', streamVersion: 0, truncateBefore: 0, maxCount: null, maxAge: null });
      const swap = by.metadata && {
        from: toJson(checkedObject(by.metadata.from, 'settings.metadata.from'), 'settings.metadata.from'),
        to: toJson(checkedObject(by.metadata.to, 'settings.metadata.to'), 'settings.metadata.to'),
      };
      const [outcome, position] = await recorded(async (tx) => {
        // After the retention, which takes the log lock: retention changes are serial, and the
        // metadata compared is the latest committed.
        const changed = await setStreamRetention(tx, context.schema, streamId, settings);
        if (swap) {
          const found = await swapStreamMetadata(tx, context.schema, streamId, swap.from, swap.to);
          if (found) throw new StreamMetadataChangedError(streamId, found);
        }
        return changed;
      }, record);
      if (outcome.outcome === 'tombstoned') throw new StreamTombstonedError(streamId);
      if (outcome.outcome === 'beyond') {
        throw new InvalidInputError(
          'settings.truncateBefore',
          `${settings.truncateBefore} is past the stream's version + 1 (${outcome.streamVersion + 1})`,
        );
      }
      return {
        streamId,
        state: outcome.state,
        changed: outcome.outcome === 'ok',
        streamVersion: outcome.streamVersion,
        truncateBefore: outcome.truncateBefore,
        maxCount: outcome.maxCount,
        maxAge: outcome.maxAge,
        position,
      };
    },
  };
}
