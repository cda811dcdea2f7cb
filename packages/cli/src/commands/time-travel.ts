/** `annals state` and `annals replay`: a stream as it was, and step by step. */
import { type Changes, timeTravel } from '@annals/core';
import { type ConnectionFlags, withStore } from '../config.js';
import { loadDecider, parseMoment, parseTime } from '../moments.js';

type Flags = ConnectionFlags & { json?: boolean; decider?: string };

/** One change of a state diff for people: `path: before -> after`, `(none)` where absent. */
export function formatChange(change: Changes<unknown>['streams'][number]['changes'][number]): string {
  const before = change.type === 'CREATE' ? '(none)' : JSON.stringify(change.oldValue);
  const after = change.type === 'REMOVE' ? '(none)' : JSON.stringify(change.value);
  return `${change.path.join('.')}: ${before} -> ${after}`;
}

/** `annals state <stream> --at <moment>`: the state as of a version, position or time. */
export async function stateCommand(streamId: string, flags: Flags & { at: string }): Promise<void> {
  const at = parseMoment(flags.at);
  const decider = await loadDecider(flags.decider);
  await withStore(flags, async (store) => {
    const result = await timeTravel(store, decider).stateAt(streamId, at);
    if (flags.json) {
      console.log(JSON.stringify(result));
      return;
    }
    console.log(
      `${streamId} as of version ${result.streamVersion} (position ${result.position}, ${result.recordedAt.toISOString()}):`,
    );
    console.log(JSON.stringify(result.state, null, 2));
  });
}

/** `annals replay <stream>`: each event with the state before, after and what changed. */
export async function replayCommand(streamId: string, flags: Flags & { from?: number; to?: number }): Promise<void> {
  const decider = await loadDecider(flags.decider);
  await withStore(flags, async (store) => {
    const steps = timeTravel(store, decider).replay(streamId, { fromVersion: flags.from, toVersion: flags.to });
    for await (const step of steps) {
      if (flags.json) {
        console.log(JSON.stringify(step));
        continue;
      }
      const { event } = step;
      const who = event.metadata.actor ? ` by ${event.metadata.actor}` : '';
      console.log(
        `v${event.streamVersion}  #${event.position}  ${event.recordedAt.toISOString()}  ${event.type}${who}`,
      );
      for (const change of step.changes) console.log(`    ${formatChange(change)}`);
      if (step.changes.length === 0) console.log('    (state unchanged)');
    }
  });
}

/** A time, or a global position written `position:N`. */
function parseInstant(text: string, field: string): Date | number {
  const match = /^position:(\d+)$/.exec(text);
  return match ? Number(match[1]) : parseTime(text, field);
}

/** `annals changes --from <t1> --to <t2>`: the events between two moments and each stream's state diff. */
export async function changesCommand(flags: Flags & { from: string; to: string; category?: string[] }): Promise<void> {
  const from = parseInstant(flags.from, '--from');
  const to = parseInstant(flags.to, '--to');
  const decider = await loadDecider(flags.decider);
  await withStore(flags, async (store) => {
    const changes = await timeTravel(store, decider).changesBetween(from, to, { categories: flags.category });
    if (flags.json) {
      console.log(JSON.stringify(changes));
      return;
    }
    console.log(
      `positions ${changes.fromPosition + 1}..${changes.toPosition}: ${changes.events.length} events in ${changes.streams.length} streams`,
    );
    for (const stream of changes.streams) {
      console.log(stream.streamId);
      for (const change of stream.changes) console.log(`    ${formatChange(change)}`);
    }
  });
}
