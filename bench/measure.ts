/** Timing helpers for the benchmark: throughput, latency percentiles and a printed table. */

export interface Measurement {
  /** Operations (or events, when scaled by the caller) per second. */
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  seconds: number;
  /** Highest resident set size of the process while it ran (sampled), in MB. */
  peakRssMb?: number;
}

/**
 * Runs `work` while sampling the process's RSS every 20 ms: a read that held the whole log in
 * memory, instead of a page, shows here. The sampling costs a system call per tick.
 */
async function withPeakRss<T extends Measurement>(work: () => Promise<T>): Promise<T> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 20);
  try {
    const m = await work();
    return { ...m, peakRssMb: Math.max(peak, process.memoryUsage.rss()) / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/**
 * Runs `total` operations from `workers` concurrent workers, each claiming the next operation
 * until none is left. `fn(worker, i, op, state)` gets the worker's own iteration count `i`,
 * the global operation index `op`, and a per-worker state map.
 */
export function measure<State = Map<number, number>>(
  total: number,
  workers: number,
  fn: (worker: number, i: number, state: State, op: number) => Promise<void>,
  makeState: () => State = () => new Map() as State,
): Promise<Measurement> {
  return withPeakRss(() => measureRate(total, workers, fn, makeState));
}

async function measureRate<State>(
  total: number,
  workers: number,
  fn: (worker: number, i: number, state: State, op: number) => Promise<void>,
  makeState: () => State,
): Promise<Measurement> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      const state = makeState();
      for (let i = 0; ; i++) {
        const op = next++;
        if (op >= total) return;
        const t0 = performance.now();
        await fn(worker, i, state, op);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { eventsPerSecond: total / seconds, ...percentiles(latencies), seconds };
}

/** Times one piece of work that handles `events` events; no per-operation latency. */
export function timeIt(events: number, work: () => Promise<void>): Promise<Measurement> {
  return withPeakRss(async () => {
    const started = performance.now();
    await work();
    const seconds = (performance.now() - started) / 1000;
    return { eventsPerSecond: events / seconds, p50Ms: Number.NaN, p99Ms: Number.NaN, seconds };
  });
}

/** The median and 99th percentile of `latencies` (sorted in place). */
export function percentiles(latencies: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

/**
 * Annals as a fraction of the raw ceiling: of its throughput, or (`p50`) of its median latency
 * (raw p50 / Annals p50: above 1 when Annals answers sooner).
 */
export function ratio(annals: Measurement, raw: Measurement, by: 'rate' | 'p50' = 'rate'): number {
  return by === 'p50' ? raw.p50Ms / annals.p50Ms : annals.eventsPerSecond / raw.eventsPerSecond;
}

/** One line of the table (and of bench/results/latest.json). */
export interface Row {
  workload: string;
  raw: Measurement & { name: string };
  annals: Measurement;
  ratio: number;
  target: string;
}

export function row(
  workload: string,
  raw: Measurement & { name: string },
  annals: Measurement,
  target: string,
  by: 'rate' | 'p50' = 'rate',
): Row {
  return { workload, raw, annals, ratio: ratio(annals, raw, by), target };
}

const fmtRate = (value: number) => (Number.isFinite(value) ? `${Math.round(value).toLocaleString('en-US')}/s` : '-');
const fmtMs = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}` : '-');

/** Prints the side-by-side table. */
export function printTable(rows: Row[]): void {
  const lines = [
    ['workload', 'raw', 'raw p50/p99 ms', 'annals', 'annals p50/p99 ms', 'annals/raw', 'target', 'peak RSS'],
    ...rows.map((r) => [
      r.workload,
      fmtRate(r.raw.eventsPerSecond),
      `${fmtMs(r.raw.p50Ms)} / ${fmtMs(r.raw.p99Ms)}`,
      r.annals === r.raw ? '-' : fmtRate(r.annals.eventsPerSecond),
      r.annals === r.raw ? '-' : `${fmtMs(r.annals.p50Ms)} / ${fmtMs(r.annals.p99Ms)}`,
      Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-',
      r.target,
      r.annals === r.raw || r.annals.peakRssMb === undefined ? '-' : `${Math.round(r.annals.peakRssMb)} MB`,
    ]),
  ];
  const widths = lines[0]?.map((_, c) => Math.max(...lines.map((line) => line[c]?.length ?? 0))) ?? [];
  for (const [i, line] of lines.entries()) {
    console.log(
      line.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '),
    );
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}
