/**
 * Time travel: a stream's state as of a version, a time or a global position; a step-through
 * replay with the state before and after each event and a structured diff; and what changed
 * between two moments. Plain folds of the decider's `evolve` over the stored events.
 *
 * Times map to positions by binary search over the log: an append takes its time from the
 * database clock while it holds the log lock, so `recorded_at` never decreases along the
 * positions (as long as the server clock is not set back).
 */
import diff, { type Difference } from 'microdiff';
import type { Command, Decider, DomainEvent } from '../decider/decider.js';
import type { EventRegistry } from '../decider/event-registry.js';
import { InvalidInputError, StreamNotFoundError } from '../errors.js';
import type { EventStore } from '../store/event-store.js';
import type { RecordedEvent } from '../types.js';
import { assertInteger, assertTime } from '../validation.js';

/** A moment in a stream's history. */
export type PointInTime = { version: number } | { time: Date } | { position: number };

/** A stream's state at a moment, and the last event it includes. */
export interface StateAt<S> {
  streamId: string;
  state: S;
  streamVersion: number;
  position: number;
  recordedAt: Date;
}

/** One step of a replay. */
export interface ReplayStep<S> {
  event: RecordedEvent;
  before: S;
  after: S;
  /** What the event changed in the state: paths with their old and new values. */
  changes: Difference[];
}

/** What changed in the log between two moments. */
export interface Changes<S> {
  fromPosition: number;
  toPosition: number;
  events: RecordedEvent[];
  streams: { streamId: string; before: S; after: S; changes: Difference[] }[];
}

/**
 * A decider for looking at streams without the application's own: the state is each event's
 * data merged over the previous state (a field keeps its last written value), plus the type
 * of the last event. It decides nothing. The CLI and the server use it when no decider is given.
 */
export const mergeDecider: Decider<Command, DomainEvent, Record<string, unknown>> = {
  initialState: () => ({}),
  evolve: (state, event) => ({
    ...state,
    ...(typeof event.data === 'object' && event.data !== null && !Array.isArray(event.data)
      ? (event.data as Record<string, unknown>)
      : { value: event.data }),
    lastEvent: event.type,
  }),
  decide: () => [],
};

/** Structured difference between two plain values. */
export function stateChanges(before: unknown, after: unknown): Difference[] {
  const box = (value: unknown) => (typeof value === 'object' && value !== null ? value : { value });
  return diff(box(before) as Record<string, unknown>, box(after) as Record<string, unknown>);
}

