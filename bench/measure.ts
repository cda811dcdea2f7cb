/** Timing helpers for the benchmark: throughput, latency percentiles and a printed table. */

export interface Measurement {
  /** Operations (or events, when scaled by the caller) per second. */
  eventsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  seconds: number;
}

/**
 * Runs `total` operations from `workers` concurrent workers, each claiming the next operation
 * until none is left. `fn(worker, i, op, state)` gets the worker's own iteration count `i`,
 * the global operation index `op`, and a per-worker state map.
 */
export async function measure<State = Map<number, number>>(
  total: number,
  workers: number,
  fn: (worker: number, i: number, state: State, op: number) => Promise<void>,
  makeState: () => State = () => new Map() as State,
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
export async function timeIt(events: number, work: () => Promise<void>): Promise<Measurement> {
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  return { eventsPerSecond: events / seconds, p50Ms: Number.NaN, p99Ms: Number.NaN, seconds };
}

function percentiles(latencies: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

/** Annals throughput as a fraction of the raw ceiling's. */
export function ratio(annals: Measurement, raw: Measurement): number {
  return annals.eventsPerSecond / raw.eventsPerSecond;
}

/** One line of the table (and of bench/results/latest.json). */
export interface Row {
  workload: string;
  raw: Measurement & { name: string };
  annals: Measurement;
  ratio: number;
  target: string;
}

export function row(workload: string, raw: Measurement & { name: string }, annals: Measurement, target: string): Row {
  return { workload, raw, annals, ratio: ratio(annals, raw), target };
}

const fmtRate = (value: number) => (Number.isFinite(value) ? `${Math.round(value).toLocaleString('en-US')}/s` : '-');
const fmtMs = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}` : '-');

/** Prints the side-by-side table. */
export function printTable(rows: Row[]): void {
  const lines = [
    ['workload', 'raw', 'raw p50/p99 ms', 'annals', 'annals p50/p99 ms', 'annals/raw', 'target'],
    ...rows.map((r) => [
      r.workload,
      fmtRate(r.raw.eventsPerSecond),
      `${fmtMs(r.raw.p50Ms)} / ${fmtMs(r.raw.p99Ms)}`,
      r.annals === r.raw ? '-' : fmtRate(r.annals.eventsPerSecond),
      r.annals === r.raw ? '-' : `${fmtMs(r.annals.p50Ms)} / ${fmtMs(r.annals.p99Ms)}`,
      Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-',
      r.target,
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
