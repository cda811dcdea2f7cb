/**
 * `annals delete`, `annals tombstone`, `annals archive` and `annals unarchive`: a stream's
 * lifecycle, recorded with who and why; no event is removed (docs/operations.md, "Stream
 * lifecycle"). Exit status 0 when the stream is in the asked state (also when it already
 * was: `changed: false`), 1 for an error (a stale `--expected-version`, a tombstoned stream,
 * bad input), printed as `annals: <CODE>: <message>`.
 */
import { InvalidInputError, type LifecycleChange, type LifecycleResult, lifecycle } from '@annals/core';
import { type ConnectionFlags, withStore } from '../config.js';

type Flags = ConnectionFlags & { reason?: string; actor?: string; expectedVersion?: string; json?: boolean };
type Operation = 'delete' | 'tombstone' | 'archive' | 'unarchive';

const done: Record<Operation, string> = {
  delete: 'deleted (soft: an append with expected version any or no-stream re-opens it)',
  tombstone: 'tombstoned: deleted for good, every later append is refused',
  archive: 'archived: hidden from default reads and refusing appends until unarchived',
  unarchive: 'unarchived: active again',
};

/** `--expected-version`: a whole number, `any` or `stream-exists`. */
function expectedVersion(text: string | undefined): LifecycleChange['expectedVersion'] {
  if (text === undefined || text === 'any' || text === 'stream-exists') return text;
  if (/^\d+$/.test(text)) return Number(text);
  throw new InvalidInputError(
    '--expected-version',
    `must be a version, "any" or "stream-exists", got ${JSON.stringify(text)}`,
  );
}

async function change(operation: Operation, streamId: string, flags: Flags): Promise<void> {
  if (!flags.reason) throw new InvalidInputError('--reason', `is required: a ${operation} is recorded with why`);
  const given: LifecycleChange = {
    reason: flags.reason,
    actor: flags.actor,
    expectedVersion: expectedVersion(flags.expectedVersion),
  };
  const result: LifecycleResult = await withStore(flags, (store) => lifecycle(store)[operation](streamId, given));
  if (flags.json) {
    console.log(JSON.stringify(result));
  } else if (!result.changed) {
    console.log(`${streamId} is already ${result.state}: nothing changed`);
  } else {
    const hidden = result.truncateBefore > 0 ? `; versions below ${result.truncateBefore} are hidden` : '';
    console.log(
      `${streamId} ${done[operation]} (was ${result.previousState}, version ${result.streamVersion}${hidden}); recorded at position ${result.position}`,
    );
  }
}

/** `annals delete <stream>`: soft delete. */
export const deleteCommand = (streamId: string, flags: Flags) => change('delete', streamId, flags);
/** `annals tombstone <stream>`: deleted for good. */
export const tombstoneCommand = (streamId: string, flags: Flags) => change('tombstone', streamId, flags);
/** `annals archive <stream>`. */
export const archiveCommand = (streamId: string, flags: Flags) => change('archive', streamId, flags);
/** `annals unarchive <stream>`. */
export const unarchiveCommand = (streamId: string, flags: Flags) => change('unarchive', streamId, flags);
