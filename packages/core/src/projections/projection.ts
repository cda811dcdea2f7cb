/**
 * The projection contract: what a read model fed by the log is (a name, a version, filters,
 * handlers that write through the batch's transaction), and the one way every runner applies
 * events to it — the async runner, inline projections in the append's transaction, and
 * `projections(store).at` in a scratch schema.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import type { Documents } from '../queries/documents.js';
import type { RecordedEvent } from '../types.js';
import { assertStreamId, guarded } from '../validation.js';

/**
 * A read model fed by the log. Run it with `projections(store).run`, inline with
 * `openEventStore({ inlineProjections })`, or as of a moment with `projections(store).at`.
 */
export interface Projection {
  /** Unique; with `version`, keys its checkpoint (`projection:<name>:v<version>`) and its lease. */
  name: string;
  /**
   * Version of the read model's shape. A new version is a new read model, built from the start
   * of the log beside the old one (write it to tables of its own, e.g. suffixed `_v2`), which
   * keeps serving until readers switch. @defaultValue 1
   */
  version?: number;
  /** Only events of streams in these categories. */
  categories?: string[];
  /** Only events of these types (defaults to the types of `handlers`, or all with `handleBatch`). */
  eventTypes?: string[];
  /**
   * One handler per event type; each writes through `tx`, the batch's transaction, to its
   * own tables or to `documents` (JSON documents by collection and id, in the same transaction).
   * Handlers use `tx` and `documents` only: a call to the store from a handler runs outside
   * the batch (and on the single-connection embedded backend waits for it forever).
   */
  handlers?: Record<string, (event: RecordedEvent, tx: SqlQueryable, documents: Documents) => Promise<void>>;
  /**
   * Or one handler for a whole batch, for set-based writes (one `insert ... select from
   * unnest(...)` per batch instead of one statement per event).
   */
  handleBatch?: (events: RecordedEvent[], tx: SqlQueryable, documents: Documents) => Promise<void>;
  /** Creates its tables (idempotent DDL such as `create table if not exists`), run at start. */
  setup?: (tx: SqlQueryable) => Promise<void>;
}

/** The event types a projection reads: its own list, else those it has handlers for (else all). */
export function projectionEventTypes(projection: Projection): string[] | undefined {
  return projection.eventTypes ?? (projection.handlers ? Object.keys(projection.handlers) : undefined);
}

/** Applies events to a projection: its batch handler, or each event's handler in turn. */
export async function applyProjection(
  projection: Projection,
  events: RecordedEvent[],
  tx: SqlQueryable,
  docs: Documents,
): Promise<void> {
  if (events.length === 0) return;
  if (projection.handleBatch) await projection.handleBatch(events, tx, docs);
  else for (const event of events) await projection.handlers?.[event.type]?.(event, tx, docs);
}

/** Checks a projection's shape: a name, and either handlers per type or a batch handler. */
export function checkProjection(projection: Projection): void {
  guarded('projection', () => checkProjectionShape(projection));
}

function checkProjectionShape(projection: Projection): void {
  if (typeof projection !== 'object' || projection === null)
    throw new InvalidInputError('projection', 'must be an object');
  assertStreamId(projection.name, 'name', 200);
  const perEvent = projection.handlers !== undefined;
  if (perEvent === (projection.handleBatch !== undefined)) {
    throw new InvalidInputError('handlers', 'give either handlers (per event type) or handleBatch');
  }
  if (perEvent && (typeof projection.handlers !== 'object' || Object.keys(projection.handlers ?? {}).length === 0)) {
    throw new InvalidInputError('handlers', 'must handle at least one event type');
  }
}
