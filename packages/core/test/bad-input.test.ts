/** Invariant 7: every invalid input gets a clear, typed error and changes nothing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventStore,
  InvalidInputError,
  type NewEvent,
  openEventStore,
  PayloadTooLargeError,
  toArray,
} from '../src/index.js';
import { backends, openTestStore, type TestStore } from './support/backends.js';

const ok: NewEvent = { type: 'E', data: { ok: true } };
const cyclic: Record<string, unknown> = { a: 1 };
cyclic.self = cyclic;
const injection = `x'); drop table events; --`;

type Call = (store: EventStore) => unknown;

/** [description, call, expected error class, field it must name]. */
const badCalls: [string, Call, typeof InvalidInputError | typeof PayloadTooLargeError, string][] = [
  ['empty stream id', (s) => s.append('', [ok]), InvalidInputError, 'streamId'],
  ['non-string stream id', (s) => s.append(42 as never, [ok]), InvalidInputError, 'streamId'],
  ['over-long stream id', (s) => s.append('a'.repeat(257), [ok]), InvalidInputError, 'streamId'],
  ['stream id with NUL', (s) => s.append('a\u0000b', [ok]), InvalidInputError, 'streamId'],
  ['stream id with a newline', (s) => s.append('a\nb', [ok]), InvalidInputError, 'streamId'],
  ['stream id with a lone surrogate', (s) => s.append('a\ud800', [ok]), InvalidInputError, 'streamId'],
  ['events not an array', (s) => s.append('s-1', ok as never), InvalidInputError, 'events'],
  ['no events', (s) => s.append('s-1', []), InvalidInputError, 'events'],
  ['event not an object', (s) => s.append('s-1', ['E' as never]), InvalidInputError, 'events[0]'],
  ['missing type', (s) => s.append('s-1', [{ data: {} } as never]), InvalidInputError, 'events[0].type'],
  ['empty type', (s) => s.append('s-1', [{ type: '', data: {} }]), InvalidInputError, 'events[0].type'],
  ['missing data', (s) => s.append('s-1', [{ type: 'E' } as never]), InvalidInputError, 'events[0].data'],
  [
    'cyclic data',
    (s) => s.append('s-1', [{ type: 'E', data: cyclic as never }]),
    InvalidInputError,
    'events[0].data.self',
  ],
  [
    'BigInt data',
    (s) => s.append('s-1', [{ type: 'E', data: { n: 1n } as never }]),
    InvalidInputError,
    'events[0].data.n',
  ],
  [
    'function data',
    (s) => s.append('s-1', [{ type: 'E', data: { f: () => 1 } as never }]),
    InvalidInputError,
    'events[0].data.f',
  ],
  [
    'symbol data',
    (s) => s.append('s-1', [{ type: 'E', data: Symbol('x') as never }]),
    InvalidInputError,
    'events[0].data',
  ],
  ['NaN', (s) => s.append('s-1', [{ type: 'E', data: { n: Number.NaN } }]), InvalidInputError, 'events[0].data.n'],
  [
    'Infinity',
    (s) => s.append('s-1', [{ type: 'E', data: [Number.POSITIVE_INFINITY] }]),
    InvalidInputError,
    'events[0].data[0]',
  ],
  [
    'a Date',
    (s) => s.append('s-1', [{ type: 'E', data: { at: new Date() } as never }]),
    InvalidInputError,
    'events[0].data.at',
  ],
  ['a Map', (s) => s.append('s-1', [{ type: 'E', data: new Map() as never }]), InvalidInputError, 'events[0].data'],
  [
    'undefined in an array',
    (s) => s.append('s-1', [{ type: 'E', data: [1, undefined] as never }]),
    InvalidInputError,
    'events[0].data[1]',
  ],
  [
    'NUL in a string',
    (s) => s.append('s-1', [{ type: 'E', data: { t: 'a\u0000' } }]),
    InvalidInputError,
    'events[0].data.t',
  ],
  [
    'lone surrogate in data',
    (s) => s.append('s-1', [{ type: 'E', data: ['\udc00'] }]),
    InvalidInputError,
    'events[0].data[0]',
  ],
  [
    'NUL in a key',
    (s) => s.append('s-1', [{ type: 'E', data: { 'a\u0000': 1 } }]),
    InvalidInputError,
    'events[0].data key',
  ],
  ['malformed event id', (s) => s.append('s-1', [{ ...ok, id: 'not-a-uuid' }]), InvalidInputError, 'events[0].id'],
  ['injection as event id', (s) => s.append('s-1', [{ ...ok, id: injection }]), InvalidInputError, 'events[0].id'],
  [
    'the same id twice in one append',
    (s) =>
      s.append('s-1', [
        { ...ok, id: '0190a6f2-0000-7000-8000-000000000001' },
        { ...ok, id: '0190a6f2-0000-7000-8000-000000000001' },
      ]),
    InvalidInputError,
    'events[1].id',
  ],
  [
    'metadata not an object',
    (s) => s.append('s-1', [{ ...ok, metadata: 'me' as never }]),
    InvalidInputError,
    'events[0].metadata',
  ],
  [
    'actor not a string',
    (s) => s.append('s-1', [{ ...ok, metadata: { actor: 7 as never } }]),
    InvalidInputError,
    'events[0].metadata.actor',
  ],
  [
    'negative expected version',
    (s) => s.append('s-1', [ok], { expectedVersion: -1 }),
    InvalidInputError,
    'expectedVersion',
  ],
  [
    'fractional expected version',
    (s) => s.append('s-1', [ok], { expectedVersion: 1.5 }),
    InvalidInputError,
    'expectedVersion',
  ],
  [
    'NaN expected version',
    (s) => s.append('s-1', [ok], { expectedVersion: Number.NaN }),
    InvalidInputError,
    'expectedVersion',
  ],
  [
    'unsafe expected version',
    (s) => s.append('s-1', [ok], { expectedVersion: 2 ** 53 }),
    InvalidInputError,
    'expectedVersion',
  ],
  [
    'string version',
    (s) => s.append('s-1', [ok], { expectedVersion: '3' as never }),
    InvalidInputError,
    'expectedVersion',
  ],
  [
    'unknown expected-version mode',
    (s) => s.append('s-1', [ok], { expectedVersion: 'latest' as never }),
    InvalidInputError,
    'expectedVersion',
  ],
  ['options not an object', (s) => s.append('s-1', [ok], null as never), InvalidInputError, 'options'],
  [
    'event over the size limit',
    (s) => s.append('s-1', [{ type: 'E', data: 'x'.repeat(5000) }]),
    PayloadTooLargeError,
    'events[0]',
  ],
  [
    'too many events',
    (s) =>
      s.append(
        's-1',
        Array.from({ length: 11 }, () => ok),
      ),
    PayloadTooLargeError,
    'events',
  ],
  [
    'multi-append with a stream twice',
    (s) =>
      s.appendMulti([
        { streamId: 'm-1', events: [ok] },
        { streamId: 'm-1', events: [ok] },
      ]),
    InvalidInputError,
    'writes[1].streamId',
  ],
  ['multi-append with nothing', (s) => s.appendMulti([]), InvalidInputError, 'writes'],
  [
    'multi-append, bad second write',
    (s) =>
      s.appendMulti([
        { streamId: 'm-1', events: [ok] },
        { streamId: 'm-2', events: [] },
      ]),
    InvalidInputError,
    'writes[1].events',
  ],
  [
    'readStream from version -1',
    (s) => toArray(s.readStream('s-1', { fromVersion: -1 })),
    InvalidInputError,
    'fromVersion',
  ],
  [
    'readStream from version 0',
    (s) => toArray(s.readStream('s-1', { fromVersion: 0 })),
    InvalidInputError,
    'fromVersion',
  ],
  ['readStream with a negative limit', (s) => toArray(s.readStream('s-1', { limit: -1 })), InvalidInputError, 'limit'],
  ['readStream with page size 0', (s) => toArray(s.readStream('s-1', { pageSize: 0 })), InvalidInputError, 'pageSize'],
  [
    'readStream sideways',
    (s) => toArray(s.readStream('s-1', { direction: 'sideways' as never })),
    InvalidInputError,
    'direction',
  ],
  ['readAll after -1', (s) => toArray(s.readAll({ after: -1 })), InvalidInputError, 'after'],
  ['readAll after 1.5', (s) => toArray(s.readAll({ after: 1.5 })), InvalidInputError, 'after'],
  [
    'readAll after a string',
    (s) => toArray(s.readAll({ after: '0; drop table x' as never })),
    InvalidInputError,
    'after',
  ],
  ['readAll with no categories', (s) => toArray(s.readAll({ categories: [] })), InvalidInputError, 'categories'],
  [
    'readAll with an empty category',
    (s) => toArray(s.readAll({ categories: [''] })),
    InvalidInputError,
    'categories[0]',
  ],
  [
    'readAll with a non-string type',
    (s) => toArray(s.readAll({ eventTypes: [1 as never] })),
    InvalidInputError,
    'eventTypes[0]',
  ],
  ['metadata of a stream not an object', (s) => s.setStreamMetadata('s-1', [] as never), InvalidInputError, 'metadata'],
  ['getStream with a bad id', (s) => s.getStream(''), InvalidInputError, 'streamId'],
];

