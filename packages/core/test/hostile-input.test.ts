/**
 * Invariant 7 under a hostile or careless caller: every call of the public API with arbitrary
 * arguments either succeeds or throws an `AnnalsError` with a documented code; when it throws,
 * nothing changed; no raw TypeError, RangeError or driver error ever escapes. Arguments mix
 * plain values with the classes that used to slip through: deep nesting, lying getters and
 * `toJSON`, throwing Proxies, NUL escapes, out-of-range dates, invisible names, huge durations.
 *
 * A fixed seed and few runs in CI; ANNALS_FUZZ_RUNS=2000 (say) for a long run.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnnalsError,
  auditTrail,
  commandHandler,
  type Decider,
  type EventStore,
  integrity,
  personalData,
  projections,
  snapshots,
  subscriptions,
  timeTravel,
  toArray,
} from '../src/index.js';
import { backends, openTestStore, type TestStore } from './support/backends.js';

const runs = Number(process.env.ANNALS_FUZZ_RUNS ?? 60);
const documentedCodes = new Set(
  [...readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8').matchAll(/^\| `([A-Z_]+)`/gm)].map(
    (m) => m[1],
  ),
);

const deep = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  // fast-check describes a counterexample by walking it: say what it is instead.
  return Object.assign(value as object, { [fc.toStringMethod]: () => `[${levels} levels deep]` });
};
const throwingProxy = () =>
  new Proxy(
    { [fc.toStringMethod]: () => 'a Proxy whose traps throw' },
    {
      get(target, property) {
        // fast-check describes counterexamples through these; everything else throws.
        if (typeof property === 'symbol' || property === 'toString' || property === 'constructor') {
          return Reflect.get(target, property);
        }
        throw new Error('trap');
      },
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
const lying = () => {
  let reads = 0;
  return {
    get text() {
      reads++;
      return reads === 1 ? 'fine' : 'a\u0000b';
    },
  };
};
const hiddenToJson = (value: unknown) => Object.defineProperty({}, 'toJSON', { value: () => value });

/** The hostile values, then arbitrary JSON-ish and arbitrary anything. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    undefined,
    '',
    ' ',
    '\u200b',
    '\u0000',
    'a\ud800',
    -0,
    Number.NaN,
    1e12,
    -1,
    2 ** 53,
    1n,
    Symbol('s'),
    [],
    Object.assign([1], { 2: 2 }),
    new Date(-8.64e15),
    new Date(8.64e15),
    new Date(Number.NaN),
    new Map(),
  ),
  fc.constant(null).map(() => deep(6000)),
  fc.constant(null).map(() => lying()),
  fc.constant(null).map(() => throwingProxy()),
  fc.constant(null).map(() => hiddenToJson(1n)),
  fc.constant(null).map(() => hiddenToJson(undefined)),
  fc.constant(null).map(() => hiddenToJson('a\u0000')),
  fc.constant(null).map(() => () => 1),
  fc.jsonValue({ maxDepth: 3 }),
  fc.anything({ maxDepth: 2 }),
);
const name = fc.oneof(hostile, fc.constantFrom('acc-1', 'acc-2', 'x'));
const options = fc.oneof(
  hostile,
  fc.record(
    {
      expectedVersion: hostile,
      direction: fc.oneof(hostile, fc.constantFrom('forward', 'backward')),
      fromVersion: hostile,
      limit: hostile,
      pageSize: hostile,
      after: hostile,
      categories: hostile,
      eventTypes: hostile,
      pollIntervalMs: hostile,
      batchSize: hostile,
      from: hostile,
      to: hostile,
      version: hostile,
      time: hostile,
      position: hostile,
      metadata: hostile,
      actor: hostile,
    },
    { requiredKeys: [] },
  ),
);
const event = fc.oneof(
  hostile,
  fc.record({ type: name, data: hostile, metadata: fc.oneof(hostile, options) }, { requiredKeys: ['type'] }),
);

type Decided = { type: 'E'; data: null };
const decider: Decider<{ type: string; data: unknown }, Decided, number> = {
  initialState: () => 0,
  decide: () => [],
  evolve: (state) => state + 1,
};

/** Every public operation, as [name, call with arbitrary arguments]. */
const operations = (store: EventStore): [string, (args: unknown[]) => unknown][] => {
  const a = (args: unknown[], i: number) => args[i] as never;
  const handler = () => {};
  /** The options with a handler added, when they can be read (else as given: a hostile value). */
  const withHandler = (value: unknown, extra: object = {}) => {
    try {
      return { ...(value as object), ...extra, handler } as never;
    } catch {
      return value as never;
    }
  };
  return [
    ['append', (x) => store.append(a(x, 0), [a(x, 1)], a(x, 2))],
    ['append events', (x) => store.append('acc-1', a(x, 1))],
    ['appendMulti', (x) => store.appendMulti([{ streamId: a(x, 0), events: [a(x, 1)], expectedVersion: a(x, 2) }])],
    ['readStream', (x) => toArray(store.readStream(a(x, 0), a(x, 2)))],
    ['readAll', (x) => toArray(store.readAll(a(x, 2)))],
    ['getEvent', (x) => store.getEvent(a(x, 0))],
    ['getStream', (x) => store.getStream(a(x, 0))],
    ['setStreamMetadata', (x) => store.setStreamMetadata(a(x, 0), a(x, 1))],
    ['positionAt', (x) => store.positionAt(a(x, 0))],
    ['subscribe', (x) => subscriptions(store).subscribe(withHandler(x[2])).stop()],
    ['subscribe raw', (x) => subscriptions(store).subscribe(a(x, 2))],
    [
      'joinGroup',
      (x) =>
        subscriptions(store)
          .joinGroup(withHandler(x[2], { group: x[0] }))
          .stop(),
    ],
    ['parked', (x) => subscriptions(store).parked(a(x, 0))],
    [
      'projections.run',
      (x) =>
        projections(store)
          .run({ name: a(x, 0), handlers: {} }, a(x, 2))
          .stop(),
    ],
    ['documents.get', (x) => projections(store).documents.get(a(x, 0), a(x, 1))],
    ['snapshots.load', (x) => snapshots(store).load(a(x, 0), a(x, 1))],
    ['snapshots.save', (x) => snapshots(store).save(a(x, 2))],
    ['integrity.verify', (x) => integrity(store).verify(a(x, 2))],
    ['personalData.forget', (x) => personalData(store).forget(a(x, 0), a(x, 2))],
    ['audit.history', (x) => toArray(auditTrail(store).history(a(x, 0), a(x, 2)) as never)],
    ['audit.byActor', (x) => toArray(auditTrail(store).byActor(a(x, 0), a(x, 2)) as never)],
    ['audit.inRange', (x) => toArray(auditTrail(store).inRange(a(x, 2)) as never)],
    ['timeTravel.stateAt', (x) => timeTravel(store, decider).stateAt(a(x, 0), a(x, 2))],
    ['timeTravel.positionAt', (x) => timeTravel(store, decider).positionAt(a(x, 0))],
    ['command.handle', (x) => commandHandler(store, decider, { name: 'fuzz' }).handle(a(x, 0), a(x, 1), a(x, 2))],
  ];
};

