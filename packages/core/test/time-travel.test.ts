/** Time travel on every backend: state at a version, time or position; replay; changes between moments. */
import { describe, expect, it } from 'vitest';
import {
  type Decider,
  type EventStore,
  InvalidInputError,
  StreamNotFoundError,
  timeTravel,
  toArray,
} from '../src/index.js';
import { backends, momentBetween, sleep, useTestStore } from './support/backends.js';

type Command = { type: 'Noop'; data: null };
type Event = { type: 'Added'; data: { by: number } } | { type: 'Renamed'; data: { name: string } };
interface Counter {
  name: string;
  total: number;
}

const counter: Decider<Command, Event, Counter> = {
  initialState: () => ({ name: '', total: 0 }),
  decide: () => [],
  evolve: (state, event) =>
    event.type === 'Added' ? { ...state, total: state.total + event.data.by } : { ...state, name: event.data.name },
};

describe.each(backends)('time travel on $name', (backend) => {
  let store: EventStore;
  const t = useTestStore(backend, (opened) => {
    store = opened.store;
  });

  /** Three appends with a moment strictly between each; returns those moments. */
  const history = async () => {
    await store.append('c-1', [
      { type: 'Renamed', data: { name: 'one' } },
      { type: 'Added', data: { by: 5 } },
    ]);
    const afterFirst = await momentBetween(t.client);
    await store.append('other-1', [{ type: 'Added', data: { by: 100 } }]);
    await store.append('c-1', [{ type: 'Added', data: { by: 2 } }]);
    const afterSecond = await momentBetween(t.client);
    await store.append('c-1', [{ type: 'Renamed', data: { name: 'two' } }]);
    return { afterFirst, afterSecond };
  };

  it('gives the state as of a version, a time and a global position', async () => {
    const { afterFirst, afterSecond } = await history();
    const travel = timeTravel(store, counter);
    expect(await travel.stateAt('c-1', { version: 2 })).toMatchObject({
      state: { name: 'one', total: 5 },
      streamVersion: 2,
      position: 2,
    });
    expect((await travel.stateAt('c-1', { time: afterFirst })).state).toEqual({ name: 'one', total: 5 });
    expect((await travel.stateAt('c-1', { time: afterSecond })).state).toEqual({ name: 'one', total: 7 });
    expect((await travel.stateAt('c-1', { position: 3 })).state).toEqual({ name: 'one', total: 5 });
    expect((await travel.stateAt('c-1', { position: 4 })).state).toEqual({ name: 'one', total: 7 });
    expect((await travel.stateAt('c-1', { time: new Date() })).state).toEqual({ name: 'two', total: 7 });
  });

  it('refuses moments outside a stream with clear errors', async () => {
    await history();
    const travel = timeTravel(store, counter);
    await expect(travel.stateAt('nobody-1', { version: 1 })).rejects.toBeInstanceOf(StreamNotFoundError);
    await expect(travel.stateAt('c-1', { version: 9 })).rejects.toThrow(/past the end .* \(version 4\)/);
    await expect(travel.stateAt('c-1', { time: new Date('2000-01-01') })).rejects.toThrow(/before the first event/);
    await expect(travel.stateAt('other-1', { position: 2 })).rejects.toMatchObject({ field: 'at.position' });
    await expect(travel.stateAt('c-1', { time: new Date('not a date') })).rejects.toMatchObject({ field: 'at.time' });
    await expect(travel.stateAt('c-1', { version: 0 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(travel.stateAt('c-1', {} as never)).rejects.toMatchObject({ field: 'at' });
    await expect(travel.stateAt('c-1', { time: '2026-01-01' as never })).rejects.toMatchObject({ field: 'at.time' });
  });

  it('steps through a stream with the state before and after each event and what changed', async () => {
    await history();
    const steps = await toArray(timeTravel(store, counter).replay('c-1', { fromVersion: 2, toVersion: 4 }));
    expect(steps.map((s) => [s.event.streamVersion, s.before, s.after])).toEqual([
      [2, { name: 'one', total: 0 }, { name: 'one', total: 5 }],
      [3, { name: 'one', total: 5 }, { name: 'one', total: 7 }],
      [4, { name: 'one', total: 7 }, { name: 'two', total: 7 }],
    ]);
    expect(steps[2]?.changes).toEqual([{ type: 'CHANGE', path: ['name'], value: 'two', oldValue: 'one' }]);
    await expect(toArray(timeTravel(store, counter).replay('nobody-1'))).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('rebuilds a read model as it was at a position or a time, in memory', async () => {
    const { afterFirst } = await history();
    const travel = timeTravel(store, counter);
    const totals = {
      initial: {} as Record<string, number>,
      apply: (model: Record<string, number>, event: { streamId: string; type: string; data: unknown }) =>
        event.type === 'Added'
          ? { ...model, [event.streamId]: (model[event.streamId] ?? 0) + (event.data as { by: number }).by }
          : model,
    };
    expect(await travel.readModelAt({ position: 3 }, totals)).toEqual({
      model: { 'c-1': 5, 'other-1': 100 },
      position: 3,
    });
    expect(await travel.readModelAt({ time: afterFirst }, totals)).toEqual({ model: { 'c-1': 5 }, position: 2 });
    expect((await travel.readModelAt({ position: 0 }, totals)).model).toEqual({});
    expect((await travel.readModelAt({ position: 99 }, { ...totals, categories: ['other'] })).model).toEqual({
      'other-1': 100,
    });
    await expect(travel.readModelAt({ position: -1 }, totals)).rejects.toMatchObject({ field: 'at.position' });
    await expect(travel.readModelAt({} as never, totals)).rejects.toMatchObject({ field: 'at' });
  });

  it('positionAt agrees with a scan of the log at every moment, counting its whole millisecond', async () => {
    expect(await store.positionAt(new Date())).toBe(0);
    for (let i = 0; i < 12; i++) {
      await store.append(`s-${i % 3}`, [{ type: 'Added', data: { by: i } }]);
      if (i % 4 === 0) await sleep(3);
    }
    const times = (await toArray(store.readAll())).map((e) => e.recordedAt.getTime());
    const moments = [times[0] as number, ...times].flatMap((t) => [t - 1, t, t + 1]);
    for (const moment of moments) {
      const at = new Date(moment);
      const [truth] = await t.client.query<{ position: number | null }>(
        `select coalesce(max(position), 0)::int as position from "${t.schema}".events
          where recorded_at < $1::timestamptz + interval '1 millisecond'`,
        [at],
      );
      expect(await store.positionAt(at)).toBe(truth?.position);
    }
    // An event's own recordedAt (whole milliseconds) finds it, whatever its microseconds.
    for (const e of await toArray(store.readAll())) {
      expect(await store.positionAt(e.recordedAt)).toBeGreaterThanOrEqual(e.position);
    }
  });

  it('finds positions by time and lists what changed between two moments', async () => {
    const { afterFirst, afterSecond } = await history();
    const travel = timeTravel(store, counter);
    expect(await travel.positionAt(new Date('2000-01-01'))).toBe(0);
    expect(await travel.positionAt(afterFirst)).toBe(2);
    expect(await travel.positionAt(afterSecond)).toBe(4);
    expect(await travel.positionAt(new Date(Date.now() + 60_000))).toBe(5);

    const changes = await travel.changesBetween(afterFirst, afterSecond);
    expect(changes).toMatchObject({ fromPosition: 2, toPosition: 4 });
    expect(changes.events.map((e) => e.position)).toEqual([3, 4]);
    expect(changes.streams).toEqual([
      {
        streamId: 'other-1',
        before: { name: '', total: 0 },
        after: { name: '', total: 100 },
        changes: [{ type: 'CHANGE', path: ['total'], value: 100, oldValue: 0 }],
      },
      {
        streamId: 'c-1',
        before: { name: 'one', total: 5 },
        after: { name: 'one', total: 7 },
        changes: [{ type: 'CHANGE', path: ['total'], value: 7, oldValue: 5 }],
      },
    ]);
    expect((await travel.changesBetween(2, 5, { categories: ['c'] })).events.map((e) => e.position)).toEqual([4, 5]);
    await expect(travel.changesBetween(4, 2)).rejects.toMatchObject({ field: 'to' });
  });
});
