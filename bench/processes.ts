/**
 * The `processes` section of `npm run bench`: single-event appends from several application
 * processes at once, as teams deploy (one PostgreSQL, N app instances, C callers each), against
 * the raw comparator laid out the same way (one INSERT per transaction from the same processes).
 * Events have realistic data and metadata (~180 and ~100 bytes: an actor and a correlation id,
 * as the command handler writes them); one row repeats a layout with tiny events.
 *
 * Each process is a child (bench/append-worker.ts) with its own connections; all start
 * together and stop at the same wall-clock time. Loopback only, bounded in time.
 */
import { createPostgresClient, openEventStore } from '@annals/core';
import pg from 'pg';
import { forkBench, nextMessage } from './children.js';
import type { Measurement, Row } from './measure.js';
import { row } from './measure.js';
import { createTable } from './raw.js';

interface Result {
  appends: number;
  latencies: number[];
}

const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** Runs `processes` x `callers` for `seconds`; events per second over all, p50/p99 per append. */
async function layout(
  url: string,
  o: {
    mode: 'annals' | 'coordinated' | 'raw';
    processes: number;
    callers: number;
    seconds: number;
    realistic: boolean;
  },
): Promise<Measurement> {
  const children = Array.from({ length: o.processes }, () => forkBench('./append-worker.ts'));
  try {
    // Every process connects first; then all start together and stop at the same moment.
    const ready = children.map((child) => nextMessage<boolean>(child, 'ready'));
    const job = {
      url,
      mode: o.mode,
      schema: 'bench_processes',
      table: 'raw_processes',
      callers: o.callers,
      streams: 10_000,
      realistic: o.realistic,
    };
    for (const child of children) child.send({ start: job });
    await Promise.all(ready);
    const results = children.map((child) => nextMessage<Result>(child, 'result'));
    const started = performance.now();
    const until = Date.now() + o.seconds * 1000;
    for (const child of children) child.send({ go: until });
    const all = await Promise.all(results);
    const seconds = Math.min((performance.now() - started) / 1000, o.seconds + 5);
    const appends = all.reduce((sum, result) => sum + result.appends, 0);
    const latencies = all.flatMap((result) => result.latencies).sort((a, b) => a - b);
    return { eventsPerSecond: appends / seconds, p50Ms: at(latencies, 0.5), p99Ms: at(latencies, 0.99), seconds };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

export async function processesSection(url: string, scale: number): Promise<Row[]> {
  const seconds = Math.max(2, Math.round(6 * scale));
  // The store's schema and the raw table, made once here.
  const store = await openEventStore({
    client: createPostgresClient({ connectionString: url }),
    schema: 'bench_processes',
  });
  await store.close();
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  await createTable(admin, 'raw_processes');
  await admin.end();

  const rows: Row[] = [];
  const layouts = [
    { processes: 1, callers: 32 },
    { processes: 4, callers: 8 },
    { processes: 8, callers: 4 },
    { processes: 8, callers: 8 },
  ];
  let onePerProcess: Measurement | undefined;
  for (const { processes, callers } of layouts) {
    const raw = await layout(url, { mode: 'raw', processes, callers, seconds, realistic: true });
    const annals = await layout(url, { mode: 'annals', processes, callers, seconds, realistic: true });
    const name = `${processes} process${processes > 1 ? 'es' : ''} x ${callers} callers, 1 realistic event/append`;
    const rawNamed = { ...raw, name: 'one INSERT per transaction' };
    onePerProcess ??= annals;
    rows.push(row(`${name}, each process alone`, rawNamed, annals, ''));
    if (processes > 1) {
      const coordinated = await layout(url, { mode: 'coordinated', processes, callers, seconds, realistic: true });
      rows.push(row('  same, with the append coordinator', rawNamed, coordinated, '>= 2x, >= 10k/s'));
      rows.push(
        row(
          '  same, coordinator vs 1 process x 32 callers',
          { ...onePerProcess, name: '1 process x 32' },
          coordinated,
          '>= 0.6x',
        ),
      );
    }
  }
  const rawTiny = await layout(url, { mode: 'raw', processes: 8, callers: 4, seconds, realistic: false });
  const annalsTiny = await layout(url, { mode: 'annals', processes: 8, callers: 4, seconds, realistic: false });
  rows.push(
    row('  8 processes x 4 callers, tiny events', { ...rawTiny, name: 'one INSERT per transaction' }, annalsTiny, ''),
  );
  return rows;
}
