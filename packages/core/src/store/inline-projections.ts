/**
 * Inline projections: handlers run in the transaction of the appends they project, so the
 * read model commits (or rolls back) with them.
 *
 * They run while the batch holds the log lock, so their time is every writer's time. It is
 * bounded: the handlers' statements get a `statement_timeout`, and the handlers as a whole a
 * deadline, both `inlineProjectionTimeoutMs`. Past the deadline the batch fails with
 * {@link InlineProjectionError} and rolls back (the adapters refuse any statement a late
 * handler still sends through the ended transaction), so the lock is held at most about
 * twice the budget: the deadline, then the cut-off of a statement in flight.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InlineProjectionError } from '../errors.js';
import { applyProjection, type Projection, projectionEventTypes } from '../projections/projection.js';
import type { WriteOutcome } from '../queries/append-events.js';
import { documents } from '../queries/documents.js';
import { limitStatementsFor } from '../queries/statement-timeout.js';
import type { RecordedEvent } from '../types.js';
import type { PreparedWrite } from '../validation.js';

/** Runs inline projections over the events a batch stored, in its transaction, within `timeoutMs`. */
export async function applyInline(
  projections: readonly Projection[],
  tx: SqlQueryable,
  schema: string,
  appends: readonly (readonly PreparedWrite[])[],
  outcomes: WriteOutcome[][],
  timeoutMs: number,
): Promise<void> {
  const stored = storedEvents(appends, outcomes);
  if (stored.length === 0 || projections.length === 0) return;
  // Local to the transaction: it ends with the commit or rollback.
  await limitStatementsFor(tx, timeoutMs);
  let current = projections[0] as Projection;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new InlineProjectionError(current.name, new Error(`took longer than ${timeoutMs} ms`))),
      timeoutMs,
    );
  });
  const run = async () => {
    for (const projection of projections) {
      current = projection;
      const types = projectionEventTypes(projection);
      const events = stored.filter(
        (event) =>
          (!projection.categories || projection.categories.includes(event.streamId.split('-')[0] as string)) &&
          (!types || types.includes(event.type)),
      );
      if (events.length === 0) continue;
      try {
        await applyProjection(projection, events, tx, documents(tx, schema));
      } catch (error) {
        throw new InlineProjectionError(projection.name, error);
      }
    }
  };
  const work = run();
  // Past the deadline the batch fails at once; the handlers' own end is then nobody's business.
  work.catch(() => {});
  try {
    await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The events a batch stored, as readers will see them, in log order. */
function storedEvents(appends: readonly (readonly PreparedWrite[])[], outcomes: WriteOutcome[][]): RecordedEvent[] {
  const stored: RecordedEvent[] = [];
  appends.forEach((writes, a) => {
    writes.forEach((write, w) => {
      const outcome = outcomes[a]?.[w];
      if (outcome?.outcome !== 'ok') return;
      const first = outcome.firstPosition as number;
      const before = (outcome.streamVersion as number) - write.events.length;
      write.events.forEach((event, e) => {
        stored.push({
          position: first + e,
          streamId: write.streamId,
          streamVersion: before + e + 1,
          id: event.id,
          type: event.type,
          data: JSON.parse(event.data),
          metadata: JSON.parse(event.metadata),
          recordedAt: outcome.recordedAt as Date,
        });
      });
    });
  });
  return stored.sort((x, y) => x.position - y.position);
}
