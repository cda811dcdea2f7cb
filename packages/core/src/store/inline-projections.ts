/**
 * Inline projections: handlers run in the transaction of the appends they project, so the
 * read model commits (or rolls back) with them.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InlineProjectionError } from '../errors.js';
import type { WriteOutcome } from '../queries/append-events.js';
import { documents } from '../queries/documents.js';
import { applyProjection, type Projection, projectionEventTypes } from '../subscriptions/projection-runner.js';
import type { RecordedEvent } from '../types.js';
import type { PreparedWrite } from '../validation.js';

/** Runs inline projections over the events a batch stored, in its transaction. */
export async function applyInline(
  projections: Projection[],
  tx: SqlQueryable,
  schema: string,
  appends: readonly (readonly PreparedWrite[])[],
  outcomes: WriteOutcome[][],
): Promise<void> {
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
  if (stored.length === 0) return;
  stored.sort((x, y) => x.position - y.position);
  for (const projection of projections) {
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
}
