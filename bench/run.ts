/**
 * `npm run bench`: Annals against hand-written SQL on the same PostgreSQL, in one run.
 *
 * Recreates a scratch database (`annals_bench` on DATABASE_URL's server), then for each
 * workload measures the raw ceiling (plain tables, plain SQL through `pg`, no event-store
 * logic) and Annals, and prints events/s, p50/p99 latency and Annals as a ratio of raw.
 * Writes the same figures to bench/results/latest.json. Not part of the test suite.
 *
 * Options: BENCH_SCALE=0.2 shrinks every workload (a quick look); BENCH_ONLY=append,read
 * runs some sections only (append, batch, read, live, stream, commands, state, audit, transfer,
 * processes, server, instances, tenants, partitions, kurrent, relay (NATS_URL); and memory, a 5M-event log, run only when
 * named, with BENCH_MEMORY_EVENTS its length). BENCH_TENANTS sets the tenants section's tenant count (100);
 * BENCH_AUTH_ROUNDS and BENCH_TENANT_ROUNDS its alternating rounds (3).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import {
  commandHandler,
  createPostgresClient,
  type EventStore,
  openEventStore,
  type Projection,
  projections,
  snapshots,
  subscriptions,
} from '@annals/core';
import { bankAccount } from '@annals/example-bank';
import pg from 'pg';
import { auditSection } from './audit.js';
import { type EventShape, eventData } from './events.js';
import { kurrentSection } from './kurrent.js';
import { measure, printTable, type Row, row, timeIt } from './measure.js';
import { partitionsSection } from './partitions.js';
import { processesSection } from './processes.js';
import * as raw from './raw.js';
import { relaySection } from './relay.js';
import { instancesSection } from './serve-instances.js';
import { serverSection } from './server.js';
import { tenantsSection } from './tenants.js';
import { transferSection } from './transfer.js';

const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const scale = Number(process.env.BENCH_SCALE ?? 1);
const only = process.env.BENCH_ONLY?.split(',');
const n = (count: number) => Math.max(100, Math.round(count * scale));
const benchDatabase = 'annals_bench';

/** An inline projection as a team would write one: per-account totals, one statement per batch. */
const depositTotals: Projection = {
  name: 'deposit-totals',
  setup: async (tx) => {
    await tx.exec(
      'create table if not exists bench_inline.deposit_totals (stream_id text primary key, total bigint not null, events int not null)',
    );
  },
  handleBatch: async (events, tx) => {
    await tx.query(
      `insert into bench_inline.deposit_totals (stream_id, total, events)
       select stream_id, sum(amount), count(*) from unnest($1::text[], $2::bigint[]) as e(stream_id, amount)
        group by stream_id
       on conflict (stream_id) do update
         set total = deposit_totals.total + excluded.total, events = deposit_totals.events + excluded.events`,
      [events.map((e) => e.streamId), events.map((e) => (e.data as { amount: number }).amount)],
    );
  },
};

