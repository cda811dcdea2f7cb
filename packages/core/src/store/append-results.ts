/** Turns the outcomes `append_events` reports into append results or typed errors. */
import {
  ConcurrencyError,
  EventIdReusedError,
  StreamArchivedError,
  StreamDeletedError,
  StreamTombstonedError,
} from '../errors.js';
import { satisfiesExpectedVersion } from '../expected-version.js';
import type { WriteOutcome } from '../queries/append-events.js';
import type { AppendResult } from '../types.js';
import type { PreparedWrite } from '../validation.js';

/** Turns one append's write outcomes into its results, or throws its error. */
export function toAppendResults(writes: readonly PreparedWrite[], outcomes: WriteOutcome[]): AppendResult[] {
  if (outcomes.length !== writes.length) throw new Error('append_events returned the wrong number of outcomes');
  // A write refused by its stream's lifecycle state fails the whole append; name it.
  const refused = outcomes.findIndex(
    (o) => o.outcome === 'deleted' || o.outcome === 'tombstoned' || o.outcome === 'archived',
  );
  if (refused >= 0) {
    const { streamId } = writes[refused] as PreparedWrite;
    const outcome = (outcomes[refused] as WriteOutcome).outcome;
    if (outcome === 'tombstoned') throw new StreamTombstonedError(streamId);
    if (outcome === 'archived') throw new StreamArchivedError(streamId, ': unarchive it to append');
    throw new StreamDeletedError(
      streamId,
      false,
      ': append with expected version "any" or "no-stream" to re-open it (its versions go on from where they were)',
    );
  }
  if (outcomes.some((o) => o.outcome === 'conflict')) {
    // The whole append failed; name the write whose version did not match.
    const w = Math.max(
      0,
      outcomes.findIndex(
        (o, i) => !satisfiesExpectedVersion((writes[i] as PreparedWrite).expectedCode, o.actualVersion),
      ),
    );
    const write = writes[w] as PreparedWrite;
    throw new ConcurrencyError(write.streamId, write.expected, (outcomes[w] as WriteOutcome).actualVersion);
  }
  const reused = outcomes.findIndex((o) => o.outcome === 'id_reused');
  if (reused >= 0) throw new EventIdReusedError((writes[reused] as PreparedWrite).streamId);
  return writes.map((write, w) => {
    const outcome = outcomes[w] as WriteOutcome;
    const first = outcome.firstPosition as number;
    const last = outcome.lastPosition as number;
    return {
      streamId: write.streamId,
      streamVersion: outcome.streamVersion as number,
      positions: Array.from({ length: last - first + 1 }, (_, i) => first + i),
      duplicate: outcome.outcome === 'duplicate',
      recordedAt: outcome.recordedAt as Date,
    };
  });
}
