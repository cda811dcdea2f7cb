/** `annals state` and `annals replay`: a stream as it was, and step by step. */
import { timeTravel } from '@annals/core';
import { type ConnectionFlags, withStore } from '../config.js';
import { loadDecider, parseMoment } from '../moments.js';

type Flags = ConnectionFlags & { json?: boolean; decider?: string };

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
      for (const change of step.changes) {
        const path = change.path.join('.');
        if (change.type === 'CREATE') console.log(`    + ${path} = ${JSON.stringify(change.value)}`);
        else if (change.type === 'REMOVE') console.log(`    - ${path} (was ${JSON.stringify(change.oldValue)})`);
        else console.log(`    ~ ${path}: ${JSON.stringify(change.oldValue)} -> ${JSON.stringify(change.value)}`);
      }
      if (step.changes.length === 0) console.log('    (state unchanged)');
    }
  });
}
