/**
 * Every error Annals throws on purpose is an {@link AnnalsError} with a stable string `code`.
 * Match on `code` (or `instanceof`), never on message text. Codes are listed in docs/errors.md.
 */
import type { ExpectedVersion, JsonObject } from './types.js';

/** Every stable error code, one per error class. */
export type AnnalsErrorCode =
  | 'INVALID_INPUT'
  | 'PAYLOAD_TOO_LARGE'
  | 'CONCURRENCY_CONFLICT'
  | 'STREAM_METADATA_CHANGED'
  | 'EVENT_ID_REUSED'
  | 'SCHEMA_TOO_NEW'
  | 'SCHEMA_OUTDATED'
  | 'STORE_CLOSED'
  | 'DATABASE_ERROR'
  | 'INVALID_EVENT'
  | 'UNKNOWN_EVENT_TYPE'
  | 'DOMAIN_ERROR'
  | 'PROJECTION_FAILED'
  | 'STREAM_NOT_FOUND'
  | 'STREAM_DELETED'
  | 'STREAM_TOMBSTONED'
  | 'STREAM_ARCHIVED'
  | 'TAMPER_DETECTED'
  | 'RECLAIM_REFUSED';

/** Base class of every error Annals throws on purpose. */
export class AnnalsError extends Error {
  readonly code: AnnalsErrorCode;

