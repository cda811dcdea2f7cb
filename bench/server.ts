/**
 * The `server` section of `npm run bench`: the HTTP server against the library on the same
 * database, side by side in one run.
 *
 * - appends of one event from 64 concurrent keep-alive clients (an undici Pool of 64
 *   connections) to `annals serve` running in a child process, against the same appends from
 *   64 callers of the library in this process;
 * - SSE fan-out: clients on `/subscribe` while events are appended at a fixed rate: the
 *   append-to-delivery latency (the append time travels in the event's data) and the
 *   server's resident memory (read from /proc) at the start, middle and end;
 * - reading one 1000-event stream over HTTP (and parsing it) against `store.readStream`.
 *
 * Loopback only. Every loop is bounded; the child is stopped at the end (SIGTERM, then SIGKILL).
 */
import { readFile } from 'node:fs/promises';
import { createPostgresClient, type EventStore, openEventStore } from '@annals/core';
import { createApiKey, setupApiKeys } from '@annals/server';
import { Pool } from 'undici';
import { forkBench, nextMessage, type ServeChild, startServe as startChild } from './children.js';
import { type Measurement, measure, type Row, row } from './measure.js';

const none: Measurement & { name: string } = {
  name: '-',
  eventsPerSecond: Number.NaN,
  p50Ms: Number.NaN,
  p99Ms: Number.NaN,
  seconds: 0,
};

/** The server's V8 heap in use, in MiB, from its own metrics. */
async function heapMiB(pool: Pool): Promise<number> {
  const response = await pool.request({ method: 'GET', path: '/metrics' });
  const text = await response.body.text();
  return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1]) / 1024 / 1024;
}

/**
 * A quantile of a Prometheus histogram on the server's /metrics (the upper bound of the
 * bucket it falls in), in ms.
 */
async function histogramQuantileMs(pool: Pool, name: string, q: number): Promise<number> {
  const response = await pool.request({ method: 'GET', path: '/metrics' });
  const text = await response.body.text();
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => ({
    le: m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]),
    count: Number(m[2]),
  }));
  const total = buckets.at(-1)?.count ?? 0;
  const bucket = buckets.find((b) => b.count >= q * total);
  return bucket ? bucket.le * 1000 : Number.NaN;
}

/** CPU seconds a process has used (Linux). */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident memory of a process, in MiB (Linux). */
async function rssMiB(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kib = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kib / 1024;
}

const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now();

/**
 * Single-event appends with the exact expected version, `callers` at once, over `streams`
 * (named `<prefix>-<n>`, new ones for each run that needs versions from 0).
 */
function appendLoad(
  events: number,
  callers: number,
  streams: number,
  append: (streamId: string, version: number, data: { i: number; caller: number }) => Promise<void>,
  prefix = 'account',
): Promise<Measurement> {
  const perCaller = Math.floor(streams / callers);
  return measure(events, callers, async (caller, i, versions) => {
    const stream = caller + callers * (i % perCaller);
    const version = versions.get(stream) ?? 0;
    await append(`${prefix}-${stream}`, version, { i, caller });
    versions.set(stream, version + 1);
  });
}

