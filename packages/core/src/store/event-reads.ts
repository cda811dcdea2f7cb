/**
 * Every read of events, with personal fields revealed: decrypted, or `null` once their
 * subject was forgotten. The store, its facets and its workers read events only through
 * these functions (a dependency test holds them to it), so no read path can hand out
 * ciphertext or skip a redaction. The queries behind them return events as stored.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { StreamArchivedError, StreamDeletedError } from '../errors.js';
import { revealEvents } from '../personal/personal-data.js';
import { readByMetadata } from '../queries/audit.js';
import { loadStreamPage } from '../queries/load-stream.js';
import { type ReadAllFilter, readAllPage, readAllPageOfPartitions } from '../queries/read-all.js';
import { readEventById } from '../queries/read-event.js';
import { readStreamPage } from '../queries/read-stream.js';
import type { Snapshot } from '../queries/snapshots.js';
import type { RecordedEvent, StreamState } from '../types.js';

export type { ReadAllFilter } from '../queries/read-all.js';

/** Up to `limit` events after position `after`, in log order, matching `filter`. */
export async function readAllEvents(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  filter: ReadAllFilter = {},
): Promise<RecordedEvent[]> {
  return revealEvents(db, schema, await readAllPage(db, schema, after, limit, filter));
}

/** {@link readAllEvents} for several partitions at once, each event beside its partition. */
export async function readAllEventsOfPartitions(
  db: SqlQueryable,
  schema: string,
  after: number,
  limit: number,
  filter: ReadAllFilter & { partition: NonNullable<ReadAllFilter['partition']> },
): Promise<{ events: RecordedEvent[]; partitions: number[] }> {
  const page = await readAllPageOfPartitions(db, schema, after, limit, filter);
  return { events: await revealEvents(db, schema, page.events), partitions: page.partitions };
}

/** What a stream read shows beyond live events. */
export interface StreamReadScope {
  includeDeleted: boolean;
  includeArchived: boolean;
}

/**
 * Throws what a read of a stream in `state` answers: {@link StreamDeletedError} for a deleted
 * or tombstoned one (unless `includeDeleted`), {@link StreamArchivedError} for an archived one
 * (unless `includeArchived`).
 */
export function assertReadable(streamId: string, state: StreamState, scope: StreamReadScope): void {
  if ((state === 'deleted' || state === 'tombstoned') && !scope.includeDeleted) {
    throw new StreamDeletedError(streamId, state === 'tombstoned', ': read it with includeDeleted to see its events');
  }
  if (state === 'archived' && !scope.includeArchived) {
    throw new StreamArchivedError(streamId, ': read it with includeArchived to see its events');
  }
}

/**
 * Events of a stream from `fromVersion` (inclusive) in `direction`, at most `limit`, as its
 * lifecycle state lets `scope` see them (see {@link assertReadable}); without
 * `includeDeleted`, none below a re-opened stream's truncation.
 */
export async function readStreamEvents(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  direction: 'forward' | 'backward',
  fromVersion: number,
  limit: number,
  scope: StreamReadScope = { includeDeleted: false, includeArchived: false },
): Promise<RecordedEvent[]> {
  const page = await readStreamPage(db, schema, streamId, direction, fromVersion, limit, scope.includeDeleted);
  assertReadable(streamId, page.state, scope);
  return revealEvents(db, schema, page.events);
}

/** Events whose indexed metadata `key` is `value`, in a position range, in log order. */
export async function readEventsByMetadata(
  db: SqlQueryable,
  schema: string,
  key: 'actor' | 'correlationId' | 'subject',
  value: string,
  range: { after: number; upTo: number; limit: number },
): Promise<RecordedEvent[]> {
  return revealEvents(db, schema, await readByMetadata(db, schema, key, value, range));
}

/** One event by id, or null. */
export async function readEvent(db: SqlQueryable, schema: string, eventId: string): Promise<RecordedEvent | null> {
  const event = await readEventById(db, schema, eventId);
  return event ? ((await revealEvents(db, schema, [event]))[0] ?? null) : null;
}

/**
 * A stream's latest usable snapshot and the first page of events after it, in one round trip;
 * throws for a deleted, tombstoned or archived stream (see {@link assertReadable}).
 */
export async function loadStreamEvents(
  db: SqlQueryable,
  schema: string,
  streamId: string,
  snapshotOf: { decider: string; modelVersion: number } | null,
  toVersion: number,
  limit: number,
): Promise<{ snapshot: Snapshot | null; events: RecordedEvent[] }> {
  const { snapshot, events, state } = await loadStreamPage(db, schema, streamId, snapshotOf, toVersion, limit);
  assertReadable(streamId, state, { includeDeleted: false, includeArchived: false });
  return { snapshot, events: await revealEvents(db, schema, events) };
}