  constructor(code: AnnalsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument failed validation before anything reached the database; nothing was stored. */
export class InvalidInputError extends AnnalsError {
  /** Path of the offending argument, e.g. `events[2].data.items[0]`. */
  readonly field: string;

  constructor(field: string, reason: string) {
    super('INVALID_INPUT', `${field}: ${reason}`);
    this.field = field;
  }
}

/** An event (data plus metadata, as JSON) or an append is over its configured size limit. */
export class PayloadTooLargeError extends AnnalsError {
  readonly field: string;
  readonly limit: number;
  readonly actual: number;

  constructor(field: string, limit: number, actual: number, unit = 'bytes') {
    super('PAYLOAD_TOO_LARGE', `${field}: ${actual} ${unit} is over the limit of ${limit} ${unit}`);
    this.field = field;
    this.limit = limit;
    this.actual = actual;
  }
}

/**
 * The stream was not at the version the append expected; nothing of that append was stored.
 * Reload the stream and decide again.
 */
export class ConcurrencyError extends AnnalsError {
  readonly streamId: string;
  readonly expected: ExpectedVersion;
  /** The stream's version when the append was checked (0: the stream has no event). */
  readonly actual: number;

  constructor(streamId: string, expected: ExpectedVersion, actual: number) {
    super(
      'CONCURRENCY_CONFLICT',
      `stream ${JSON.stringify(streamId)}: expected version ${describeExpected(expected)}, actual version ${actual}`,
    );
    this.streamId = streamId;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * A stream's metadata was no longer what a change expected it to be (another writer changed it
 * first); nothing of that change was stored. Read it again and decide again.
 */
export class StreamMetadataChangedError extends AnnalsError {
  readonly streamId: string;
  /** The stream's metadata when the change was checked. */
  readonly actual: JsonObject;

  constructor(streamId: string, actual: JsonObject) {
    super('STREAM_METADATA_CHANGED', `stream ${JSON.stringify(streamId)}: its metadata changed meanwhile`);
    this.streamId = streamId;
    this.actual = actual;
  }
}

/**
 * Event ids given to an append are already stored but with other content (stream, type or
 * data), or only some of them are: a retry must resend exactly the same events.
 */
export class EventIdReusedError extends AnnalsError {
  readonly streamId: string;

  constructor(streamId: string) {
    super(
      'EVENT_ID_REUSED',
      `stream ${JSON.stringify(streamId)}: event ids of this append are already stored with other content (or only some of them are)`,
    );
    this.streamId = streamId;
  }
}

/** The schema's migrations and the ones this version of Annals ships do not match. */
abstract class SchemaVersionError extends AnnalsError {
  readonly schema: string;
  /** The last migration this version of Annals knows. */
  readonly latestKnown: number;
  /** The last migration applied to the schema. */
  readonly found: number;

  constructor(code: AnnalsErrorCode, message: string, schema: string, latestKnown: number, found: number) {
    super(code, message);
    this.schema = schema;
    this.latestKnown = latestKnown;
    this.found = found;
  }
}

/** The database holds a schema migration this version of Annals does not know. */
export class SchemaTooNewError extends SchemaVersionError {
  constructor(schema: string, latestKnown: number, found: number) {
    super(
      'SCHEMA_TOO_NEW',
      `schema "${schema}" is at migration ${found}, newer than the ${latestKnown} this version of Annals knows; upgrade Annals`,
      schema,
      latestKnown,
      found,
    );
  }
}

/** The schema lacks migrations this version needs, and the store was opened with `migrate: false`. */
export class SchemaOutdatedError extends SchemaVersionError {
  constructor(schema: string, latestKnown: number, found: number) {
    super(
      'SCHEMA_OUTDATED',
      `schema "${schema}" is at migration ${found} of ${latestKnown}: run migrate() or \`annals migrate\``,
      schema,
      latestKnown,
      found,
    );
  }
}

/** The store was closed; open a new one. */
export class StoreClosedError extends AnnalsError {
  constructor() {
    super('STORE_CLOSED', 'the event store is closed');
  }
}

/** The database failed in a way Annals does not map to a more specific error. */
export class DatabaseError extends AnnalsError {
  /** PostgreSQL SQLSTATE, when the server sent one. */
  readonly sqlState: string | undefined;

  constructor(message: string, sqlState: string | undefined, cause: unknown) {
    super('DATABASE_ERROR', message, { cause });
    this.sqlState = sqlState;
  }
}

/** One problem a Standard Schema validator reported. */
export interface ValidationIssue {
  message: string;
  /** Path into the payload, e.g. `['items', 0, 'qty']`. */
  path: (string | number)[];
}

/**
 * An event's data failed its schema: at append (nothing stored) or at read (`position` names
 * the stored event).
 */
export class EventValidationError extends AnnalsError {
  readonly eventType: string;
  readonly issues: ValidationIssue[];
  /** Global position, when the event was read from the store. */
  readonly position: number | undefined;

  constructor(eventType: string, issues: ValidationIssue[], position?: number) {
    const where = position === undefined ? '' : ` at position ${position}`;
    const detail = issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
    super('INVALID_EVENT', `event ${JSON.stringify(eventType)}${where} fails its schema: ${detail}`);
    this.eventType = eventType;
    this.issues = issues;
    this.position = position;
  }
}

/** A stored event's type is not in the event registry (and pass-through is off). */
export class UnknownEventTypeError extends AnnalsError {
  readonly eventType: string;
  readonly position: number;

  constructor(eventType: string, position: number) {
    super('UNKNOWN_EVENT_TYPE', `unknown event type ${JSON.stringify(eventType)} at position ${position}`);
    this.eventType = eventType;
    this.position = position;
  }
}

/**
 * Base class for business-rule violations thrown by a decider: the command is refused and
 * nothing is appended. Subclass it per rule; `reason` is a stable, machine-readable name.
 */
export class DomainError extends AnnalsError {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super('DOMAIN_ERROR', message);
    this.reason = reason;
  }
}

/**
 * An inline projection's handler threw while applying an append: the append and the
 * projection's writes were rolled back together. `cause` is the handler's error.
 */
export class InlineProjectionError extends AnnalsError {
  readonly projection: string;

  constructor(projection: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'PROJECTION_FAILED',
      `inline projection ${JSON.stringify(projection)} failed: ${reason}; nothing was appended`,
      {
        cause,
      },
    );
    this.projection = projection;
  }
}

/** The stream has no events. */
export class StreamNotFoundError extends AnnalsError {
  readonly streamId: string;

  constructor(streamId: string) {
    super('STREAM_NOT_FOUND', `stream ${JSON.stringify(streamId)} has no events`);
    this.streamId = streamId;
  }
}

/**
 * The stream is deleted: soft-deleted (`lifecycle(store).delete`; an append with `any` or
 * `no-stream` re-opens it) or tombstoned (`tombstoned: true`, for good). A read of it without
 * `includeDeleted` answers this; so does an append with an exact expected version or
 * `stream-exists` to a soft-deleted stream, where nothing was stored.
 */
export class StreamDeletedError extends AnnalsError {
  readonly streamId: string;
  /** True when it was tombstoned: it can never be written again. */
  readonly tombstoned: boolean;

