/**
 * Reads with a count: a stream forwards or backwards from a revision, `$all` forwards or
 * backwards from a position (with the server-side filter), and `$$<stream>`.
 */
import { type EventStore, type RecordedEvent, StreamDeletedError } from '@annals/core';
import { streamDeleted } from './errors.js';
import { recordedOf } from './mapping.js';
import { metaPrefix, readMetadata } from './metadata-stream.js';
import type { ReadPlan } from './read-options.js';
import { type ReadCall, send } from './sink.js';

/** Events read per round trip. */
const pageSize = 500;

/** A read's answer for one event. */
export const eventMessage = (event: RecordedEvent, plan: ReadPlan) => ({
  event: { event: recordedOf(event, plan.structuredIds), commit_position: String(event.position) },
});

const notFound = (stream: string) => ({
  stream_not_found: { stream_identifier: { stream_name: Buffer.from(stream) } },
});

/** `$all` backwards from before `before`: windows of positions read forwards, then reversed. */
async function* backwardsAll(
  store: EventStore,
  before: number,
  categories: readonly string[] | null,
): AsyncGenerator<RecordedEvent> {
  let high = before;
  while (high > 1) {
    const low = Math.max(0, high - pageSize);
    const page: RecordedEvent[] = [];
    for await (const event of store.readAll({
      after: low,
      limit: high - low - 1,
      ...(categories ? { categories: [...categories] } : {}),
    })) {
      if (event.position < high) page.push(event);
    }
    for (let i = page.length - 1; i >= 0; i--) yield page[i] as RecordedEvent;
    high = low + 1;
  }
}

/** Answers a read with a count; ends when done (the caller ends the call). */
export async function readEvents(
  store: EventStore,
  call: ReadCall,
  plan: ReadPlan,
  categories: readonly string[] | null,
): Promise<void> {
  const count = plan.count ?? 0;
  if (count === 0) return;
  if (plan.stream?.startsWith(metaPrefix) && plan.stream.length > metaPrefix.length) {
    const target = plan.stream.slice(metaPrefix.length);
    const kept = await readMetadata(store, target);
    if (!kept) return void (await send(call, notFound(plan.stream)));
    const event: RecordedEvent = {
      position: 0,
      streamId: plan.stream,
      streamVersion: kept.revision + 1,
      id: kept.id,
      type: '$metadata',
      data: kept.data,
      metadata: {},
      recordedAt: new Date(kept.recordedAt),
    };
    return void (await send(call, { event: { event: recordedOf(event, plan.structuredIds), no_position: {} } }));
  }
  let events: AsyncIterable<RecordedEvent>;
  if (plan.stream !== undefined) {
    const stream = plan.stream;
    const info = await store.getStream(stream);
    if (info?.state === 'tombstoned') throw streamDeleted(stream);
    // A soft-deleted stream reads as KurrentDB reads one: not found.
    if (!info || info.version === 0 || info.state === 'deleted') return void (await send(call, notFound(stream)));
    if (plan.backwards && plan.from === 'start') return;
    const fromVersion =
      plan.from === 'start' ? 1 : plan.from === 'end' ? (plan.backwards ? undefined : info.version + 1) : plan.from + 1;
    if (!plan.backwards && fromVersion !== undefined && fromVersion > info.version) return;
    events = store.readStream(stream, {
      direction: plan.backwards ? 'backward' : 'forward',
      ...(fromVersion !== undefined ? { fromVersion } : {}),
      limit: count,
    });
  } else {
    const scope = categories ? { categories: [...categories] } : {};
    if (plan.backwards) {
      if (plan.from === 'start') return;
      const before = plan.from === 'end' ? (await store.headPosition()) + 1 : plan.from;
      events = backwardsAll(store, before, categories);
    } else {
      const after =
        plan.from === 'start' ? 0 : plan.from === 'end' ? await store.headPosition() : Math.max(0, plan.from - 1);
      events = store.readAll({ after, ...scope });
    }
  }
  let sent = 0;
  try {
    for await (const event of events) {
      if (call.cancelled) return;
      if (plan.filter && !plan.filter(event)) continue;
      await send(call, eventMessage(event, plan));
      if (++sent >= count) return;
    }
  } catch (error) {
    if (error instanceof StreamDeletedError && plan.stream !== undefined) {
      if (error.tombstoned) throw streamDeleted(plan.stream);
      return void (await send(call, notFound(plan.stream)));
    }
    throw error;
  }
}
