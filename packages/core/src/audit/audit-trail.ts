/**
 * The audit trail: who changed what, when and why. Every query here reads through an index —
 * a stream by version, an actor or a request (correlation id) by their own indexes, a time range
 * as a position range found by binary search — so each answers in milliseconds at any log size.
 */
import { InvalidInputError } from '../errors.js';
import { readEventsByMetadata } from '../store/event-reads.js';
import type { EventStore } from '../store/event-store.js';
import { paged } from '../store/paging.js';
import { contextOf } from '../store/store-context.js';
import type { JsonValue, RecordedEvent } from '../types.js';
import { assertInteger, assertStreamId, assertTime, readOptions } from '../validation.js';

/** One event as the audit trail shows it. */
export interface AuditEntry {
  position: number;
  streamId: string;
  streamVersion: number;
  type: string;
  recordedAt: Date;
  actor: string | undefined;
  reason: string | undefined;
  correlationId: string | undefined;
  causationId: string | undefined;
  data: JsonValue;
}

/** An event and the events it caused, within one request. */
export interface CausalNode {
  event: RecordedEvent;
  children: CausalNode[];
}

/** A time range; either end may be open. */
export interface TimeRange {
  /** From this time on (inclusive). */
  from?: Date;
  /** Up to this time (inclusive). */
  to?: Date;
  /** Most events to return (a small limit reads little: pages are no larger than it). */
  limit?: number;
}

export function toAuditEntry(event: RecordedEvent): AuditEntry {
  const { actor, reason, correlationId, causationId } = event.metadata;
  return {
    position: event.position,
    streamId: event.streamId,
    streamVersion: event.streamVersion,
    type: event.type,
    recordedAt: event.recordedAt,
    actor,
    reason,
    correlationId,
    causationId,
    data: event.data,
  };
}

/** The metadata keys with an index of their own, for {@link auditTrail}'s `byMetadata`. */
export type IndexedMetadataKey = 'actor' | 'correlationId' | 'subject';

/**
 * Audit queries over one store; see the module comment.
 *
 * @example
 * ```ts
 * import { auditTrail } from '@annals/core';
 *
 * const audit = auditTrail(store);
 * for await (const event of audit.byActor('ada', { from: new Date('2026-11-01'), limit: 100 })) {
 *   console.log(event.recordedAt, event.streamId, event.type, event.metadata.reason);
 * }
 * const tree = await audit.causalTree('request-42');
 * console.log(tree.length);
 * ```
 */
export function auditTrail(store: EventStore) {
  const context = contextOf(store);
  const { schema, options } = context;

  /**
   * Events whose metadata names this actor, this correlation id, or this data subject (events
   * holding its personal data), in log order, through their own index; `after`/`upTo` bound
   * the positions (see `store.positionAt`), `limit` the number of events.
   */
  const byMetadata = (
    key: IndexedMetadataKey,
    value: string,
    range: { after?: number; upTo?: number; limit?: number; pageSize?: number } = {},
  ): AsyncIterable<RecordedEvent> => {
    if (key !== 'actor' && key !== 'correlationId' && key !== 'subject') {
      throw new InvalidInputError('key', 'must be "actor", "correlationId" or "subject"');
    }
    assertStreamId(value, key, 1000);
    if (typeof range !== 'object' || range === null) throw new InvalidInputError('range', 'must be an object');
    const { after = 0, upTo = Number.MAX_SAFE_INTEGER, limit, pageSize = options.pageSize } = range;
    assertInteger(after, 'after', 0);
    assertInteger(upTo, 'upTo', 0);
    if (limit !== undefined) assertInteger(limit, 'limit', 0);
    assertInteger(pageSize, 'pageSize', 1);
    return {
      [Symbol.asyncIterator]: () =>
        paged(
          after,
          pageSize,
          limit ?? Number.POSITIVE_INFINITY,
          (position, rows) =>
            context.query((db) => readEventsByMetadata(db, schema, key, value, { after: position, upTo, limit: rows })),
          (last) => last.position,
        ),
    };
  };

  /** Positions (after, upTo] covering a time range. */
  const positions = async (given: TimeRange) => {
    const range = readOptions<TimeRange>(given, 'range');
    for (const field of ['from', 'to'] as const) {
      const value = range[field];
      if (value !== undefined) assertTime(value, field);
    }
    if (range.from && range.to && range.from.getTime() > range.to.getTime()) {
      throw new InvalidInputError('to', 'must not be before from');
    }
    // Just before `from`: the earliest Date has no instant before it, and none is recorded there.
    const after = range.from ? await store.positionAt(new Date(Math.max(range.from.getTime() - 1, -8.64e15))) : 0;
    const upTo = range.to ? await store.positionAt(range.to) : Number.MAX_SAFE_INTEGER;
    return { after, upTo };
  };

  return {
    byMetadata,

    /** A stream's events with actor, time, reason, correlation and causation. */
    async *history(
      streamId: string,
      options: { fromVersion?: number; limit?: number } = {},
    ): AsyncGenerator<AuditEntry> {
      // The audit trail shows every stored event, whatever the stream's lifecycle state.
      const read = { ...options, includeDeleted: true, includeArchived: true };
      for await (const event of store.readStream(streamId, read)) yield toAuditEntry(event);
    },

    /** Everything one actor did in a time range, in log order. */
    async *byActor(actor: string, range: TimeRange = {}): AsyncGenerator<RecordedEvent> {
      const { after, upTo } = await positions(range);
      yield* byMetadata('actor', actor, { after, upTo, limit: range.limit });
    },

    /** Every event (of some categories or types) in a time range, in log order. */
    async *inRange(
      range: TimeRange & { categories?: string[]; eventTypes?: string[] } = {},
    ): AsyncGenerator<RecordedEvent> {
      const { after, upTo } = await positions(range);
      if (upTo <= after) return;
      for await (const event of store.readAll({
        after,
        categories: range.categories,
        eventTypes: range.eventTypes,
        limit: range.limit,
        includeDeleted: true,
        includeArchived: true,
      })) {
        if (event.position > upTo) return;
        yield event;
      }
    },

    /**
     * Every event holding a data subject's personal data in a time range, in log order (a
     * subject access request). After `forgetSubject`, the same events with their personal
     * fields redacted.
     */
    async *bySubject(subjectId: string, range: TimeRange = {}): AsyncGenerator<RecordedEvent> {
      const { after, upTo } = await positions(range);
      yield* byMetadata('subject', subjectId, { after, upTo, limit: range.limit });
    },

    /**
     * The causal tree of one request: every event sharing `correlationId`, each under the
     * event that caused it; events caused by something outside the set (a command) are roots.
     */
    async causalTree(correlationId: string): Promise<CausalNode[]> {
      const nodes = new Map<string, CausalNode>();
      for await (const event of byMetadata('correlationId', correlationId)) {
        nodes.set(event.id, { event, children: [] });
      }
      const roots: CausalNode[] = [];
      for (const node of nodes.values()) {
        const parent = node.event.metadata.causationId ? nodes.get(node.event.metadata.causationId) : undefined;
        if (parent && parent !== node) parent.children.push(node);
        else roots.push(node);
      }
      return roots;
    },
  };
}
