/**
 * KurrentDB's metadata streams, `$$<stream>`: one `$metadata` event of JSON per change. Here
 * the newest is kept in the stream's Annals metadata under `$kurrent` (the other keys stay as
 * they are), and its `$maxCount`, `$maxAge` and `$tb` become the stream's retention through
 * `lifecycle(store).setRetention`, which hides older events from reads without removing them.
 * Reading `$$<stream>` answers that one event (its revision counts the changes).
 */
import {
  type EventStore,
  type JsonObject,
  type JsonValue,
  lifecycle,
  type NewEvent,
  type RetentionSettings,
  StreamMetadataChangedError,
} from '@annals/core';
import { BadRequest, kurrentKey } from './mapping.js';

/** The prefix of a metadata stream's name. */
export const metaPrefix = '$$';

/** What is kept of a stream's KurrentDB metadata. */
export interface StoredMetadata {
  /** The metadata stream's revision: 0 for the first change. */
  revision: number;
  id: string;
  data: JsonObject;
  recordedAt: string;
}

/** The metadata stream's expected revision, as the request gave it. */
export type MetaExpected = { revision: number } | 'any' | 'no-stream' | 'stream-exists';

/** The stored metadata of `stream`, or undefined when none was set. */
export async function readMetadata(store: EventStore, stream: string): Promise<StoredMetadata | undefined> {
  return keptOf((await store.getStream(stream))?.metadata ?? {});
}

/** What a stream's Annals metadata keeps of its KurrentDB metadata. */
function keptOf(metadata: JsonObject): StoredMetadata | undefined {
  const kept = metadata[kurrentKey] as JsonValue | undefined;
  if (typeof kept !== 'object' || kept === null || Array.isArray(kept)) return undefined;
  return kept as unknown as StoredMetadata;
}

const nonNegative = (value: JsonValue | undefined, field: string, min: number): number | undefined => {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new BadRequest(`${field} must be an integer of at least ${min}`);
  }
  return value;
};

/**
 * Appends to `$$<stream>`: checks the expected revision, keeps the metadata, sets retention.
 * Returns the metadata stream's new revision, or `{ conflict }` with the current one.
 */
export async function writeMetadata(
  store: EventStore,
  stream: string,
  events: NewEvent[],
  expected: MetaExpected,
  actor: string | undefined,
): Promise<{ revision: number } | { conflict: number | undefined }> {
  const info = await store.getStream(stream);
  const metadata = info?.metadata ?? {};
  const current = keptOf(metadata);
  const ok =
    expected === 'any' ||
    (expected === 'no-stream' && !current) ||
    (expected === 'stream-exists' && current) ||
    (typeof expected === 'object' && current?.revision === expected.revision);
  if (!ok) return { conflict: current?.revision };
  if (events.length === 0) return { revision: current?.revision ?? -1 };
  for (const event of events) {
    if (event.type !== '$metadata') throw new BadRequest(`${metaPrefix}${stream} takes only $metadata events`);
    const data = event.data;
    if (typeof data !== 'object' || data === null || Array.isArray(data) || '$binary' in data) {
      throw new BadRequest('stream metadata must be a JSON object');
    }
  }
  const last = events[events.length - 1] as NewEvent;
  const data = last.data as JsonObject;
  const revision = (current?.revision ?? -1) + events.length;
  const kept: StoredMetadata = { revision, id: last.id as string, data, recordedAt: new Date().toISOString() };
  const settings: RetentionSettings = {
    maxCount: nonNegative(data.$maxCount, '$maxCount', 1) ?? null,
    maxAge: nonNegative(data.$maxAge, '$maxAge', 1) ?? null,
    reason: `${metaPrefix}${stream} set through the KurrentDB protocol`,
    ...(actor ? { actor } : {}),
    // The expected revision holds only if the metadata read above is still the stream's when
    // the change is stored, in the same transaction as its retention.
    metadata: { from: metadata, to: { ...metadata, [kurrentKey]: kept as unknown as JsonObject } },
  };
  const tb = nonNegative(data.$tb, '$tb', 0);
  if (tb !== undefined) {
    // $tb is a revision; truncateBefore a version, only raised, at most the version + 1.
    const wanted = Math.min(tb + 1, (info?.version ?? 0) + 1);
    if (wanted > (info?.truncateBefore ?? 0)) settings.truncateBefore = wanted;
  }
  try {
    await lifecycle(store).setRetention(stream, settings);
  } catch (error) {
    if (!(error instanceof StreamMetadataChangedError)) throw error;
    // Another writer changed it first: the answer for an `any` append is to try again.
    if (expected === 'any') return writeMetadata(store, stream, events, expected, actor);
    return { conflict: keptOf(error.actual)?.revision };
  }
  return { revision };
}