async function main(): Promise<void> {
  const url = await recreateDatabase();
  console.log(`annals bench on ${redact(url)} (scale ${scale})\n`);
  const rows: Row[] = [];
  const section = (name: string) => !only || only.includes(name);

  const open = async (schema: string, maxConnections = 10): Promise<EventStore> =>
    openEventStore({ client: createPostgresClient({ connectionString: url, maxConnections }), schema });

  if (section('append')) {
    const events = n(40_000);
    const streams = 10_000;
    const callers = 32;
    const rawInsert = await raw.singleInsertPerTransaction(url, { events, streams, callers });
    const rawChecked = await raw.readVersionThenInsert(url, { events, streams, callers });
    const perCaller = Math.floor(streams / callers);
    const appendDeposits = (store: EventStore) =>
      measure(events, callers, async (caller, i, versions) => {
        const stream = caller + callers * (i % perCaller);
        const version = versions.get(stream) ?? 0;
        await store.append(`account-${stream}`, [{ type: 'Deposited', data: { amount: i, caller } }], {
          expectedVersion: version,
        });
        versions.set(stream, version + 1);
      });
    const store = await open('bench_append');
    const annals = await appendDeposits(store);
    await store.close();
    rows.push(row('1 event/append, exact version, 32 callers, 10k streams', rawInsert, annals, '>= 30k/s'));
    // The same appends with one inline projection: a set-based upsert of per-account totals in
    // each batch's transaction, under the log lock. Its ratio is to the same store without it.
    const inline = await openEventStore({
      client: createPostgresClient({ connectionString: url, maxConnections: 10 }),
      schema: 'bench_inline',
      inlineProjections: [depositTotals],
    });
    const withInline = await appendDeposits(inline);
    await inline.close();
    rows.push(
      row('  same, with one inline projection (vs none)', { ...annals, name: 'Annals, no projection' }, withInline, ''),
    );
    rows.push(row('  same, vs raw read-version-then-insert', rawChecked, annals, ''));

    // One caller, one event at a time: no coalescing to hide the fixed cost of a call. The
    // ratio is of median latencies, what that caller waits.
    const alone = n(4_000);
    for (const shape of ['realistic', 'tiny'] as const) {
      const rawAlone = await raw.singleInsertPerTransaction(url, { events: alone, streams, callers: 1, shape });
      const single = await open(`bench_single_${shape}`);
      const annalsAlone = await measure(alone, 1, async (_caller, i) => {
        const { data, metadata } = eventData(i, shape);
        await single.append(`account-${i % streams}`, [{ type: 'Deposited', data, metadata }]);
      });
      await single.close();
      rows.push(
        shape === 'realistic'
          ? row('1 event/append, 1 caller (vs one-row INSERT; p50)', rawAlone, annalsAlone, '>= 0.8x', 'p50')
          : row('  same, tiny events', rawAlone, annalsAlone, '', 'p50'),
      );
    }
  }

  if (section('batch')) {
    const events = n(200_000);
    for (const writers of [1, 8]) {
      for (const shape of ['realistic', 'tiny'] as const) {
        const rawBatch = await raw.multiRowInsert(url, { events, batch: 100, writers, shape });
        const store = await open(`bench_batch_${writers}_${shape}`);
        const annals = await measure(events / 100, writers, async (writer, i, _state, op) => {
          const batch = Array.from({ length: 100 }, (_, k) => ({
            type: 'ItemAdded',
            ...eventData(op * 100 + k, shape),
          }));
          await store.append(`cart-${writer}-${i}`, batch, { expectedVersion: 'no-stream' });
        });
        await store.close();
        annals.eventsPerSecond *= 100;
        rows.push(
          shape === 'realistic'
            ? row(`100 events/append, ${writers} writer(s) (vs multi-row INSERT)`, rawBatch, annals, '>= 1.0x')
            : row('  same, tiny events', rawBatch, annals, ''),
        );
      }
    }
    const copy = await raw.copyImport(url, { events: n(300_000) });
    rows.push({
      workload: 'bulk import ceiling (COPY; Annals import: the transfer section)',
      raw: copy,
      annals: copy,
      ratio: Number.NaN,
      target: '>= 120k/s',
    });
  }

  // Memory, on request only (BENCH_ONLY=memory; BENCH_MEMORY_EVENTS sets the log's length,
  // 5,000,000 by default): a paged read and a catch-up of a long log, and appends of 10,000
  // events each, with the process's peak RSS beside each row. A read that held more than a
  // page, or an append that copied its events more than once, shows there.
  if (only?.includes('memory')) {
    const events = Number(process.env.BENCH_MEMORY_EVENTS ?? 5_000_000);
    const store = await open('bench_memory');
    const rssAtStart = process.memoryUsage.rss() / 2 ** 20;
    const rawRead = await raw.pagedRead(url, { events, shape: 'realistic' });
    await seed(store, events, 'realistic');
    await vacuum(url, 'bench_memory');
    let count = 0;
    const paged = await timeIt(events, async () => {
      for await (const _ of store.readAll({ pageSize: 1000 })) count++;
    });
    if (count !== events) throw new Error(`readAll delivered ${count} of ${events} events`);
    rows.push(row(`readAll, pages of 1000, ${events} events`, rawRead, paged, '>= 0.9x'));
    const subscription = subscriptions(store).subscribe({ batchSize: 1000, handler: () => {} });
    const caughtUp = await timeIt(events, () => subscription.waitFor(events));
    await subscription.stop();
    rows.push(row(`  subscription catch-up of ${events} events to a no-op handler`, rawRead, caughtUp, '>= 0.9x'));
    const big = 10_000;
    const rawBig = await raw.multiRowInsert(url, { events: 10 * big, batch: big, writers: 1, shape: 'realistic' });
    const appended = await measure(10, 1, async (_writer, i) => {
      await store.append(
        `big-${i}`,
        Array.from({ length: big }, (_, k) => ({ type: 'ItemAdded', ...eventData(i * big + k, 'realistic') })),
      );
    });
    appended.eventsPerSecond *= big;
    rows.push(row(`${big} events/append, 1 writer (vs multi-row INSERT of ${big})`, rawBig, appended, ''));
    console.log(`memory section: RSS ${rssAtStart.toFixed(0)} MB before seeding`);
    await store.close();
  }

  if (section('read')) {
    // The log read whole at two lengths (a page must cost the same at any depth), then, on the
    // longer, a tail read, a catch-up and a rebuild. Both sides read vacuumed tables: the first
    // pass over fresh rows otherwise also sets their hint bits, a cost of the write, not the read.
    const lengths = [n(100_000), n(500_000)];
    const events = lengths[1] as number;
    const store = await open('bench_read');
    const readAll = async (reader: EventStore, total: number) => {
      let count = 0;
      const m = await timeIt(total, async () => {
        for await (const _ of reader.readAll({ pageSize: 1000 })) count++;
      });
      if (count !== total) throw new Error(`readAll delivered ${count} of ${total} events`);
      return m;
    };
    let rawRead = await raw.pagedRead(url, { events: lengths[0] as number, shape: 'realistic' });
    await seed(store, lengths[0] as number, 'realistic');
    await vacuum(url, 'bench_read');
    rows.push(
      row(
        `readAll, pages of 1000, ${lengths[0]} events`,
        rawRead,
        await readAll(store, lengths[0] as number),
        '>= 0.9x',
      ),
    );
    rawRead = await raw.pagedRead(url, { events, shape: 'realistic' });
    await seed(store, events - (lengths[0] as number), 'realistic', lengths[0]);
    await vacuum(url, 'bench_read');
    rows.push(row(`readAll, pages of 1000, ${events} events`, rawRead, await readAll(store, events), '>= 0.9x'));
    // Flat as the log grows: the last 10% read on its own costs the same per event.
    const tail = Math.floor(events * 0.9);
    let tailCount = 0;
    const annalsTail = await timeIt(events - tail, async () => {
      for await (const _ of store.readAll({ after: tail, pageSize: 1000 })) tailCount++;
    });
    if (tailCount !== events - tail) throw new Error(`tail read delivered ${tailCount} of ${events - tail}`);
    rows.push(row('  same, last 10% only (flat as the log grows)', rawRead, annalsTail, ''));
    // Catch-up delivery to a no-op handler, through a subscription.
    const subscription = subscriptions(store).subscribe({ batchSize: 1000, handler: () => {} });
    const delivered = await timeIt(events, () => subscription.waitFor(events));
    await subscription.stop();
    rows.push(row('  subscription catch-up to a no-op handler', rawRead, delivered, '>= 0.9x'));
    // A consumer group's catch-up: one member running 1 or 16 partitions (its one read of the
    // log serves them all), and 16 partitions each reading the log for itself, as before. Each
    // on a store of its own, closed after, so that the database's count of the rows it visited
    // is complete (a connection reports it at the latest when it ends).
    const catchUp = async (run: (reader: EventStore, delivered: () => void) => () => Promise<void>) => {
      const before = await rowsVisited(url, 'bench_read');
      const reader = await open('bench_read', 20);
      let received = 0;
      let stop: () => Promise<void> = async () => {};
      const m = await timeIt(events, async () => {
        stop = run(reader, () => received++);
        while (received < events) await new Promise((resolve) => setTimeout(resolve, 5));
      });
      await stop();
      await reader.close();
      return { ...m, visits: ((await rowsVisited(url, 'bench_read')) - before) / events };
    };
    const member = (group: string, partitions: number) => (reader: EventStore, delivered: () => void) => {
      const joined = subscriptions(reader).joinGroup({
        group,
        partitions,
        batchSize: 1000,
        handler: (page) => page.forEach(delivered),
      });
      return () => joined.stop();
    };
    const onePartition = await catchUp(member('bench-1', 1));
    const sixteen = await catchUp(member('bench-16', 16));
    const each = await catchUp((reader, delivered) => {
      const running = Array.from({ length: 16 }, (_, index) =>
        subscriptions(reader).subscribe({
          partition: { count: 16, index },
          batchSize: 1000,
          handler: (page) => page.forEach(delivered),
        }),
      );
      return async () => {
        await Promise.all(running.map((s) => s.stop()));
      };
    });
    const visited = (m: { visits: number }) => `${m.visits.toFixed(1)} rows visited an event`;
    rows.push(row(`  consumer group catch-up, 1 partition (${visited(onePartition)})`, rawRead, onePartition, ''));
    rows.push(
      row(
        `  same, 16 partitions (${visited(sixteen)}; vs 1 partition)`,
        { ...onePartition, name: '1 partition' },
        sixteen,
        '>= 0.8x',
      ),
    );
    rows.push(
      row(
        `  same, 16 partitions each reading the log (${visited(each)}; vs through the member)`,
        { ...sixteen, name: '16 through the member' },
        each,
        '',
      ),
    );
    // A projection rebuilt into a table with one set-based statement per batch.
    const client = createPostgresClient({ connectionString: url });
    await client.exec('create table bench_read.rm_counts (stream_id text primary key, events bigint not null)');
    const runner = projections(store).run(
      {
        name: 'counts',
        handleBatch: async (page, tx) => {
          await tx.query(
            `insert into bench_read.rm_counts (stream_id, events)
             select stream_id, count(*) from unnest($1::text[]) as s(stream_id) group by stream_id
             on conflict (stream_id) do update set events = rm_counts.events + excluded.events`,
            [page.map((e) => e.streamId)],
          );
        },
      },
      { batchSize: 1000 },
    );
    const projected = await timeIt(events, () => runner.waitFor(events));
    await runner.stop();
    const [check] = await client.query<{ total: string }>('select sum(events) as total from bench_read.rm_counts');
    if (Number(check?.total) !== events) throw new Error(`projection counted ${check?.total} of ${events}`);
    await client.close();
    await store.close();
    rows.push(row('  projection rebuild into a table (set-based batch handler)', rawRead, projected, '>= 50k/s'));
    // The same whole read of tiny events: what is per event rather than per byte.
    const tiny = await open('bench_read_tiny');
    const rawTiny = await raw.pagedRead(url, { events, shape: 'tiny' });
    await seed(tiny, events, 'tiny');
    await vacuum(url, 'bench_read_tiny');
    rows.push(row('  same whole read, tiny events', rawTiny, await readAll(tiny, events), ''));
    await tiny.close();
  }

  if (section('live')) {
    // Append -> live subscriber latency while appending about 10k events/s.
    const store = await open('bench_live');
    const sent = new Map<string, number>();
    const latencies: number[] = [];
    const subscription = subscriptions(store).subscribe({
      from: 'end',
      batchSize: 1000,
      pollIntervalMs: 1000,
      handler: (page) => {
        const now = performance.now();
        for (const event of page) {
          const at = sent.get(event.id);
          if (at !== undefined) latencies.push(now - at);
        }
      },
    });
    await subscription.waitFor(0);
    const seconds = Math.max(1, Math.round(3 * scale));
    const perTick = 20; // 20 appends every 2 ms: 10k events/s
    const started = performance.now();
    const appends: Promise<unknown>[] = [];
    for (let tick = 0; performance.now() - started < seconds * 1000; tick++) {
      for (let i = 0; i < perTick; i++) {
        const id = crypto.randomUUID();
        sent.set(id, performance.now());
        appends.push(store.append(`live-${(tick * perTick + i) % 1000}`, [{ id, type: 'E', data: { tick } }]));
      }
      const next = started + (tick + 1) * 2;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    }
    await Promise.all(appends);
    await subscription.waitFor(await store.headPosition());
    const rate = sent.size / ((performance.now() - started) / 1000);
    await subscription.stop();
    await store.close();
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    const live = { eventsPerSecond: rate, p50Ms: at(0.5), p99Ms: at(0.99), seconds };
    rows.push({
      workload: 'append -> live subscriber, ~10k events/s offered',
      raw: { name: '-', eventsPerSecond: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN, seconds },
      annals: live,
      ratio: Number.NaN,
      target: 'p99 < 50 ms',
    });
  }

  if (section('stream')) {
    const store = await open('bench_stream');
    for (const shape of ['realistic', 'tiny'] as const) {
      const streamId = `big-${shape}`;
      await store.append(
        streamId,
        Array.from({ length: 1000 }, (_, i) => ({ type: 'E', ...eventData(i, shape) })),
      );
      const rawStream = await raw.readOneStream(url, { schema: 'bench_stream', streamId, repeats: 200 });
      const annals = await measure(200, 1, async () => {
        let count = 0;
        for await (const _ of store.readStream(streamId)) count++;
        if (count !== 1000) throw new Error(`read ${count} events`);
      });
      annals.eventsPerSecond *= 1000;
      rows.push(
        shape === 'realistic'
          ? row('read one 1000-event stream (vs one SELECT)', rawStream, annals, '>= 0.95x')
          : row('  same, tiny events', rawStream, annals, ''),
      );
    }
    await store.close();
  }

  if (section('commands')) {
    const store = await open('bench_commands');
    const accounts = commandHandler(store, bankAccount, { name: 'account', snapshots: { every: 100, version: 1 } });
    const ids = Array.from({ length: 1000 }, (_, i) => `account-${i}`);
    await measure(ids.length, 32, async (_, __, ___, op) => {
      await accounts.handle(ids[op] as string, { type: 'OpenAccount', data: { owner: 'o', overdraftLimit: 0 } });
    });
    const commands = n(10_000);
    const rawChecked = await raw.readVersionThenInsert(url, { events: commands, streams: 1000, callers: 32 });
    const spread = await measure(commands, 32, async (caller, i) => {
      const id = ids[(caller + 32 * i) % ids.length] as string;
      await accounts.handle(id, { type: 'Deposit', data: { amount: 100 } });
    });
    rows.push(row('commands (Deposit), 32 callers over 1000 accounts', rawChecked, spread, ''));
    const hot = await measure(n(3_000), 32, async (caller) => {
      await accounts.handle(ids[caller % 4] as string, { type: 'Deposit', data: { amount: 100 } });
    });
    rows.push(row('  same, all 32 callers on 4 hot accounts', rawChecked, hot, ''));
    await store.close();
  }

  if (section('state')) {
    const store = await open('bench_state');
    const length = n(100_000);
    const id = 'account-big';
    await store.append(id, [{ type: 'AccountOpened', data: { owner: 'big', overdraftLimit: 0 } }]);
    for (let done = 1; done < length; done += 1000) {
      const count = Math.min(1000, length - done);
      await store.append(
        id,
        Array.from({ length: count }, () => ({ type: 'MoneyDeposited', data: { amount: 1 } })),
      );
    }
    const rawStream = await raw.readOneStream(url, { schema: 'bench_state', streamId: id, repeats: 5, expect: length });
    const plain = commandHandler(store, bankAccount, { name: 'account' });
    const full = await measure(5, 1, async () => {
      await plain.load(id);
    });
    full.eventsPerSecond *= length;
    const snapshotting = commandHandler(store, bankAccount, {
      name: 'account',
      snapshots: { every: 1000, version: 1 },
    });
    const { state, streamVersion } = await plain.load(id);
    // The latest snapshot lies up to `every` events behind: leave 999 events to replay.
    const behind = Math.max(1, streamVersion - 999);
    const older = await plain.load(id, { version: behind });
    await snapshots(store).save({
      streamId: id,
      decider: 'account',
      modelVersion: 1,
      streamVersion: behind,
      state: older.state as never,
    });
    const fromSnapshot = await measure(20, 1, async () => {
      const loaded = await snapshotting.load(id);
      if (loaded.state.balance !== state.balance) throw new Error('snapshot load disagrees');
    });
    fromSnapshot.eventsPerSecond *= length;
    rows.push(row(`current state of a ${length}-event stream, no snapshot`, rawStream, full, '< 20 ms'));
    rows.push(row('  same, from a snapshot 999 events behind', rawStream, fromSnapshot, '< 20 ms'));
    await store.close();
  }

  if (section('audit')) rows.push(...(await auditSection(url, n)));

  if (section('transfer')) rows.push(...(await transferSection(url, n)));

  if (section('processes')) rows.push(...(await processesSection(url, scale)));
  if (section('server')) rows.push(...(await serverSection(url, n, scale)));
  if (section('instances')) rows.push(...(await instancesSection(url, scale)));
  if (section('tenants')) rows.push(...(await tenantsSection(url, n, scale)));
  if (section('partitions')) rows.push(...(await partitionsSection(url, n)));
  if (section('kurrent')) rows.push(...(await kurrentSection(url, n)));
  if (section('relay')) rows.push(...(await relaySection(url, n)));

  printTable(rows);
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(
    new URL('./results/latest.json', import.meta.url),
    `${JSON.stringify({ at: new Date().toISOString(), scale, rows }, null, 2)}\n`,
  );
  console.log('\nwritten to bench/results/latest.json');
}

