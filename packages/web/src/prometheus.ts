/**
 * Reading the server's /metrics (the Prometheus text format) in the browser: samples by
 * name and labels, rates between two scrapes, and a quantile from a histogram's buckets
 * (linear inside a bucket, as Prometheus' histogram_quantile does).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  at: number;
  samples: Sample[];
}

const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string, at = Date.now()): Scrape {
  const samples: Sample[] = [];
  for (const row of text.split('\n')) {
    if (row === '' || row.startsWith('#')) continue;
    const match = line.exec(row);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(label)) {
      labels[key as string] = (value as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = match[3] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[3]);
    samples.push({ name: match[1] as string, labels, value });
  }
  return { at, samples };
}

/** The sum of the samples named `name` whose labels include `where`; undefined when there is none. */
export function total(scrape: Scrape, name: string, where: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const sample of scrape.samples) {
    if (sample.name !== name) continue;
    if (!Object.entries(where).every(([key, value]) => sample.labels[key] === value)) continue;
    sum = (sum ?? 0) + sample.value;
  }
  return sum;
}

/** Per second between two scrapes of a counter (a restart of the server counts from zero). */
export function rate(before: Scrape, after: Scrape, name: string, where?: Record<string, string>): number | undefined {
  const a = total(before, name, where);
  const b = total(after, name, where);
  const seconds = (after.at - before.at) / 1000;
  if (a === undefined || b === undefined || seconds <= 0) return undefined;
  return Math.max(0, b >= a ? b - a : b) / seconds;
}

/** Cumulative bucket counts of histogram `name` by upper bound, summed over its other labels. */
function buckets(scrape: Scrape, name: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const sample of scrape.samples) {
    if (sample.name !== `${name}_bucket` || sample.labels.le === undefined) continue;
    const bound = sample.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
    counts.set(bound, (counts.get(bound) ?? 0) + sample.value);
  }
  return counts;
}

/**
 * The `q` quantile of histogram `name`: of what it observed between `before` and `after`, or
 * since the start without `before`. Undefined when it observed nothing.
 */
export function quantile(q: number, after: Scrape, name: string, before?: Scrape): number | undefined {
  const now = buckets(after, name);
  const then = before ? buckets(before, name) : new Map<number, number>();
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => (now.get(bound) ?? 0) - (then.get(bound) ?? 0));
  const count = counts[counts.length - 1] ?? 0;
  if (count <= 0) return undefined;
  const rank = q * count;
  for (let i = 0; i < bounds.length; i++) {
    if ((counts[i] as number) < rank) continue;
    const upper = bounds[i] as number;
    const lower = i === 0 ? 0 : (bounds[i - 1] as number);
    // Above the last finite bound, Prometheus answers that bound.
    if (upper === Number.POSITIVE_INFINITY) return lower;
    const below = i === 0 ? 0 : (counts[i - 1] as number);
    const inBucket = (counts[i] as number) - below;
    return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return undefined;
}
