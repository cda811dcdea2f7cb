/**
 * The commands an operator reaches for while the store runs: `annals tail` (follow the log
 * live, like `tail -f`), `annals streams` (list them, with version and last time), `annals
 * stats` (the log's size and rate, the largest streams, and how far every runner is behind)
 * and `annals rebuild <projection>` (rebuild an app's projection with a progress bar and an
 * ETA).
 */
import {
  type EventStore,
  InvalidInputError,
  integrity,
  listStreams,
  type ProjectionStatus,
  projections,
  type StreamSummary,
  subscriptions,
} from '@annals/core';
import { loadApp } from '@annals/server';
import cliProgress from 'cli-progress';
import { type ConnectionFlags, withStore } from '../config.js';
import { printEvent } from './read.js';

type Output = { json?: boolean };

/** Resolves on the first SIGINT or SIGTERM. */
const interrupted = () =>
  new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });

/**
 * `annals tail`: the events appended from now on (or after `--after`), as they commit, until
 * interrupted. Each event once, in log order, as `annals log` prints them.
 */
export async function tailCommand(
  flags: ConnectionFlags & Output & { after?: number; category?: string[]; type?: string[] },
): Promise<void> {
  await withStore(flags, async (store) => {
    const after = flags.after ?? (await store.headPosition());
    // Checked before following, so a bad filter is an error, not a silent wait.
    store.readAll({ after, limit: 1, categories: flags.category, eventTypes: flags.type });
    const stop = interrupted();
    const subscription = subscriptions(store).subscribe({
      from: { after },
      categories: flags.category,
      eventTypes: flags.type,
      handler: (events) => {
        for (const event of events) printEvent(event, flags.json);
      },
    });
    if (!flags.json) console.error(`following the log after position ${after} (Ctrl-C to stop)`);
    await Promise.race([stop, subscription.done]);
    await subscription.stop();
  });
}

/** `annals streams`: the streams in stream-id order, with version, last event time and state. */
export async function streamsCommand(
  flags: ConnectionFlags & Output & { category?: string; after?: string; limit?: number },
): Promise<void> {
  await withStore(flags, async (store) => {
    const page = await listStreams(store, { category: flags.category, after: flags.after, limit: flags.limit });
    if (flags.json) {
      console.log(JSON.stringify(page));
      return;
    }
    for (const s of page.streams) {
      const state = s.state === 'active' ? '' : `  (${s.state})`;
      console.log(`${s.streamId}  v${s.version}  last #${s.lastPosition} at ${s.lastEventAt.toISOString()}${state}`);
    }
    if (page.streams.length === 0) console.log('no streams');
    if (page.next) console.log(`more: annals streams --after '${page.next}'`);
  });
}

/** The `count` streams with the most events, and how many streams there are (walks them all). */
async function largestStreams(
  store: EventStore,
  count: number,
): Promise<{ streams: number; largest: StreamSummary[] }> {
  let largest: StreamSummary[] = [];
  let streams = 0;
  let after: string | undefined;
  for (;;) {
    const page = await listStreams(store, { after, limit: 10_000 });
    streams += page.streams.length;
    largest = [...largest, ...page.streams].sort((a, b) => b.version - a.version).slice(0, count);
    if (!page.next) return { streams, largest };
    after = page.next;
  }
}

/** Events appended in the last `minutes`, from the position the log had then. */
async function appendedSince(store: EventStore, head: number, minutes: number): Promise<number> {
  const then = await store.positionAt(new Date(Date.now() - minutes * 60_000));
  return head - then;
}

/** What `annals stats` reports. */
export interface Stats {
  head: number;
  /** Events appended in the last 1, 5 and 15 minutes, and per second over each. */
  rates: { minutes: number; events: number; perSecond: number }[];
  unsealed: number;
  /** How many streams have events, and the largest (omitted with `--largest 0`). */
  streams?: number;
  largest?: { streamId: string; version: number }[];
  runners: { name: string; position: number; lag: number; lagSeconds: number; parked: number }[];
}

/**
 * `annals stats`: the log's head and append rate, seal lag, the largest streams (walking every
 * stream: one index probe each; `--largest 0` skips it on a store of millions) and the lag of
 * every runner.
 */
