/**
 * Listing the streams of a store, for operators and tools (`annals streams`, `GET /streams`):
 * in stream-id order, a page at a time, each with its version, its last event and its
 * lifecycle state. See queries/stream-list.ts for what a page costs.
 */
import { InvalidInputError } from '../errors.js';
import { listStreamPage } from '../queries/stream-list.js';
import type { StreamState } from '../types.js';
import { assertStreamId, readOptions } from '../validation.js';
import type { EventStore } from './event-store.js';
import { contextOf } from './store-context.js';

/** One stream as {@link listStreams} gives it. */
export interface StreamSummary {
  streamId: string;
  /** Its version: the last event's (versions count every stored event, hidden ones included). */
  version: number;
  /** Global position of its last event. */
  lastPosition: number;
  lastEventAt: Date;
  state: StreamState;
}

/** Options of {@link listStreams}. */
export interface ListStreamsOptions {
  /** Only streams of this category (the part of the id before the first `-`). */
  category?: string;
  /** Start after this stream id (the `next` of the previous page). */
  after?: string;
  /** Streams per page, 1 to 10,000. @defaultValue 100 */
  limit?: number;
}

/** A page of streams; `next` is the `after` of the next page, or null at the end. */
export interface StreamPage {
  streams: StreamSummary[];
  next: string | null;
}

/**
 * Lists the streams that have events, in stream-id order, a page at a time.
 *
 * @example
 * ```ts
 * import { listStreams } from '@annals/core';
 *
 * let page = await listStreams(store, { category: 'account', limit: 50 });
 * for (const s of page.streams) console.log(s.streamId, s.version, s.lastEventAt.toISOString());
 * if (page.next) page = await listStreams(store, { category: 'account', after: page.next });
 * ```
 */
export async function listStreams(store: EventStore, options?: ListStreamsOptions): Promise<StreamPage> {
  const context = contextOf(store);
  context.assertOpen();
  const given = readOptions<ListStreamsOptions>(options, 'options');
  const limit = given.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
    throw new InvalidInputError('options.limit', 'must be an integer from 1 to 10000');
  }
  if (given.after !== undefined) assertStreamId(given.after, 'options.after', context.options.maxStreamIdLength);
  if (given.category !== undefined) {
    assertStreamId(given.category, 'options.category', context.options.maxStreamIdLength);
    if (given.category.includes('-')) throw new InvalidInputError('options.category', 'must not contain "-"');
  }
  const rows = await context.query((db) =>
    listStreamPage(db, context.options.schema, given.after ?? '', limit, given.category ?? null),
  );
  const streams = rows.map(
    (row): StreamSummary => ({
      streamId: row.stream_id,
      version: Number(row.version),
      lastPosition: Number(row.last_position),
      lastEventAt: row.last_event_at,
      state: (row.state ?? 'active') as StreamState,
    }),
  );
  return { streams, next: streams.length === limit ? (streams.at(-1)?.streamId ?? null) : null };
}