/** Time travel over one decider's streams; see the module comment. */
export function timeTravel<C extends Command, E extends DomainEvent, S>(
  store: EventStore,
  decider: Decider<C, E, S>,
  options: { events?: EventRegistry } = {},
) {
  const decode = async (event: RecordedEvent) =>
    (options.events ? await options.events.decode(event) : { type: event.type, data: event.data }) as E;

  /**
   * Folds `streamId` while `include(event)` holds; the last included event with the state.
   * `seen` watches each state on the way.
   */
  const foldWhile = async (
    streamId: string,
    include: (event: RecordedEvent) => boolean,
    seen: (state: S, event: RecordedEvent) => void = () => {},
    limit?: number,
  ) => {
    let state = decider.initialState();
    let last: RecordedEvent | undefined;
    let first: RecordedEvent | undefined;
    // Up to a version, read no further than it.
    for await (const event of store.readStream(streamId, { limit })) {
      first ??= event;
      if (!include(event)) break;
      state = decider.evolve(state, await decode(event));
      seen(state, event);
      last = event;
    }
    return { state, last, first };
  };

  const checkTime = (value: unknown, field: string): Date => {
    assertTime(value, field);
    return value;
  };

  const api = {
    /**
     * The state of `streamId` as of a version, a time (events recorded at or before it) or a
     * global position (events at or before it).
     * @throws {@link StreamNotFoundError} for a stream without events; {@link InvalidInputError}
     * for a moment before its first event, a version past its end, or a malformed moment.
     */
    async stateAt(streamId: string, at: PointInTime): Promise<StateAt<S>> {
      if (typeof at !== 'object' || at === null)
        throw new InvalidInputError('at', 'must be { version }, { time } or { position }');
      let include: (event: RecordedEvent) => boolean;
      let field: string;
      let limit: number | undefined;
      if ('version' in at) {
        assertInteger(at.version, 'at.version', 1);
        include = (event) => event.streamVersion <= at.version;
        field = 'at.version';
        limit = at.version;
      } else if ('time' in at) {
        const time = checkTime(at.time, 'at.time');
        include = (event) => event.recordedAt.getTime() <= time.getTime();
        field = 'at.time';
      } else if ('position' in at) {
        assertInteger(at.position, 'at.position', 0);
        include = (event) => event.position <= at.position;
        field = 'at.position';
      } else {
        throw new InvalidInputError('at', 'must be { version }, { time } or { position }');
      }
      const { state, last, first } = await foldWhile(streamId, include, undefined, limit);
      if (!first) throw new StreamNotFoundError(streamId);
      if (!last) {
        throw new InvalidInputError(
          field,
          `is before the first event of ${JSON.stringify(streamId)} (version 1, position ${first.position}, ${first.recordedAt.toISOString()})`,
        );
      }
      if ('version' in at && last.streamVersion < at.version) {
        throw new InvalidInputError(
          field,
          `${at.version} is past the end of ${JSON.stringify(streamId)} (version ${last.streamVersion})`,
        );
      }
      return {
        streamId,
        state,
        streamVersion: last.streamVersion,
        position: last.position,
        recordedAt: last.recordedAt,
      };
    },

    /** Steps through `streamId` from `fromVersion` to `toVersion` (inclusive): before, event, after, changes. */
    async *replay(
      streamId: string,
      range: { fromVersion?: number; toVersion?: number } = {},
    ): AsyncGenerator<ReplayStep<S>> {
      const fromVersion = range.fromVersion ?? 1;
      assertInteger(fromVersion, 'fromVersion', 1);
      if (range.toVersion !== undefined) assertInteger(range.toVersion, 'toVersion', fromVersion);
      const end = (await store.getStream(streamId))?.version ?? 0;
      if (end === 0) throw new StreamNotFoundError(streamId);
      for (const [field, version] of [
        ['fromVersion', fromVersion],
        ['toVersion', range.toVersion],
      ] as const) {
        if (version !== undefined && version > end) {
          throw new InvalidInputError(
            field,
            `${version} is past the end of ${JSON.stringify(streamId)} (version ${end})`,
          );
        }
      }
      let state = decider.initialState();
      for await (const event of store.readStream(streamId)) {
        if (range.toVersion !== undefined && event.streamVersion > range.toVersion) return;
        const after = decider.evolve(state, await decode(event));
        if (event.streamVersion >= fromVersion)
          yield { event, before: state, after, changes: stateChanges(state, after) };
        state = after;
      }
    },

    /** The last position recorded at or before `time` (0 when the log starts later). */
    positionAt(time: Date): Promise<number> {
      return store.positionAt(checkTime(time, 'time'));
    },

    /**
     * A read model as it was at a moment: `apply` folded over the global log (optionally
     * filtered) up to a position or time, in memory, from `initial`. For a projection kept in
     * tables, fold the same handlers into plain data here to query the past without touching
     * the live tables.
     */
    async readModelAt<T>(
      at: { position: number } | { time: Date },
      fold: { initial: T; apply: (model: T, event: RecordedEvent) => T; categories?: string[]; eventTypes?: string[] },
    ): Promise<{ model: T; position: number }> {
      if (typeof fold?.apply !== 'function') throw new InvalidInputError('apply', 'must be a function');
      let upTo: number;
      if (typeof at === 'object' && at !== null && 'position' in at) {
        assertInteger(at.position, 'at.position', 0);
        upTo = at.position;
      } else if (typeof at === 'object' && at !== null && 'time' in at) {
        upTo = await store.positionAt(checkTime(at.time, 'at.time'));
      } else {
        throw new InvalidInputError('at', 'must be { position } or { time }');
      }
      let model = fold.initial;
      if (upTo > 0) {
        for await (const event of store.readAll({ categories: fold.categories, eventTypes: fold.eventTypes })) {
          if (event.position > upTo) break;
          model = fold.apply(model, event);
        }
      }
      return { model, position: upTo };
    },

    /** The events between two moments (times or positions) and each touched stream's state diff. */
    async changesBetween(
      from: Date | number,
      to: Date | number,
      filter: { categories?: string[] } = {},
    ): Promise<Changes<S>> {
      const position = async (moment: Date | number, field: string) => {
        if (typeof moment === 'number') {
          assertInteger(moment, field, 0);
          return moment;
        }
        return api.positionAt(checkTime(moment, field));
      };
      const fromPosition = await position(from, 'from');
      const toPosition = await position(to, 'to');
      if (toPosition < fromPosition) throw new InvalidInputError('to', 'must not be before from');
      const events: RecordedEvent[] = [];
      if (toPosition > fromPosition) {
        for await (const event of store.readAll({
          after: fromPosition,
          limit: toPosition - fromPosition,
          categories: filter.categories,
        })) {
          if (event.position > toPosition) break;
          events.push(event);
        }
      }
      const streams: Changes<S>['streams'] = [];
      for (const streamId of new Set(events.map((event) => event.streamId))) {
        // One pass over the stream: the state at `fromPosition` is picked up on the way.
        let before = decider.initialState();
        const after = await foldWhile(
          streamId,
          (event) => event.position <= toPosition,
          (state, event) => {
            if (event.position <= fromPosition) before = state;
          },
        );
        streams.push({ streamId, before, after: after.state, changes: stateChanges(before, after.state) });
      }
      return { fromPosition, toPosition, events, streams };
    },
  };
  return api;
}
