/**
 * `annals delete`, `annals tombstone`, `annals archive`, `annals unarchive` and `annals
 * retention`: a stream's lifecycle, recorded with who and why; no event is removed (docs/operations.md, "Stream
 * lifecycle"). Exit status 0 when the stream is in the asked state (also when it already
 * was: `changed: false`), 1 for an error (a stale `--expected-version`, a tombstoned stream,
 * bad input), printed as `annals: <CODE>: <message>`.
 */
import {
  InvalidInputError,
  type LifecycleChange,
  type LifecycleResult,
  lifecycle,
  type RetentionSettings,
} from '@annals/core';
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

/** A window option: a whole number >= 1, or `none` to remove it. */
function window(text: string | undefined, field: string): number | null | undefined {
  if (text === undefined) return undefined;
  if (text === 'none') return null;
  if (/^\d+$/.test(text) && Number(text) >= 1) return Number(text);
  throw new InvalidInputError(field, `must be a whole number >= 1 or "none", got ${JSON.stringify(text)}`);
}

/** `annals retention <stream>`: maxCount, maxAge (seconds) and truncateBefore. */
export async function retentionCommand(
  streamId: string,
  flags: Flags & { maxCount?: string; maxAge?: string; truncateBefore?: number },
): Promise<void> {
  if (!flags.reason) throw new InvalidInputError('--reason', 'is required: a retention change is recorded with why');
  const settings: RetentionSettings = { reason: flags.reason, actor: flags.actor };
  const maxCount = window(flags.maxCount, '--max-count');
  const maxAge = window(flags.maxAge, '--max-age');
  if (maxCount !== undefined) settings.maxCount = maxCount;
  if (maxAge !== undefined) settings.maxAge = maxAge;
  if (flags.truncateBefore !== undefined) settings.truncateBefore = flags.truncateBefore;
  const result = await withStore(flags, (store) => lifecycle(store).setRetention(streamId, settings));
  if (flags.json) console.log(JSON.stringify(result));
  else {
    const shown = (value: number | null, unit: string) => (value === null ? 'all' : `${value}${unit}`);
    console.log(
      `${streamId}${result.changed ? '' : ' unchanged'}: reads keep ${shown(result.maxCount, ' versions')}, ${shown(result.maxAge, ' s')} of age, from version ${Math.max(result.truncateBefore, 1)}${result.changed ? `; recorded at position ${result.position}` : ''}`,
    );
  }
}
