import type { RecordedEvent } from '@annals/core';
import { subscriptions } from '@annals/core';
import { type ConnectionFlags, withStore } from '../config.js';

type Output = { json?: boolean };

/** One line per event for people, one JSON object per line for scripts. */
export function printEvent(event: RecordedEvent, json = false): void {
  if (json) {
    console.log(JSON.stringify(event));
    return;
  }
  const who = event.metadata.actor ? ` by ${event.metadata.actor}` : '';
  console.log(
    `#${event.position}  ${event.streamId}@${event.streamVersion}  ${event.type}${who}  ${event.recordedAt.toISOString()}  ${JSON.stringify(event.data)}`,
  );
}

/** `annals read <stream>`: a stream's events. */
/** `--include-deleted` / `--include-archived`: also what a stream's lifecycle hides. */
type Lifecycle = { includeDeleted?: boolean; includeArchived?: boolean };

export async function readCommand(
  streamId: string,
  flags: ConnectionFlags & Output & Lifecycle & { from?: number; limit?: number; backward?: boolean },
): Promise<void> {
  await withStore(flags, async (store) => {
    for await (const event of store.readStream(streamId, {
      direction: flags.backward ? 'backward' : 'forward',
      fromVersion: flags.from,
      limit: flags.limit,
      includeDeleted: flags.includeDeleted ?? false,
      includeArchived: flags.includeArchived ?? false,
    })) {
      printEvent(event, flags.json);
    }
  });
}

/** `annals log`: the global log after a position, optionally filtered. */
export async function logCommand(
  flags: ConnectionFlags &
    Output &
    Lifecycle & { after?: number; limit?: number; category?: string[]; type?: string[] },
): Promise<void> {
  await withStore(flags, async (store) => {
    for await (const event of store.readAll({
      after: flags.after,
      limit: flags.limit,
      categories: flags.category,
      eventTypes: flags.type,
      includeDeleted: flags.includeDeleted ?? false,
      includeArchived: flags.includeArchived ?? false,
    })) {
      printEvent(event, flags.json);
    }
  });
}

/** `annals holders`: which transactions hold the log lock right now. */
export async function holdersCommand(flags: ConnectionFlags & Output): Promise<void> {
  await withStore(flags, async (store) => {
    const holders = await store.logHolders();
    if (flags.json) {
      console.log(JSON.stringify(holders));
    } else if (holders.length === 0) {
      console.log('nothing holds the log');
    } else {
      for (const h of holders) {
        console.log(
          `pid ${h.pid} (${h.applicationName || 'no application name'}), ${h.state}, transaction open ${h.openForMs} ms, ${h.waiting} waiting: ${h.query}`,
        );
      }
    }
  });
}

/** `annals checkpoints`: every durable subscription and projection, with its lag. */
export async function checkpointsCommand(flags: ConnectionFlags & Output): Promise<void> {
  await withStore(flags, async (store) => {
    const checkpoints = await subscriptions(store).checkpoints();
    if (flags.json) {
      console.log(JSON.stringify(checkpoints));
    } else if (checkpoints.length === 0) {
      console.log('no subscription or projection has a checkpoint yet');
    } else {
      for (const c of checkpoints) {
        console.log(
          `${c.name}: position ${c.position}, ${c.lag} events behind (${c.lagSeconds.toFixed(1)} s), ${c.parked} parked`,
        );
      }
    }
  });
}

/** `annals parked <subscription>`: the events a subscription parked, with their errors. */
export async function parkedCommand(subscription: string, flags: ConnectionFlags & Output): Promise<void> {
  await withStore(flags, async (store) => {
    const parked = await subscriptions(store).parked(subscription);
    if (flags.json) {
      console.log(JSON.stringify(parked));
    } else if (parked.length === 0) {
      console.log(`${subscription} has no parked events`);
    } else {
      for (const p of parked) {
        console.log(
          `#${p.position}  ${p.eventId}  after ${p.attempts} attempts, ${p.parkedAt.toISOString()}: ${p.error}`,
        );
      }
    }
  });
}