  constructor(streamId: string, tombstoned: boolean, detail = '') {
    super(
      'STREAM_DELETED',
      `stream ${JSON.stringify(streamId)} is ${tombstoned ? 'tombstoned (deleted for good)' : 'deleted'}${detail}`,
    );
    this.streamId = streamId;
    this.tombstoned = tombstoned;
  }
}

/**
 * An append (or a lifecycle change) to a tombstoned stream: it was deleted for good and
 * takes no more events. Nothing was stored.
 */
export class StreamTombstonedError extends AnnalsError {
  readonly streamId: string;

  constructor(streamId: string) {
    super('STREAM_TOMBSTONED', `stream ${JSON.stringify(streamId)} is tombstoned: it takes no more events`);
    this.streamId = streamId;
  }
}

/**
 * The stream is archived: a read without `includeArchived`, or an append (refused until
 * `lifecycle(store).unarchive`; nothing was stored).
 */
export class StreamArchivedError extends AnnalsError {
  readonly streamId: string;

  constructor(streamId: string, detail = '') {
    super('STREAM_ARCHIVED', `stream ${JSON.stringify(streamId)} is archived${detail}`);
    this.streamId = streamId;
  }
}

/**
 * A partition of the log cannot be detached (`partitions(store).detach`), or the log is not
 * partitioned: the message says why (not full, not sealed past its end, holding events still
 * visible to reads or not matching their seals, a live stream's last event, the default
 * partition, no such partition, the log busy for 2 s). Nothing changed.
 */
export class ReclaimRefusedError extends AnnalsError {
  constructor(message: string, cause?: unknown) {
    super('RECLAIM_REFUSED', message, { cause });
  }
}

/**
 * Sealing found the seals out of step with the log (a seal where no such event is stored):
 * someone wrote to `seals` directly. Sealing stops rather than chain onto forged seals; run
 * `verify` to see where.
 */
export class TamperDetectedError extends AnnalsError {
  readonly position: number;

  constructor(position: number, message: string) {
    super('TAMPER_DETECTED', message);
    this.position = position;
  }
}

/**
 * An import cannot go ahead as asked, and stored nothing of the batch at hand (an
 * {@link InvalidInputError}, code `INVALID_INPUT`): a restore into a log that is neither empty
 * nor the beginning of the same log (`not-empty`), a file whose positions leave a gap (`gap`),
 * another writer appending inside a restore (`concurrent-writer`), or a role that may not
 * write the log directly (`not-owner`: import is an operation of the schema's owner).
 */
export class ImportRefusedError extends InvalidInputError {
  readonly reason: 'not-empty' | 'gap' | 'not-owner' | 'concurrent-writer';
  /** The source line the refusal is about, when there is one. */
  readonly line: number | undefined;

  constructor(reason: ImportRefusedError['reason'], message: string, line?: number) {
    super('import', message);
    this.reason = reason;
    this.line = line;
  }
}

/**
 * A line of an import is not a valid event (not JSON, a missing or malformed field, over the
 * size limit), or cannot be stored as it is: its stream version is not the next one of its
 * stream, or its event id is already stored with other content (an {@link InvalidInputError},
 * code `INVALID_INPUT`, whose `field` is `line <n>` or `line <n>.<key>`). Nothing of the line's
 * batch was stored; batches before it were: run the import again once the line is fixed, and
 * what is stored already is skipped.
 */
export class ImportLineError extends InvalidInputError {
  /** Line number in the source, from 1. */
  readonly line: number;
  /** The key of the line at fault, when there is one. */
  readonly key: string | undefined;

  constructor(line: number, reason: string, key?: string) {
    super(key === undefined ? `line ${line}` : `line ${line}.${key}`, reason);
    this.line = line;
    this.key = key;
  }
}

function describeExpected(expected: ExpectedVersion): string {
  return typeof expected === 'number' ? String(expected) : `"${expected}"`;
}

/** Wraps a driver error in a {@link DatabaseError} unless it already is an {@link AnnalsError}. */
export function toAnnalsError(error: unknown): AnnalsError {
  if (error instanceof AnnalsError) return error;
  const sqlState = sqlStateOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseError(message, sqlState, error);
}

/** The SQLSTATE of a driver error (pg and PGlite both expose it as `code`). */
export function sqlStateOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}