describe.each(backends)('bad input on $name', (backend) => {
  let t: TestStore & { cleanup: () => Promise<void> };
  beforeAll(async () => {
    t = await openTestStore(backend, { maxEventBytes: 4096, maxEventsPerAppend: 10 });
    await t.store.append('s-1', [ok]);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it.each(badCalls)('%s: typed error naming the field, store unchanged', async (_, call, errorClass, field) => {
    let error: unknown;
    try {
      await call(t.store);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(errorClass);
    expect((error as InvalidInputError).field.startsWith(field)).toBe(true);
    expect((error as Error).message).toContain(field);
    expect(await t.store.headPosition()).toBe(1);
    const streams = await t.client.query(`select distinct stream_id from "${t.schema}".events`);
    expect(streams).toEqual([{ stream_id: 's-1' }]);
    expect(await t.client.query(`select * from "${t.schema}".streams`)).toEqual([]);
  });

  it('stores injection strings as plain data', async () => {
    const result = await t.store.append(injection, [{ type: injection, data: { [injection]: injection } }]);
    const [event] = await toArray(t.store.readStream(injection));
    expect(event).toMatchObject({ streamId: injection, type: injection, data: { [injection]: injection } });
    expect((await toArray(t.store.readAll({ categories: [injection.split('-')[0] as string] }))).length).toBe(1);
    expect(result.positions).toEqual([2]);
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    for (const schema of ['', 'Annals', 'a-b', 'x"; drop schema public; --', '1abc', 'a'.repeat(64)]) {
      await expect(openEventStore({ client: backend.client(), closeClient: false, schema })).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        field: 'schema',
      });
    }
  });

  it('refuses bad options', async () => {
    await expect(
      openEventStore({ client: backend.client(), closeClient: false, maxEventBytes: 0 }),
    ).rejects.toMatchObject({ code: 'INVALID_INPUT', field: 'maxEventBytes' });
    await expect(openEventStore({ client: backend.client(), closeClient: false, pageSize: 1.5 })).rejects.toMatchObject(
      { code: 'INVALID_INPUT', field: 'pageSize' },
    );
  });
});