export async function statsCommand(flags: ConnectionFlags & Output & { largest?: number }): Promise<void> {
  const count = flags.largest ?? 5;
  if (!Number.isSafeInteger(count) || count < 0) throw new InvalidInputError('--largest', 'must be 0 or more');
  await withStore(flags, async (store) => {
    const head = await store.headPosition();
    const rates = await Promise.all(
      [1, 5, 15].map(async (minutes) => {
        const events = await appendedSince(store, head, minutes);
        return { minutes, events, perSecond: events / (minutes * 60) };
      }),
    );
    const [status, checkpoints] = await Promise.all([integrity(store).status(), subscriptions(store).checkpoints()]);
    const stats: Stats = {
      head,
      rates,
      unsealed: status.unsealed,
      ...(count > 0
        ? await largestStreams(store, count).then(({ streams, largest }) => ({
            streams,
            largest: largest.map(({ streamId, version }) => ({ streamId, version })),
          }))
        : {}),
      runners: checkpoints.map(({ name, position, lag, lagSeconds, parked }) => ({
        name,
        position,
        lag,
        lagSeconds,
        parked,
      })),
    };
    if (flags.json) {
      console.log(JSON.stringify(stats));
      return;
    }
    console.log(`log head: position ${head}`);
    for (const rate of rates) {
      console.log(`  last ${rate.minutes} min: ${rate.events} events, ${rate.perSecond.toFixed(1)}/s`);
    }
    console.log(`unsealed: ${stats.unsealed} events`);
    if (stats.largest) {
      console.log(`streams: ${stats.streams}; the largest:`);
      for (const s of stats.largest) console.log(`  ${s.streamId}: ${s.version} events`);
    }
    if (stats.runners.length === 0) console.log('runners: none has a checkpoint yet');
    for (const runner of stats.runners) {
      console.log(
        `  ${runner.name}: position ${runner.position}, ${runner.lag} events behind (${runner.lagSeconds.toFixed(1)} s), ${runner.parked} parked`,
      );
    }
  });
}

/**
 * `annals rebuild <projection> --app <module>`: rebuilds one of the app's projections from its
 * checkpoint (the start of the log, for a new version) up to the head as it is now (see
 * `projections(store).rebuild`), with a progress bar and ETA on a terminal, then switches
 * readers to the version built (unless `--no-switch`); the status as JSON with `--json`.
 */
export async function rebuildCommand(
  name: string,
  flags: ConnectionFlags & Output & { app?: string; switch?: boolean; actor?: string },
): Promise<void> {
  if (!flags.app) throw new InvalidInputError('--app', 'name the application module that holds the projection');
  const app = await loadApp(flags.app);
  const projection = [...(app.projections ?? []), ...(app.inlineProjections ?? [])].find((p) => p.name === name);
  if (!projection) {
    const known = [...(app.projections ?? []), ...(app.inlineProjections ?? [])].map((p) => p.name);
    throw new InvalidInputError(
      'projection',
      `no projection ${name} in ${flags.app} (it has: ${known.join(', ') || 'none'})`,
    );
  }
  await withStore(flags, async (store) => {
    const bar =
      flags.json || !process.stderr.isTTY
        ? undefined
        : new cliProgress.SingleBar(
            {
              format: `rebuilding ${name} [{bar}] {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted}`,
              stream: process.stderr,
            },
            cliProgress.Presets.shades_classic,
          );
    bar?.start(await store.headPosition(), 0, { rate: 0 });
    let status: ProjectionStatus;
    try {
      status = await projections(store).rebuild(projection, {
        switchOnSuccess: flags.switch !== false,
        ...(flags.actor ? { actor: flags.actor } : {}),
        onProgress: (s) => {
          bar?.setTotal(Math.max(1, s.head));
          bar?.update(s.position, { rate: Math.round(s.eventsPerSecond) });
        },
      });
    } finally {
      bar?.stop();
    }
    const serving = await projections(store).servingVersion(name);
    if (flags.json) console.log(JSON.stringify({ ...status, servingVersion: serving?.version ?? null }));
    else {
      console.log(`rebuilt ${status.name} v${status.version}: position ${status.position} of ${status.head}`);
      console.log(
        serving
          ? `readers are served v${serving.version} (switched ${serving.switchedAt.toISOString()})`
          : 'readers were not switched (--no-switch)',
      );
    }
  });
}
