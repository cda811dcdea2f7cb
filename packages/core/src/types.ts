/** A JSON value as stored in a `jsonb` column. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * Who, when and why of an event. The named fields are the audit vocabulary; anything else the
 * caller adds is kept as given.
 */
export interface EventMetadata {
  /** Who caused the change: a user id, a service name. */
  actor?: string;
  /** The id shared by every event caused by one request. */
  correlationId?: string;
  /** The id of the command or event that directly caused this one. */
  causationId?: string;
  /** Why: the command name or a free-text reason. */
  reason?: string;
  [key: string]: JsonValue | undefined;
}

/** An event to append. */
export interface NewEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  /** Event type, e.g. `"AccountOpened"`. */
  type: Type;
  /** The payload; must be plain JSON (no `undefined` in arrays, no BigInt, no cycles). */
  data: Data;
  /** Audit metadata and anything else the caller wants kept beside the event. */
  metadata?: EventMetadata;
  /**
   * Unique id (a UUID). Give one to make retries idempotent; when absent a UUIDv7 is made.
   */
  id?: string;
}

/** An event as stored. */
export interface RecordedEvent<Type extends string = string, Data extends JsonValue = JsonValue> {
  /** Place in the global log: dense (1, 2, 3, ...) and in commit order. */
  position: number;
  streamId: string;
  /** Place in its stream: dense, starting at 1. */
  streamVersion: number;
  id: string;
  type: Type;
  data: Data;
  metadata: EventMetadata;
  /** When the event was stored, by the database server's clock. */
  recordedAt: Date;
  /**
   * Paths of personal fields that read as `null`: their subject was forgotten (see
   * `forgetSubject`), or their stored ciphertext does not authenticate (it was tampered
   * with; `verify` names the event). Absent when nothing was redacted.
   */
  redacted?: string[];
}

/**
 * What the stream's version must be for the append to go ahead.
 * - a number `n >= 0`: exactly `n` (0 means the stream has no event yet);
 * - `'no-stream'`: the stream has no event;
 * - `'stream-exists'`: the stream has at least one event;
 * - `'any'`: no check.
 */
export type ExpectedVersion = number | 'any' | 'no-stream' | 'stream-exists';

/** Options of a single-stream append. */
export interface AppendOptions {
  /** Defaults to `'any'`. */
  expectedVersion?: ExpectedVersion;
}

/** What an append stored, or what the original append stored when this was a retry. */
export interface AppendResult {
  streamId: string;
  /** The stream's version after the append: the version to expect next time. */
  streamVersion: number;
  /** Global positions of the appended events, in order (consecutive). */
  positions: number[];
  /** True when every event id was already stored: nothing new was written. */
  duplicate: boolean;
  /** When the events were stored, by the database server's clock. */
  recordedAt: Date;
}

/** One stream's part of a multi-stream append. */
export interface StreamWrite {
  streamId: string;
  events: NewEvent[];
  expectedVersion?: ExpectedVersion;
}

/** What is known of one stream. */
export interface StreamInfo {
  streamId: string;
  /** Last version (0 when the stream has no event). */
  version: number;
  /** Whether the stream has at least one event. */
  exists: boolean;
  /** The stream's metadata (`{}` when none was set). */
  metadata: JsonObject;
  /** When its first event was stored (null without events). */
  createdAt: Date | null;
  /** When its last event was stored (null without events). */
  lastEventAt: Date | null;
  /**
   * Its lifecycle state (`lifecycle(store)`): `active`, `deleted` (soft: re-opened by an
   * append with `any` or `no-stream`), `tombstoned` (for good) or `archived`.
   */
  state: StreamState;
  /**
   * Versions below this are hidden from default reads, by a soft delete or by retention's
   * `truncateBefore` (0: none).
   */
  truncateBefore: number;
  /** Its moving retention windows, which hide older events from reads of the stream. */
  retention: StreamRetention;
}

/**
 * A stream's retention (`lifecycle(store).setRetention`), as KurrentDB's `$maxCount` and
 * `$maxAge`: older events are hidden from reads of the stream, never removed.
 */
export interface StreamRetention {
  /** Only its last `maxCount` versions are read (null: all). */
  maxCount: number | null;
  /** Only its events recorded in the last `maxAge` seconds are read (null: all). */
  maxAge: number | null;
}

/** The lifecycle state of a stream; see `lifecycle(store)` and docs/operations.md. */
export type StreamState = 'active' | 'deleted' | 'tombstoned' | 'archived';

/** What a read shows beyond a stream's live events. */
export interface LifecycleReadOptions {
  /**
   * Also the events hidden by a delete: of a soft-deleted or tombstoned stream, and the
   * versions before a re-opened stream's re-opening. Without it, `readStream` of a deleted
   * stream throws {@link StreamDeletedError} and `readAll` skips those events.
   * @defaultValue `false`
   */
  includeDeleted?: boolean;
  /**
   * Also the events of archived streams. Without it, `readStream` of an archived stream
   * throws {@link StreamArchivedError} and `readAll` skips its events.
   * @defaultValue `false`
   */
  includeArchived?: boolean;
}

/** Options of {@link EventStore.readStream}. */
export interface ReadStreamOptions extends LifecycleReadOptions {
  /** `'forward'` (default) from version 1 up, or `'backward'` from the last version down. */
  direction?: 'forward' | 'backward';
  /** First version to return (inclusive). Defaults to 1 forward, the last version backward. */
  fromVersion?: number;
  /** Most events to return in all. Defaults to no limit. */
  limit?: number;
  /** Rows fetched per round trip. Defaults to the store's `pageSize`. */
  pageSize?: number;
}

/** Options of {@link EventStore.readAll}. */
export interface ReadAllOptions extends LifecycleReadOptions {
  /** Return events after this position (exclusive): a checkpoint. Defaults to 0, the start. */
  after?: number;
  /** Only events of streams in these categories (the stream id up to its first `-`). */
  categories?: string[];
  /** Only events of these types. */
  eventTypes?: string[];
  /** Only events of these streams (for one stream, `readStream` is faster). */
  streamIds?: string[];
  /** Most events to return in all. Defaults to no limit. */
  limit?: number;
  /** Rows fetched per round trip. Defaults to the store's `pageSize`. */
  pageSize?: number;
}

/** A transaction that holds the log lock: appends wait for it, readers see up to before it. */
export interface LogHolder {
  /** Backend process id (`pg_terminate_backend(pid)` ends it). */
  pid: number;
  /** When its transaction began. */
  transactionStartedAt: Date | null;
  /** How long its transaction has been open: an upper bound on how long it has held the log. */
  openForMs: number;
  /** `active`, `idle in transaction`, ... as in `pg_stat_activity`. */
  state: string | null;
  /** Last statement it ran. */
  query: string | null;
  applicationName: string | null;
  /** Backends waiting for it. */
  waiting: number;
}
