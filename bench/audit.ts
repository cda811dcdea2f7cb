/**
 * The `audit` section of `npm run bench` (BENCH_ONLY=audit): the audit trail, time travel,
 * sealing and personal data on a store of 1M events (at scale 1), against hand-written SQL
 * on a plain copy of the same rows (raw.auditCopy) with the indexes such a table would get.
 *
 * The store: streams "account-<k>" of 100 events each, appended round-robin, 10 events per
 * stream and 50 streams per appendMulti (500 events), from 4 writers; so a stream's events
 * and an actor's are spread over the whole log, as in a live system. Every event has an actor
 * (`user-<k % 500>`), a reason, a correlation id shared by 5 events, and a causation id (the
 * 5 form a small tree under a command outside the store).
 *
 * Latency rows run each query `repeats` times, one at a time, on varying keys (the same keys
 * on both sides); events/s there is events returned per second of latency, so annals/raw is
 * the inverse ratio of mean latencies.
 */
import { randomUUID } from 'node:crypto';
import {
  auditTrail,
  createPostgresClient,
  type Decider,
  type EventStore,
  integrity,
  type JsonObject,
  type NewEvent,
  openEventStore,
  type PersonalDataPolicy,
  type StreamWrite,
  timeTravel,
} from '@annals/core';
import pg from 'pg';
import { type Measurement, measure, type Row, row, timeIt } from './measure.js';
import * as raw from './raw.js';

const schema = 'bench_audit';
const table = 'raw_audit';
const perStream = 100;
const perWrite = 10;
const streamsPerAppend = 50;
const writers = 4;
const actors = 500;
const repeats = 200;
const columns = 'position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at';

/** A tiny decider: a balance and an event count. */
type Counted = { type: string; data: { amount?: number } };
const counter: Decider<{ type: string; data: unknown }, Counted, { balance: number; events: number }> = {
  decide: () => [],
  evolve: (state, event) => ({
    events: state.events + 1,
    balance:
      state.balance +
      (event.type === 'MoneyDeposited' ? (event.data.amount ?? 0) : 0) -
      (event.type === 'MoneyWithdrawn' ? (event.data.amount ?? 0) : 0),
  }),
  initialState: () => ({ balance: 0, events: 0 }),
};