export async function serverSection(url: string, n: (count: number) => number, scale: number): Promise<Row[]> {
  const rows: Row[] = [];
  const clients = 64;
  const open = (schema: string, maxConnections = 10): Promise<EventStore> =>
    openEventStore({ client: createPostgresClient({ connectionString: url, maxConnections }), schema });

  // The server's schema is migrated here first, so the child opens a ready store.
  const schema = 'bench_server';
  const store = await open(schema);
  // Auth is on by default on PostgreSQL: this child, the one of every row but the auth row, has it off.
  // The SSE rows hold up to 1000 connections, all of one principal (anonymous) with auth off:
  // above the default cap of 100 live connections per key.
  const child = await startChild(url, schema, 10, ['--auth', 'off']);
  const pool = new Pool(child.url, { connections: clients, pipelining: 1, keepAliveTimeout: 30_000 });
  // A second child on the same schema with auth on (an API key, cached after its first use)
  // and no rate limit; its key lives in a directory schema of the bench database.
  const directory = 'bench_server_keys';
  const admin = createPostgresClient({ connectionString: url, maxConnections: 2 });
  let authChild: ServeChild | undefined;
  let authPool: Pool | undefined;
  try {
    await setupApiKeys(admin, { directory, serverRoles: [] });
    const key = await createApiKey(
      admin,
      { name: 'bench', tenant: 'default', scopes: ['append', 'read'] },
      { directory },
    );
    authChild = await startChild(url, schema, 10, ['--auth', 'on', '--rate-limit', '0', '--directory', directory]);
    authPool = new Pool(authChild.url, { connections: clients, pipelining: 1, keepAliveTimeout: 30_000 });
    // (a) HTTP appends against the library: same appends, same pool size, same database.
    const events = n(40_000);
    const streams = 10_000;
    const library = await open('bench_server_lib');
    const libraryAppend = (streamId: string, version: number, data: { i: number; caller: number }) =>
      library.append(streamId, [{ type: 'Deposited', data }], { expectedVersion: version }).then(() => {});
    const appendOver =
      (to: Pool, headers: Record<string, string>, metadata?: Record<string, string>) =>
      async (streamId: string, version: number, data: { i: number; caller: number }) => {
        const response = await to.request({
          method: 'POST',
          path: `/streams/${streamId}/events`,
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ events: [{ type: 'Deposited', data, metadata }], expectedVersion: version }),
        });
        await response.body.dump();
        if (response.statusCode !== 201) throw new Error(`append answered ${response.statusCode}`);
      };
    const httpAppend = appendOver(pool, {});
    const authAppend = appendOver(authPool, { authorization: `Bearer ${key.secret}` });
    // Auth on stamps the key's actor on every event, which the audit's actor index then holds:
    // the comparison without auth names the same actor in the body, so both store one event.
    const namedAppend = appendOver(pool, {}, { actor: `key:${key.name}` });
    // Warm-up on streams of their own: JIT, connections, the pools.
    const warm = n(3_000);
    await measure(warm, clients, async (caller, i) => {
      await libraryAppend(`warm-${caller}`, i, { i, caller });
    });
    await measure(warm, clients, async (caller, i) => {
      await httpAppend(`warm-${caller}`, i, { i, caller });
    });
    await measure(warm, clients, async (caller, i) => {
      await authAppend(`warm-auth-${caller}`, i, { i, caller });
    });
    const libraryRun = await appendLoad(events, clients, streams, libraryAppend);
    const httpRun = await appendLoad(events, clients, streams, httpAppend);
    rows.push(
      row(
        `HTTP append, 1 event, ${clients} keep-alive clients (vs the library, ${clients} callers)`,
        { ...libraryRun, name: 'library' },
        httpRun,
        '>= 15k/s, >= 0.5x',
      ),
    );

    // Auth on against off: the same load in turns (off, on, ...), each on streams of its own
    // in the same schema; the row shows each side's median round (by throughput).
    const rounds = Math.max(1, Number(process.env.BENCH_AUTH_ROUNDS ?? 3));
    const off: Measurement[] = [];
    const on: Measurement[] = [];
    for (let round = 0; round < rounds; round++) {
      off.push(await appendLoad(events, clients, streams, namedAppend, `off${round}`));
      on.push(await appendLoad(events, clients, streams, authAppend, `on${round}`));
    }
    const median = (runs: Measurement[]) =>
      [...runs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond)[Math.floor(runs.length / 2)] as Measurement;
    const rates = (runs: Measurement[]) => runs.map((m) => Math.round(m.eventsPerSecond)).join(', ');
    console.log(`server: HTTP appends/s by round, auth off: ${rates(off)}; auth on: ${rates(on)}`);
    rows.push(
      row(
        `HTTP append, auth on (API key, cached) vs auth off, each event with its actor: same load, median of ${rounds} alternating rounds`,
        { ...median(off), name: 'auth off' },
        median(on),
        '>= 0.9x',
      ),
    );
    // Out of the way of the rows that follow.
    await authPool.close();
    authPool = undefined;
    await authChild.stop();
    authChild = undefined;

    // (c) One 1000-event stream: over HTTP (read and parsed) against readStream in-process.
    await library.append(
      'big-1',
      Array.from({ length: 1000 }, (_, i) => ({ type: 'E', data: { i, note: 'a stream read whole' } })),
    );
    await store.append(
      'big-1',
      Array.from({ length: 1000 }, (_, i) => ({ type: 'E', data: { i, note: 'a stream read whole' } })),
    );
    const reads = Math.max(50, Math.round(200 * scale));
    const readInProcess = await measure(reads, 1, async () => {
      let count = 0;
      for await (const _ of library.readStream('big-1')) count++;
      if (count !== 1000) throw new Error(`read ${count} events`);
    });
    const readOverHttp = await measure(reads, 1, async () => {
      const response = await pool.request({ method: 'GET', path: '/streams/big-1/events?limit=1000' });
      const page = (await response.body.json()) as { events: unknown[] };
      if (page.events.length !== 1000) throw new Error(`read ${page.events.length} events`);
    });
    readInProcess.eventsPerSecond *= 1000;
    readOverHttp.eventsPerSecond *= 1000;
    await library.close();

    // (b) SSE fan-out while appending at a fixed rate. Each client follows one of 100
    // categories, so each event reaches subscribers / 100 clients.
    const subscribers = Math.max(100, Math.round(1000 * Math.min(1, scale)));
    const categories = 100;
    const rate = 5000;
    // BENCH_SSE_SECONDS runs it longer, to watch the server's memory over time.
    const seconds = Number(process.env.BENCH_SSE_SECONDS ?? Math.max(2, Math.round(8 * scale)));
    const clientsProcess = forkBench('./sse-clients.ts');
    const fromClients = <T>(key: string) => nextMessage<T>(clientsProcess, key);
    const connected = fromClients<boolean>('connected');
    clientsProcess.send({ start: { url: child.url, clients: subscribers, categories } });
    await connected;
    // Let every client finish its catch-up and switch to live.
    await sleep(1000);
    const rssStart = await rssMiB(child.process.pid);
    const serverCpuStart = await cpuSeconds(child.process.pid);
    const heapStart = await heapMiB(pool);
    // Memory once a second while measuring: flat means the second half peaks no higher than the first.
    const memory: { at: number; rss: number; heap: number }[] = [];
    const sampler = setInterval(() => {
      const at = performance.now();
      void Promise.all([rssMiB(child.process.pid), heapMiB(pool)]).then(([rss, heap]) =>
        memory.push({ at, rss, heap }),
      );
    }, 1000);
    const perTick = rate / 100; // every 10 ms
    const started = performance.now();
    const appends: Promise<unknown>[] = [];
    let appended = 0;
    const measuring = fromClients<boolean>('measuring');
    clientsProcess.send({ measure: true });
    await measuring;
    for (let tick = 0; performance.now() - started < seconds * 1000; tick++) {
      for (let i = 0; i < perTick; i++) {
        const k = tick * perTick + i;
        appends.push(
          store.append(`fan${k % categories}-${k % 1000}`, [{ type: 'Fanned', data: { k, sentAt: now() } }]),
        );
        appended++;
      }
      if (appends.length > 2000) await Promise.all(appends.splice(0));
      const next = started + (tick + 1) * 10;
      await sleep(Math.max(0, next - performance.now()));
    }
    await Promise.all(appends);
    clearInterval(sampler);
    const half = started + (seconds * 1000) / 2;
    const peak = (samples: typeof memory, key: 'rss' | 'heap') => Math.max(...samples.map((sample) => sample[key]));
    const firstHalf = memory.filter((sample) => sample.at < half);
    const secondHalf = memory.filter((sample) => sample.at >= half);
    const offered = appended / ((performance.now() - started) / 1000);
    // Give the last events time to arrive, boundedly.
    const expected = appended * (subscribers / categories);
    const deadline = performance.now() + 5000;
    for (;;) {
      const answer = fromClients<number>('delivered');
      clientsProcess.send({ delivered: true });
      if ((await answer) >= expected || performance.now() > deadline) break;
      await sleep(50);
    }
    const rssEnd = await rssMiB(child.process.pid);
    const heapEnd = await heapMiB(pool);
    const result = fromClients<{
      latencies: number[];
      fromStore: number[];
      delivered: number;
      dropped: number;
      cpuSeconds: number;
    }>('result');
    clientsProcess.send({ stop: true });
    const { latencies, fromStore, delivered, dropped, cpuSeconds: clientsCpu } = await result;
    const measuredSeconds = (performance.now() - started) / 1000;
    const serverCpu = (await cpuSeconds(child.process.pid)) - serverCpuStart;
    rows.push({
      workload: `SSE from the append call: ${subscribers} clients on /subscribe (${subscribers / categories} per category), ~${Math.round(offered)} events/s appended; delivered/expected ${delivered}/${expected}, ${dropped} dropped`,
      raw: none,
      annals: {
        eventsPerSecond: delivered / seconds,
        p50Ms: at(latencies, 0.5),
        p99Ms: at(latencies, 0.99),
        seconds,
      },
      ratio: Number.NaN,
      target: 'p99 < 100 ms',
    });
    const publishP50 = await histogramQuantileMs(pool, 'annals_sse_publish_lag_seconds', 0.5);
    const publishP99 = await histogramQuantileMs(pool, 'annals_sse_publish_lag_seconds', 0.99);
    rows.push({
      workload: `  the same deliveries timed from each event’s recordedAt (its commit, ms precision); in the server, recordedAt to the hub's page: p50 <= ${publishP50} ms, p99 <= ${publishP99} ms`,
      raw: none,
      annals: { eventsPerSecond: Number.NaN, p50Ms: at(fromStore, 0.5), p99Ms: at(fromStore, 0.99), seconds },
      ratio: Number.NaN,
      target: '',
    });
    rows.push({
      workload: `  CPU while measuring: server ${((100 * serverCpu) / measuredSeconds).toFixed(0)}%, SSE clients ${((100 * clientsCpu) / measuredSeconds).toFixed(0)}% of a core; server RSS start ${rssStart.toFixed(0)}, peak 1st half ${peak(firstHalf, 'rss').toFixed(0)}, 2nd half ${peak(secondHalf, 'rss').toFixed(0)}, end ${rssEnd.toFixed(0)} MiB; heap used ${heapStart.toFixed(0)}, ${peak(firstHalf, 'heap').toFixed(0)}, ${peak(secondHalf, 'heap').toFixed(0)}, ${heapEnd.toFixed(0)} MiB`,
      raw: none,
      annals: { ...none },
      ratio: Number.NaN,
      target: 'flat',
    });
    rows.push(
      row(
        'read one 1000-event stream over HTTP, parsed (vs readStream in-process)',
        { ...readInProcess, name: 'library' },
        readOverHttp,
        '',
      ),
    );
  } finally {
    await authPool?.close().catch(() => {});
    await authChild?.stop();
    await admin.close();
    await pool.close().catch(() => {});
    await child.stop();
    await store.close();
  }
  return rows;
}