/** Seeds `events` events of `shape` in appends of 1000 from 4 writers, numbered from `from`. */
async function seed(store: EventStore, events: number, shape: EventShape, from = 0): Promise<void> {
  const per = 1000;
  await measure(Math.ceil(events / per), 4, async (_writer, _i, _, op) => {
    const count = Math.min(per, events - op * per);
    const first = from + op * per;
    await store.append(
      `seed-${first / per}`,
      Array.from({ length: count }, (_, k) => ({ type: 'Seeded', ...eventData(first + k, shape) })),
    );
  });
}

/** VACUUM ANALYZE of a store's events table, as the raw side does to its own before reading. */
/**
 * Rows of `schema`'s log the database visited so far (sequential and index scans), once the
 * count stops moving: connections report theirs when they end or go idle.
 */
async function rowsVisited(url: string, schema: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let last = -1;
    for (;;) {
      const { rows } = await client.query<{ visits: string }>(
        `select pg_stat_clear_snapshot(), (select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
           from pg_stat_user_tables where schemaname = $1 and relname = 'events')::text as visits`,
        [schema],
      );
      const now = Number(rows[0]?.visits);
      if (now === last) return now;
      last = now;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    await client.end();
  }
}

async function vacuum(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`vacuum analyze "${schema}".events`);
  } finally {
    await client.end();
  }
}

async function recreateDatabase(): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${benchDatabase} with (force)`);
  await admin.query(`create database ${benchDatabase}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${benchDatabase}`;
  return url.toString();
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

await main();