/** A UUIDv7-like id (time first), made here because causation ids must name earlier events. */
function eventId(): string {
  const time = Date.now().toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${randomUUID().slice(15)}`;
}

/** Events `from + 1 .. from + count` of stream `k`. */
function accountEvents(k: number, from: number, count: number): NewEvent[] {
  const events: NewEvent[] = [];
  let group: string[] = [];
  let correlationId = '';
  let command = '';
  for (let version = from + 1; version <= from + count; version++) {
    if ((version - 1) % 5 === 0) {
      group = [];
      correlationId = randomUUID();
      command = randomUUID();
    }
    const id = eventId();
    const roll = Math.random();
    const [type, data, reason]: [string, JsonObject, string] =
      version === 1
        ? ['AccountOpened', { owner: `owner-${k}` }, 'OpenAccount']
        : roll < 0.01
          ? ['LimitChanged', { limit: Math.floor(roll * 100_000) }, 'ChangeLimit']
          : roll < 0.3
            ? ['MoneyWithdrawn', { amount: Math.floor(roll * 1000) }, 'Withdraw']
            : ['MoneyDeposited', { amount: Math.floor(roll * 1000) }, 'Deposit'];
    // Within a request of 5 events: the first is caused by the command, the next ones by an
    // earlier event of the request (a small tree).
    const causationId = group.length === 0 ? command : (group[(group.length - 1) >> 1] as string);
    group.push(id);
    events.push({
      id,
      type,
      data,
      metadata: { actor: `user-${k % actors}`, correlationId, causationId, reason },
    });
  }
  return events;
}

async function buildStore(store: EventStore, streams: number): Promise<Measurement> {
  const chunks = Math.ceil(streams / streamsPerAppend);
  const rounds = perStream / perWrite;
  const m = await measure(chunks * rounds, writers, async (_, __, ___, op) => {
    const round = Math.floor(op / chunks);
    const first = (op % chunks) * streamsPerAppend;
    const writes: StreamWrite[] = [];
    for (let k = first; k < Math.min(streams, first + streamsPerAppend); k++) {
      writes.push({ streamId: `account-${k}`, events: accountEvents(k, round * perWrite, perWrite) });
    }
    await store.appendMulti(writes);
  });
  m.eventsPerSecond = (streams * perStream) / m.seconds;
  return m;
}

/**
 * One latency row: `repeats` runs of each side, one at a time, after a few warm-up runs.
 * Each run returns how many events it delivered: `same` checks both sides agree run by run,
 * `loose` only that something was found (time bounds differ at the edges: Annals works in
 * milliseconds, the raw side in microseconds), `none` that nothing was.
 */
async function compare(
  workload: string,
  rawName: string,
  count: number,
  rawRun: (i: number) => Promise<number>,
  annalsRun: (i: number) => Promise<number>,
  check: 'same' | 'loose' | 'none' = 'same',
): Promise<Row> {
  const side = async (run: (i: number) => Promise<number>, results: number[]) => {
    for (let i = 0; i < 5; i++) await run(count + i);
    const m = await measure(count, 1, async (_, __, ___, op) => {
      results[op] = await run(op);
    });
    // Events delivered per second; queries per second for a query that finds nothing.
    const perRun = results.reduce((a, b) => a + b, 0) / count;
    if (perRun > 0) m.eventsPerSecond *= perRun;
    return m;
  };
  const rawResults: number[] = [];
  const annalsResults: number[] = [];
  const rawM = await side(rawRun, rawResults);
  const annalsM = await side(annalsRun, annalsResults);
  const differ = rawResults.findIndex((r, i) => r !== annalsResults[i]);
  if (check === 'same' && differ >= 0) {
    throw new Error(`${workload}: run ${differ} returned ${rawResults[differ]} raw, ${annalsResults[differ]} annals`);
  }
  const found = [...rawResults, ...annalsResults].filter((r) => r > 0).length;
  if (check === 'none' ? found > 0 : found < 2 * count) throw new Error(`${workload}: found ${found} times`);
  return row(workload, { name: rawName, ...rawM }, annalsM, '');
}

export async function auditSection(url: string, n: (count: number) => number): Promise<Row[]> {
  const rows: Row[] = [];
  const streams = Math.max(streamsPerAppend, Math.round(n(1_000_000) / perStream));
  const events = streams * perStream;
  const store = await openEventStore({ client: createPostgresClient({ connectionString: url }), schema });

  const built = await buildStore(store, streams);
  if ((await store.headPosition()) !== events) throw new Error('audit store: wrong number of events');
  const copy = await raw.auditCopy(url, { fromSchema: schema, table });
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // Both tables as they are once autovacuum has passed (stats, visibility map).
  await pool.query(`vacuum analyze "${schema}".events`);
  rows.push({
    workload: `audit: build ${events} events (appendMulti of 500, ${writers} writers)`,
    raw: copy,
    annals: built,
    ratio: Number.NaN,
    target: '',
  });

  // Keys and moments, the same for both sides: drawn once from the raw copy.
  const pick = (low: number, high: number) => Math.floor(low + Math.random() * (high - low));
  const positions = Array.from({ length: repeats + 5 }, () => pick(1, events + 1));
  const starts = Array.from({ length: repeats + 5 }, () => pick(events * 0.2, events * 0.5));
  const ends = starts.map((p) => p + Math.floor(events * 0.3));
  const { rows: found } = await pool.query<{ position: string; recorded_at: Date; correlation: string }>(
    `select position, recorded_at, metadata ->> 'correlationId' as correlation from ${table}
      where position = any($1::int8[])`,
    [[...positions, ...starts, ...ends]],
  );
  const byPosition = new Map(found.map((r) => [Number(r.position), r]));
  const at = (position: number) => byPosition.get(position) as (typeof found)[number];
  const streamOf = (i: number) => `account-${(positions[i] as number) % streams}`;
  const actorOf = (i: number) => `user-${((positions[i] as number) * 7) % Math.min(actors, streams)}`;
  const range = (i: number) => ({ from: at(starts[i] as number).recorded_at, to: at(ends[i] as number).recorded_at });
  const versionOf = (i: number) => 1 + ((positions[i] as number) % perStream);

  const rawQuery = async (name: string, text: string, values: unknown[]) =>
    (await pool.query({ name, text, values })).rows;
  const audit = auditTrail(store);
  const travel = timeTravel(store, counter);
  const count = async (events: AsyncIterable<unknown>, limit = Number.POSITIVE_INFINITY) => {
    let seen = 0;
    for await (const _ of events) if (++seen >= limit) break;
    return seen;
  };

  rows.push(
    await compare(
      `audit: history of one ${perStream}-event stream (readStream)`,
      'select by stream, version order',
      repeats,
      async (i) =>
        (
          await rawQuery('a_stream', `select ${columns} from ${table} where stream_id = $1 order by stream_version`, [
            streamOf(i),
          ])
        ).length,
      (i) => count(store.readStream(streamOf(i))),
    ),
  );

  rows.push(
    await compare(
      'audit: byActor in a 30% time range, first 100',
      'actor + recorded_at index, limit 100',
      repeats,
      async (i) =>
        (
          await rawQuery(
            'a_actor',
            `select ${columns} from ${table}
              where metadata ->> 'actor' = $1 and recorded_at >= $2 and recorded_at <= $3
              order by recorded_at, position limit 100`,
            [actorOf(i), range(i).from, range(i).to],
          )
        ).length,
      (i) => count(audit.byActor(actorOf(i), { ...range(i), limit: 100 }), 100),
      'loose',
    ),
  );
  rows.push(
    await compare(
      'audit: causal tree of one correlation id (5 events)',
      'select by correlation id',
      repeats,
      async (i) =>
        (
          await rawQuery(
            'a_correlation',
            `select ${columns} from ${table} where metadata ->> 'correlationId' = $1 order by position`,
            [at(positions[i] as number).correlation],
          )
        ).length,
      async (i) => {
        const tree = await audit.causalTree(at(positions[i] as number).correlation);
        const size = (nodes: typeof tree): number => nodes.reduce((sum, node) => sum + 1 + size(node.children), 0);
        if (tree.length !== 1) throw new Error(`causal tree with ${tree.length} roots`);
        return size(tree);
      },
    ),
  );

  const ofType = (type: string, i: number) => ({
    raw: async () =>
      (
        await rawQuery(
          'a_type',
          `select ${columns} from ${table}
            where event_type = $1 and recorded_at >= $2 and recorded_at <= $3
            order by recorded_at, position limit 100`,
          [type, range(i).from, range(i).to],
        )
      ).length,
    annals: async () => {
      const { from, to } = range(i);
      const after = await store.positionAt(new Date(from.getTime() - 1));
      const upTo = await store.positionAt(to);
      let seen = 0;
      for await (const event of store.readAll({ after, eventTypes: [type], limit: 100 })) {
        if (event.position > upTo) break;
        seen++;
      }
      return seen;
    },
  });
  rows.push(
    await compare(
      'audit: one event type (1%) in a 30% time range, first 100',
      'type + recorded_at index, limit 100',
      repeats,
      (i) => ofType('LimitChanged', i).raw(),
      (i) => ofType('LimitChanged', i).annals(),
      'loose',
    ),
  );
  // Every AccountOpened lies in the first tenth of the log (round 0 of the build).
  rows.push(
    await compare(
      '  same, a type with no event in the range (queries/s)',
      'type + recorded_at index, limit 100',
      Math.min(repeats, 50),
      (i) => ofType('AccountOpened', i).raw(),
      (i) => ofType('AccountOpened', i).annals(),
      'none',
    ),
  );

  rows.push(
    await compare(
      `time travel: stateAt({ version }) of a ${perStream}-event stream`,
      'select up to the version, fold in JS',
      repeats,
      async (i) => {
        const found = await rawQuery(
          'a_state',
          `select event_type, data from ${table} where stream_id = $1 and stream_version <= $2
            order by stream_version`,
          [streamOf(i), versionOf(i)],
        );
        let state = counter.initialState();
        for (const r of found) state = counter.evolve(state, { type: r.event_type, data: r.data });
        return state.events;
      },
      async (i) => (await travel.stateAt(streamOf(i), { version: versionOf(i) })).state.events,
    ),
  );

  // A millisecond past an event's time: Dates carry milliseconds, recorded_at microseconds.
  const timeOf = (i: number) => new Date(at(positions[i] as number).recorded_at.getTime() + 1);
  rows.push(
    await compare(
      'positionAt(time) (binary search over the log)',
      'max(position) where recorded_at <= t',
      repeats,
      async (i) => {
        const [r] = await rawQuery('a_max', `select max(position) as p from ${table} where recorded_at <= $1`, [
          timeOf(i),
        ]);
        return Number(r.p) > 0 ? 1 : 0;
      },
      async (i) => ((await store.positionAt(timeOf(i))) > 0 ? 1 : 0),
    ),
  );
  rows.push(
    await compare(
      '  same, vs raw order by recorded_at desc limit 1',
      '(recorded_at, position) index, limit 1',
      repeats,
      async (i) => {
        const [r] = await rawQuery(
          'a_last',
          `select position from ${table} where recorded_at <= $1 order by recorded_at desc, position desc limit 1`,
          [timeOf(i)],
        );
        return Number(r.position) > 0 ? 1 : 0;
      },
      async (i) => ((await store.positionAt(timeOf(i))) > 0 ? 1 : 0),
    ),
  );

  // Integrity: no raw equivalent; the ceiling is reading every row and hashing it once.
  const ceiling = await raw.hashAll(url, { table, events, pageSize: 2000 });
  let sealed = 0;
  const seal = await timeIt(events, async () => {
    sealed = await integrity(store).seal();
  });
  if (sealed !== events) throw new Error(`sealed ${sealed} of ${events}`);
  let checked = 0;
  const verify = await timeIt(events, async () => {
    const report = await integrity(store).verify();
    if (!report.ok) throw new Error(`verify: ${report.broken[0]?.message}`);
    checked = report.checked;
  });
  if (checked !== events) throw new Error(`verified ${checked} of ${events}`);
  rows.push(row(`integrity: seal() all ${events} events`, ceiling, seal, ''));
  rows.push(row(`integrity: verify() all ${events} seals`, ceiling, verify, ''));
  await pool.end();
  await store.close();

  rows.push(...(await personalData(url, n)));
  return rows;
}

/** Appends and reads of events with personal fields, with the policy and without. */
async function personalData(url: string, n: (count: number) => number): Promise<Row[]> {
  const policy: PersonalDataPolicy = { CustomerRegistered: { subject: 'customerId', fields: ['name', 'email'] } };
  const appends = n(20_000);
  const customers = 2000;
  const callers = 32;
  const results: { append: Measurement; read: Measurement }[] = [];
  for (const personalData of [undefined, policy]) {
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: url }),
      schema: personalData ? 'bench_audit_personal' : 'bench_audit_plain',
      personalData,
    });
    const append = await measure(appends, callers, async (caller, _, __, op) => {
      const customerId = `c${op % customers}`;
      await store.append(`customer-${customerId}`, [
        {
          type: 'CustomerRegistered',
          data: { customerId, name: `Customer ${op}`, email: `customer${op}@example.com`, plan: 'basic' },
          metadata: { actor: `user-${caller}`, reason: 'Register' },
        },
      ]);
    });
    const passes = 3;
    let read = 0;
    const readAll = await timeIt(passes * appends, async () => {
      for (let pass = 0; pass < passes; pass++) {
        for await (const event of store.readAll({ pageSize: 1000 })) {
          if (typeof (event.data as { name?: unknown }).name !== 'string') throw new Error('name not readable');
          read++;
        }
      }
    });
    if (read !== passes * appends) throw new Error(`read ${read} of ${passes * appends}`);
    results.push({ append, read: readAll });
    await store.close();
  }
  const [plain, personal] = results as [(typeof results)[number], (typeof results)[number]];
  return [
    row(
      `personal data: 1 event/append, ${callers} callers, ${customers} subjects`,
      { name: 'same store, no policy', ...plain.append },
      personal.append,
      '',
    ),
    row('  readAll of them, decrypting', { name: 'same store, no policy', ...plain.read }, personal.read, ''),
  ];
}
