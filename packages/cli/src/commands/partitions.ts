/**
 * `annals partitions enable|status|maintain|detach`: reclaiming space without rewriting the
 * log (docs/operations.md, "Reclaiming space"). The owner's commands: they change the events
 * table's layout. Exit status 0 when done, 1 for an error (`RECLAIM_REFUSED` says why a
 * detach cannot be done; nothing changed).
 */
import { InvalidInputError, type PartitionsStatus, partitions } from '@annals/core';
import { type ConnectionFlags, withStore } from '../config.js';

type Flags = ConnectionFlags & { json?: boolean };

const range = (from: number | null, to: number | null) => (from === null ? 'default' : `${from}..${to}`);

function printStatus(status: PartitionsStatus): void {
  if (!status.partitioned) {
    console.log('the log is not partitioned (annals partitions enable --size <events>)');
  } else {
    console.log(`partitioned by position, ${status.size} events a range`);
    for (const p of status.partitions) console.log(`  ${p.name.padEnd(22)} ${range(p.fromPosition, p.toPosition)}`);
  }
  for (const r of status.reclaimed) {
    console.log(
      `reclaimed ${r.fromPosition}..${r.toPosition} (${r.eventCount} events, table ${r.partition}) at ${r.reclaimedAt.toISOString()} by ${r.actor}: ${r.reason}; log hash ${r.logHash}`,
    );
  }
}

/** `annals partitions enable --size <n>`. */
export async function enablePartitionsCommand(flags: Flags & { size?: number }): Promise<void> {
  if (flags.size === undefined) throw new InvalidInputError('--size', 'is required: events per range (>= 1000)');
  const size = flags.size;
  const status = await withStore(flags, async (store) => {
    const changed = await partitions(store).enable({ size });
    return { changed, ...(await partitions(store).status()) };
  });
  if (flags.json) console.log(JSON.stringify(status));
  else {
    console.log(status.changed ? 'the log is now partitioned' : 'the log was partitioned already: nothing changed');
    printStatus(status);
  }
}

/** `annals partitions status`. */
export async function partitionsStatusCommand(flags: Flags): Promise<void> {
  const status = await withStore(flags, (store) => partitions(store).status());
  if (flags.json) console.log(JSON.stringify(status));
  else printStatus(status);
}

/** `annals partitions maintain [--ahead n]`. */
export async function maintainPartitionsCommand(flags: Flags & { ahead?: number }): Promise<void> {
  const added = await withStore(flags, (store) => partitions(store).maintain({ ahead: flags.ahead ?? 2 }));
  if (flags.json) console.log(JSON.stringify({ added }));
  else console.log(added === 0 ? 'enough ranges ahead of the head: nothing attached' : `attached ${added} range(s)`);
}

/** `annals partitions detach <partition> --reason <why>`. */
export async function detachPartitionCommand(
  partition: string,
  flags: Flags & { reason?: string; actor?: string },
): Promise<void> {
  if (!flags.reason) throw new InvalidInputError('--reason', 'is required: a detach is recorded with why');
  const reason = flags.reason;
  const result = await withStore(flags, (store) =>
    partitions(store).detach(partition, { reason, ...(flags.actor ? { actor: flags.actor } : {}) }),
  );
  if (flags.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `detached ${result.partition}: positions ${result.fromPosition}..${result.toPosition}, ${result.eventCount} events, log hash ${result.logHash}`,
    );
    console.log(`it is a table of its own now: dump it (pg_dump -t '<schema>.${result.partition}'), then drop it`);
  }
}
