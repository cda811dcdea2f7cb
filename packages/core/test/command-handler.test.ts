/** The command handler on every backend, with a small counter decider. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConcurrencyError,
  causedBy,
  commandHandler,
  type Decider,
  DomainError,
  defineEvents,
  type EventStore,
  EventValidationError,
  InvalidInputError,
  snapshots,
  toArray,
  UnknownEventTypeError,
} from '../src/index.js';
import { deciderSpecification } from '../src/testing/index.js';
import { backends, useTestStore } from './support/backends.js';

type CounterCommand =
  | { type: 'Add'; data: { by: number }; id?: string }
  | { type: 'Reset'; data: Record<string, never>; id?: string };
type CounterEvent = { type: 'Added'; data: { by: number } } | { type: 'WasReset'; data: { from: number } };
interface Counter {
  value: number;
  events: number;
}

class TooBig extends DomainError {
  constructor(value: number) {
    super('too-big', `the counter would pass 1000 (at ${value})`);
  }
}

const counter: Decider<CounterCommand, CounterEvent, Counter> = {
  initialState: () => ({ value: 0, events: 0 }),
  decide(command, state): CounterEvent[] {
    switch (command.type) {
      case 'Add':
        if (state.value + command.data.by > 1000) throw new TooBig(state.value);
        return [{ type: 'Added', data: { by: command.data.by } }];
      case 'Reset':
        return state.value === 0 ? [] : [{ type: 'WasReset', data: { from: state.value } }];
    }
  },
  evolve(state, event): Counter {
    switch (event.type) {
      case 'Added':
        return { value: state.value + event.data.by, events: state.events + 1 };
      case 'WasReset':
        return { value: 0, events: state.events + 1 };
    }
  },
};

const add = (by: number, id?: string): CounterCommand => ({ type: 'Add', data: { by }, ...(id ? { id } : {}) });

describe('deciderSpecification', () => {
  const spec = deciderSpecification(counter);
  it('passes when the decider decides the expected events, and fails otherwise', () => {
    spec
      .given([{ type: 'Added', data: { by: 2 } }])
      .when({ type: 'Reset', data: {} })
      .then([{ type: 'WasReset', data: { from: 2 } }]);
    spec.given([]).when({ type: 'Reset', data: {} }).then([]);
    expect(() =>
      spec
        .given([])
        .when(add(1))
        .then([{ type: 'Added', data: { by: 2 } }]),
    ).toThrow(/deepStrictEqual|Expected/);
  });

  it('checks refusals by class or predicate', () => {
    spec
      .given([{ type: 'Added', data: { by: 1000 } }])
      .when(add(1))
      .thenThrows(TooBig);
    spec
      .given([{ type: 'Added', data: { by: 1000 } }])
      .when(add(1))
      .thenThrows((e) => e instanceof DomainError && e.reason === 'too-big');
    expect(() => spec.given([]).when(add(1)).thenThrows(TooBig)).toThrow(/expected to throw/);
    expect(() =>
      spec
        .given([{ type: 'Added', data: { by: 1000 } }])
        .when(add(1))
        .thenThrows(RangeError),
    ).toThrow(/unexpected error/);
  });
});

describe.each(backends)('command handler on $name', (backend) => {
  let store: EventStore;
  useTestStore(backend, (opened) => {
    store = opened.store;
  });

  it('loads, decides, appends, and stamps who, why and what caused it on every event', async () => {
    const counters = commandHandler(store, counter, { name: 'counter' });
    const first = await counters.handle('counter-1', add(5, 'cmd-1'), {
      actor: 'ada',
      correlationId: 'req-1',
      metadata: { tenant: 'acme' },
    });
    expect(first).toMatchObject({ state: { value: 5, events: 1 }, streamVersion: 1, duplicate: false });
    expect(first.events[0]?.metadata).toEqual({
      actor: 'ada',
      reason: 'Add',
      correlationId: 'req-1',
      causationId: 'cmd-1',
      commandId: 'cmd-1',
      commandType: 'Add',
      tenant: 'acme',
    });
    // A command caused by an event keeps the correlation and names the event as its cause.
    const second = await counters.handle('counter-2', add(1), causedBy(first.events[0] as never));
    expect(second.events[0]?.metadata).toMatchObject({
      actor: 'ada',
      correlationId: 'req-1',
      causationId: first.events[0]?.id,
    });
    expect((await counters.load('counter-1')).state.value).toBe(5);
  });

  it('handles a command id once: a repeat returns the first result and appends nothing', async () => {
    const counters = commandHandler(store, counter, { name: 'counter' });
    const first = await counters.handle('counter-1', add(5, 'once'));
    await counters.handle('counter-1', add(1));
    const again = await counters.handle('counter-1', add(5, 'once'));
    expect(again).toMatchObject({ duplicate: true, streamVersion: 1, state: { value: 5 } });
    expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    expect((await store.getStream('counter-1'))?.version ?? 0).toBe(2);
    // Even when the state has moved on so that deciding again would now be refused.
    await counters.handle('counter-1', add(994));
    expect((await counters.handle('counter-1', add(5, 'once'))).duplicate).toBe(true);
  });

  it('refuses a business-rule violation with the domain error and appends nothing', async () => {
    const counters = commandHandler(store, counter, { name: 'counter' });
    await counters.handle('counter-1', add(1000));
    const error = await counters.handle('counter-1', add(1)).catch((e) => e);
    expect(error).toBeInstanceOf(TooBig);
    expect(error).toMatchObject({ code: 'DOMAIN_ERROR', reason: 'too-big' });
    expect(await store.headPosition()).toBe(1);
  });

  it('appends nothing when the decider decides nothing', async () => {
    const counters = commandHandler(store, counter, { name: 'counter' });
    const result = await counters.handle('counter-1', { type: 'Reset', data: {} });
    expect(result).toMatchObject({ events: [], streamVersion: 0, duplicate: false });
    expect(await store.headPosition()).toBe(0);
  });

  it('queues commands on one stream within a handler, so they never conflict with each other', async () => {
    const counters = commandHandler(store, counter, { name: 'counter', maxRetries: 0 });
    await Promise.all(Array.from({ length: 20 }, () => counters.handle('queued-1', add(1))));
    expect((await counters.load('queued-1')).state).toEqual({ value: 20, events: 20 });
  });

  it('reloads and retries when another process got there first, and gives up after maxRetries', async () => {
    // Separate handlers stand for separate processes: their commands do race.
    const processes = Array.from({ length: 5 }, () =>
      commandHandler(store, counter, { name: 'counter', maxRetries: 50 }),
    );
    await Promise.all(Array.from({ length: 20 }, (_, i) => processes[i % 5]?.handle('hot-1', add(1))));
    expect((await processes[0]?.load('hot-1'))?.state).toEqual({ value: 20, events: 20 });

    const stubborn = Array.from({ length: 10 }, () =>
      commandHandler(store, counter, { name: 'counter', maxRetries: 0 }),
    );
    const results = await Promise.allSettled(stubborn.map((handler) => handler.handle('hot-2', add(1))));
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    expect((await store.getStream('hot-2'))?.version ?? 0).toBe(10 - failed.length);
  });

  it('loads from snapshots, takes them every N events, and ignores those of another model version', async () => {
    const snapshotting = commandHandler(store, counter, { name: 'counter', snapshots: { every: 10, version: 1 } });
    for (let i = 0; i < 25; i++) await snapshotting.handle('snap-1', add(1));
    const snapshot = await snapshots(store).load('snap-1', 'counter');
    expect(snapshot).toMatchObject({ modelVersion: 1, streamVersion: 20, state: { value: 20, events: 20 } });

    // The snapshot is a cache: a forged one is believed by the same model version...
    if (!snapshot) throw new Error('no snapshot');
    await snapshots(store).save({ ...snapshot, streamVersion: 21, state: { value: 999, events: 21 } });
    expect((await snapshotting.load('snap-1')).state.value).toBe(999 + 4);
    // ...and ignored by a bumped one, which rebuilds from events and snapshots anew.
    const bumped = commandHandler(store, counter, { name: 'counter', snapshots: { every: 10, version: 2 } });
    expect((await bumped.load('snap-1')).state).toEqual({ value: 25, events: 25 });
    for (let i = 0; i < 5; i++) await bumped.handle('snap-1', add(1));
    expect(await snapshots(store).load('snap-1', 'counter')).toMatchObject({ modelVersion: 2, streamVersion: 30 });
    // Time travel below the snapshot reads from the start.
    expect((await bumped.load('snap-1', { version: 7 })).state).toEqual({ value: 7, events: 7 });
    expect((await bumped.load('snap-1', { version: 30 })).state.value).toBe(30);
  });

  it('does not fail a stored command when its snapshot cannot be saved', async () => {
    const errors: unknown[] = [];
    type Dated = Counter & { at: Date };
    const dated: Decider<CounterCommand, CounterEvent, Dated> = {
      initialState: () => ({ ...counter.initialState(), at: new Date(0) }),
      decide: (command, state) => counter.decide(command, state),
      evolve: (state, event) => ({ ...counter.evolve(state, event), at: new Date() }),
    };
    const handler = commandHandler(store, dated, {
      name: 'dated',
      snapshots: { every: 1, version: 1 },
      onSnapshotError: (error) => errors.push(error),
    });
    const result = await handler.handle('dated-1', add(2));
    expect(result.state.value).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await snapshots(store).load('dated-1', 'dated')).toBeNull();
  });

  it('validates events with a Standard Schema at append and upcasts old versions on read', async () => {
    // Version 1 stored { by }; version 2 added a note; version 3 a unit.
    const v1 = defineEvents({ Added: { schema: z.object({ by: z.number().int().positive() }) }, WasReset: {} });
    const old = commandHandler(store, counter, { name: 'counter', events: v1 });
    await old.handle('schema-1', add(3));
    await expect(old.handle('schema-1', add(-1))).rejects.toBeInstanceOf(EventValidationError);
    expect((await store.getStream('schema-1'))?.version ?? 0).toBe(1);

    const v3 = defineEvents({
      Added: {
        version: 3,
        schema: z.object({ by: z.number(), unit: z.literal('items'), note: z.string() }),
        upcasters: {
          1: (data) => ({ ...(data as object), note: '' }),
          2: (data) => ({ ...(data as object), unit: 'items' }),
        },
      },
      WasReset: {},
    });
    type NewAdded = { type: 'Added'; data: { by: number; unit: 'items'; note: string } };
    const seen: unknown[] = [];
    const upgraded: Decider<CounterCommand, CounterEvent | NewAdded, Counter> = {
      ...counter,
      evolve: (state, event) => {
        seen.push(event.data);
        return counter.evolve(state, event as CounterEvent);
      },
    };
    const current = commandHandler(store, upgraded, { name: 'counter', events: v3 });
    expect((await current.load('schema-1')).state.value).toBe(3);
    expect(seen).toEqual([{ by: 3, note: '', unit: 'items' }]);
    // The stored event is untouched.
    expect((await toArray(store.readStream('schema-1')))[0]?.data).toEqual({ by: 3 });
  });

  it('names the type and position of a stored event it cannot read, unless told to pass it through', async () => {
    await store.append('mixed-1', [{ type: 'Legacy', data: {} }]);
    const strict = commandHandler(store, counter, { name: 'counter', events: defineEvents({ Added: {} }) });
    const error = await strict.load('mixed-1').catch((e) => e);
    expect(error).toBeInstanceOf(UnknownEventTypeError);
    expect(error).toMatchObject({ eventType: 'Legacy', position: 1 });
    const lenient = commandHandler(store, counter, {
      name: 'counter',
      events: defineEvents({ Added: {} }, { unknownTypes: 'pass-through' }),
    });
    expect((await lenient.load('mixed-1')).streamVersion).toBe(1);
  });

  it('refuses bad commands and options before touching the store', async () => {
    const counters = commandHandler(store, counter, {
      name: 'counter',
      commands: { Add: z.object({ by: z.number().int() }), Reset: z.object({}) },
    });
    const bad: [unknown, string][] = [
      [null, 'command'],
      [{ type: '', data: {} }, 'command.type'],
      [{ type: 'Launch', data: {} }, 'command.type'],
      [{ type: 'Add', data: { by: 'x' } }, 'command.data'],
      [{ type: 'Add', data: { by: 1 }, id: '' }, 'command.id'],
      [{ type: 'Add', data: { by: 1 }, id: 'x'.repeat(300) }, 'command.id'],
    ];
    for (const [command, field] of bad) {
      const error = await counters.handle('counter-1', command as never).catch((e) => e);
      expect(error, JSON.stringify(command)).toBeInstanceOf(InvalidInputError);
      expect(error.field).toBe(field);
    }
    await expect(counters.handle('', add(1))).rejects.toMatchObject({ field: 'streamId' });
    await expect(counters.handle('c-1', add(1), { actor: 5 as never })).rejects.toMatchObject({
      field: 'context.actor',
    });
    expect(() => commandHandler(store, counter, { name: 'c', maxRetries: -1 })).toThrow(InvalidInputError);
    expect(() => commandHandler(store, counter, { name: 'c', snapshots: { every: 0, version: 1 } })).toThrow(
      InvalidInputError,
    );
    expect(await store.headPosition()).toBe(0);
  });
});