describe.each(backends)('hostile input on $name', (backend) => {
  let t: TestStore & { cleanup: () => Promise<void> };
  beforeAll(async () => {
    t = await openTestStore(backend, { maxEventBytes: 64 * 1024, maxEventsPerAppend: 20 });
    await t.store.append('acc-1', [{ type: 'Opened', data: { n: 1 } }]);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const logState = async () =>
    t.client.query(`select count(*)::int as n, coalesce(max(position), 0)::int as head from "${t.schema}".events`);

  it('every call succeeds or throws a documented AnnalsError, and a throw changes nothing', async () => {
    const ops = operations(t.store);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: ops.length - 1 }),
        fc.tuple(name, event, options),
        async (op, args) => {
          const [label, call] = ops[op] as [string, (args: unknown[]) => unknown];
          const before = await logState();
          let thrown: unknown;
          try {
            await call(args);
          } catch (error) {
            thrown = error;
          }
          if (thrown === undefined) return;
          if (!(thrown instanceof AnnalsError)) {
            throw new Error(`${label} let a raw error escape: ${String(thrown)}`, { cause: thrown });
          }
          expect(documentedCodes.has(thrown.code), `${label}: ${thrown.code}`).toBe(true);
          expect(thrown.code, `${label}: ${thrown.message}`).not.toBe('DATABASE_ERROR');
          expect(await logState(), label).toEqual(before);
        },
      ),
      { numRuns: runs, seed: 20_261_201, endOnFailure: true },
    );
  });
});
