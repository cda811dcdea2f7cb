/**
 * Input checks for everything a caller hands the store. They run before any SQL, so a bad
 * input throws a typed error and leaves the database untouched (DESIGN.md invariant 7).
 */
import { AnnalsError, InvalidInputError, PayloadTooLargeError } from './errors.js';
import { newEventId } from './event-id.js';
import { expectedVersionCode } from './expected-version.js';
import type { StoreOptions } from './options.js';
import type { EventMetadata, ExpectedVersion, JsonValue, StreamWrite } from './types.js';

/** A write checked and ready for the append SQL: ids made, payloads serialized. */
export interface PreparedWrite {
  streamId: string;
  expected: ExpectedVersion;
  /** The expected version as the SQL function takes it (see expected-version.ts). */
  expectedCode: number;
  events: PreparedEvent[];
  /** UTF-8 bytes of the events' data and metadata as JSON, summed (set by {@link prepareWrites}). */
  bytes?: number;
}

export interface PreparedEvent {
  id: string;
  type: string;
  /** JSON text of the data. */
  data: string;
  /** JSON text of the metadata. */
  metadata: string;
  /** Set when the event holds personal data: whose, which fields, and the parsed payload. */
  personal?: { subject: string; fields: string[]; data: JsonValue; metadata: EventMetadata };
}

type Limits = Pick<StoreOptions, 'maxEventBytes' | 'maxEventsPerAppend' | 'maxStreamIdLength'> &
  Partial<Pick<StoreOptions, 'maxAppendBytes'>>;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// C0 and C1 control characters, including NUL which PostgreSQL text cannot hold at all.
const controlCharacter = /\p{Cc}/u;
// Names made only of white space or of characters that render as nothing (zero-width space,
// joiners, soft hyphen, variation selectors...) look empty: refused like the empty name.
const invisibleOnly = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}]+$/u;
const maxEventTypeLength = 256;
/**
 * Deepest nesting of arrays and objects in a JSON payload. JSON itself has no limit, but
 * JavaScript's recursion and PostgreSQL's parser (its stack depth) do, at different depths.
 */
export const maxJsonDepth = 512;
const auditFields = ['actor', 'correlationId', 'causationId', 'reason'] as const;

/** Checks a stream id: a non-empty string of printable characters within the length limit. */
export function assertStreamId(value: unknown, field: string, maxLength: number): asserts value is string {
  assertName(value, field, maxLength);
}

function assertName(value: unknown, field: string, maxLength: number): asserts value is string {
  if (typeof value !== 'string') throw new InvalidInputError(field, `must be a string, got ${typeName(value)}`);
  if (value.length === 0) throw new InvalidInputError(field, 'must not be empty');
  if (value.length > maxLength) {
    throw new InvalidInputError(field, `must be at most ${maxLength} characters, got ${value.length}`);
  }
  if (controlCharacter.test(value)) throw new InvalidInputError(field, 'must not contain control characters');
  if (!value.isWellFormed()) throw new InvalidInputError(field, 'must be well-formed Unicode (a lone surrogate)');
  if (invisibleOnly.test(value)) {
    throw new InvalidInputError(field, 'must contain a visible character (not only white space or zero-width ones)');
  }
}

/**
 * Reads an options argument into a plain object of its own enumerable properties, once:
 * `undefined` is `{}`; anything but an object is refused, and so is an object whose reading
 * throws (a getter, a Proxy trap), with the trap's error as the reason. Later checks and the
 * SQL then see the same values.
 */
export function readOptions<T extends object>(value: unknown, field: string): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(field, `must be an object, got ${typeName(value)}`);
  }
  return guarded(field, () => ({ ...value }) as Partial<T>);
}

/**
 * Runs `read` (code that reads a caller's values), turning anything it throws other than an
 * {@link AnnalsError} — a getter's or Proxy trap's own error, a RangeError of deep recursion —
 * into an {@link InvalidInputError} for `field`.
 */
export function guarded<T>(field: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof AnnalsError) throw error;
    throw new InvalidInputError(field, `could not be read: ${thrownMessage(error)}`);
  }
}

function thrownMessage(error: unknown): string {
  try {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return message.length > 200 ? `${message.slice(0, 200)}...` : message;
  } catch {
    return 'an error that cannot be described';
  }
}

/** Checks a duration option in milliseconds: an integer from `min` to 2^31 - 1 (Node's timers hold no more). */
export function assertDuration(value: unknown, field: string, min = 1): asserts value is number {
  assertInteger(value, field, min);
  if (value > maxTimerMs) {
    throw new InvalidInputError(field, `must be at most ${maxTimerMs} ms (about 24.8 days), got ${value}`);
  }
}

/** Longest delay a Node timer holds; a longer one fires at once. */
export const maxTimerMs = 2_147_483_647;

// PostgreSQL's timestamptz holds 4713 BC to 294276 AD, a JavaScript Date +-275760 years: no
// event is recorded outside years 1..9999, so a time outside them answers like its bound.
const earliestTime = Date.parse('0001-01-01T00:00:00.000Z');
const latestTime = Date.parse('9999-12-31T23:59:59.999Z');

/** Checks a time argument: a valid Date. */
export function assertTime(value: unknown, field: string): asserts value is Date {
  sqlTime(value, field);
}

/**
 * Checks a time argument (a valid Date) and returns it as ISO text for SQL, moved into years
 * 1..9999 (an earlier time answers like the first instant of year 1, a later one like the last
 * of 9999): no event is recorded outside them, and PostgreSQL's range and its drivers' date
 * handling differ at the far ends.
 */
export function sqlTime(value: unknown, field: string): string {
  if (!(value instanceof Date)) throw new InvalidInputError(field, `must be a Date, got ${typeName(value)}`);
  const ms = guarded(field, () => Date.prototype.getTime.call(value));
  if (Number.isNaN(ms)) throw new InvalidInputError(field, 'must be a valid Date (this one is Invalid Date)');
  return new Date(Math.min(Math.max(ms, earliestTime), latestTime)).toISOString();
}

/** Checks an event id: a UUID string. */
export function assertEventId(value: unknown, field: string): asserts value is string {
  if (typeof value !== 'string' || !uuidPattern.test(value)) {
    throw new InvalidInputError(field, `must be a UUID, got ${describe(value)}`);
  }
}

/** Checks a version or position argument: a safe integer >= `min`. */
export function assertInteger(value: unknown, field: string, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidInputError(field, `must be a safe integer, got ${describe(value)}`);
  }
  if (value < min) throw new InvalidInputError(field, `must be >= ${min}, got ${value}`);
}

/** Encodes an expected version for the SQL function, rejecting anything unknown. */
export function encodeExpectedVersion(value: unknown, field: string): number {
  if (value === undefined) return expectedVersionCode.any;
  if (value === 'any' || value === 'no-stream' || value === 'stream-exists') return expectedVersionCode[value];
  if (typeof value === 'number') {
    assertInteger(value, field, 0);
    return value;
  }
  throw new InvalidInputError(
    field,
    `must be a version (integer >= 0), "any", "no-stream" or "stream-exists"; got ${describe(value)}`,
  );
}

/** Checks and prepares the writes of one append (one or more streams, all or nothing). */
export function prepareWrites(writes: unknown, limits: Limits): PreparedWrite[] {
  return guarded('writes', () => prepareGivenWrites(writes, limits));
}

function prepareGivenWrites(writes: unknown, limits: Limits): PreparedWrite[] {
  if (!Array.isArray(writes) || writes.length === 0) {
    throw new InvalidInputError('writes', 'must be a non-empty array');
  }
  const streams = new Set<string>();
  const ids = new Set<string>();
  let total = 0;
  let totalBytes = 0;
  const maxAppendBytes = limits.maxAppendBytes ?? Number.POSITIVE_INFINITY;
  const prepared = Array.from(writes, (write: unknown, w): PreparedWrite => {
    const field = writes.length === 1 ? '' : `writes[${w}].`;
    if (typeof write !== 'object' || write === null) throw new InvalidInputError(`writes[${w}]`, 'must be an object');
    const { streamId, events, expectedVersion } = guarded(`writes[${w}]`, () => ({ ...(write as StreamWrite) }));
    assertStreamId(streamId, `${field}streamId`, limits.maxStreamIdLength);
    if (streams.has(streamId)) {
      throw new InvalidInputError(`${field}streamId`, `stream ${JSON.stringify(streamId)} appears twice in one append`);
    }
    streams.add(streamId);
    const expectedCode = encodeExpectedVersion(expectedVersion, `${field}expectedVersion`);
    if (!Array.isArray(events) || events.length === 0) {
      throw new InvalidInputError(`${field}events`, 'must be a non-empty array');
    }
    total += events.length;
    if (total > limits.maxEventsPerAppend) {
      throw new PayloadTooLargeError(`${field}events`, limits.maxEventsPerAppend, total, 'events');
    }
    let bytes = 0;
    const preparedEvents = Array.from(events, (event: unknown, e) => {
      if (!(e in events)) throw new InvalidInputError(`${field}events[${e}]`, 'is missing (a hole in the array)');
      const preparedEvent = guarded(`${field}events[${e}]`, () =>
        prepareEvent(event, `${field}events[${e}]`, limits, ids),
      );
      bytes += preparedEvent.bytes;
      totalBytes += preparedEvent.bytes;
      // Each event is under maxEventBytes, but the append as a whole is one statement.
      if (totalBytes > maxAppendBytes) throw new PayloadTooLargeError('events', maxAppendBytes, totalBytes);
      return preparedEvent.event;
    });
    return { streamId, expected: expectedVersion ?? 'any', expectedCode, events: preparedEvents, bytes };
  });
  return prepared;
}

function prepareEvent(
  event: unknown,
  field: string,
  limits: Limits,
  ids: Set<string>,
): { event: PreparedEvent; bytes: number } {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new InvalidInputError(field, `must be an object with type and data, got ${typeName(event)}`);
  }
  const { type, data, metadata, id } = { ...(event as Record<string, unknown>) };
  assertName(type, `${field}.type`, maxEventTypeLength);
  let eventId: string;
  if (id === undefined) {
    eventId = newEventId();
  } else {
    assertEventId(id, `${field}.id`);
    eventId = id.toLowerCase();
  }
  if (ids.has(eventId)) throw new InvalidInputError(`${field}.id`, `event id ${eventId} appears twice in one append`);
  ids.add(eventId);
  if (data === undefined) throw new InvalidInputError(`${field}.data`, 'is required (use null for no data)');
  const dataJson = toJson(data, `${field}.data`);
  let metadataJson = '{}';
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidInputError(`${field}.metadata`, `must be an object, got ${typeName(metadata)}`);
    }
    metadataJson = toJson(metadata, `${field}.metadata`);
    // The audit fields are checked on what is sent: the text, parsed back (a getter or toJSON
    // may answer otherwise than when it was first read).
    const sent: unknown = JSON.parse(metadataJson);
    if (typeof sent !== 'object' || sent === null || Array.isArray(sent)) {
      throw new InvalidInputError(`${field}.metadata`, `must serialize to a JSON object, got ${typeName(sent)}`);
    }
    for (const name of auditFields) {
      const value = (sent as Record<string, unknown>)[name];
      if (value !== undefined && typeof value !== 'string') {
        throw new InvalidInputError(`${field}.metadata.${name}`, `must be a string, got ${typeName(value)}`);
      }
    }
    if (Object.hasOwn(sent, '$personal')) {
      throw new InvalidInputError(
        `${field}.metadata.$personal`,
        'is set by the store for personal data, not by callers',
      );
    }
  }
  const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson);
  if (bytes > limits.maxEventBytes) throw new PayloadTooLargeError(field, limits.maxEventBytes, bytes);
  return { event: { id: eventId, type, data: dataJson, metadata: metadataJson }, bytes };
}

/**
 * Serializes plain JSON, rejecting what `JSON.stringify` would silently change or PostgreSQL's
 * jsonb refuses: cycles, BigInt, functions, symbols, non-finite numbers, `undefined` inside
 * arrays and holes in them, class instances (Date, Map...), NUL characters, lone surrogates and
 * nesting deeper than {@link maxJsonDepth}. `-0` is stored as `0` (JSON has one zero) and an
 * `undefined` property is left out, as `JSON.stringify` does.
 *
 * The value is serialized once and that text is checked and returned, so what is sent is what
 * was checked, whatever a getter, a `toJSON` or a Proxy answers on a second reading. Anything
 * the caller's value throws while being read becomes an {@link InvalidInputError}.
 */
export function toJson(value: unknown, field: string): string {
  const text: unknown = guarded(field, () => {
    checkJson(value, field, new Set(), 0);
    return JSON.stringify(value);
  });
  if (typeof text !== 'string') throw new InvalidInputError(field, 'serializes to nothing (undefined), not JSON');
  checkJsonText(text, field);
  return text;
}

function checkJson(value: unknown, field: string, ancestors: Set<object>, depth: number): void {
  switch (typeof value) {
    case 'string':
      checkText(value, field);
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidInputError(field, `${value} is not representable in JSON`);
      return;
    case 'object':
      break;
    default:
      throw new InvalidInputError(field, `a ${typeof value} is not representable in JSON`);
  }
  if (value === null) return;
  if (depth >= maxJsonDepth) throw new InvalidInputError(field, `nests deeper than ${maxJsonDepth} levels`);
  if (ancestors.has(value)) throw new InvalidInputError(field, 'contains a cycle');
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      // A hole would be stored as null, like undefined: both are refused.
      if (!(i in value)) throw new InvalidInputError(`${field}[${i}]`, 'is a hole in the array (not JSON)');
      checkJson(value[i], `${field}[${i}]`, ancestors, depth + 1);
    }
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new InvalidInputError(
        field,
        `must be plain JSON; a ${proto?.constructor?.name ?? 'class instance'} is not (convert it first)`,
      );
    }
    for (const [key, item] of Object.entries(value)) {
      checkText(key, `${field} key ${JSON.stringify(key)}`);
      // An undefined property is dropped by JSON, as callers expect of optional fields.
      if (item !== undefined) checkJson(item, `${field}.${key}`, ancestors, depth + 1);
    }
  }
  ancestors.delete(value);
}

/**
 * Checks JSON text as `JSON.stringify` wrote it: no `\u0000` escape (jsonb cannot hold NUL),
 * no escaped surrogate (`JSON.stringify` writes pairs as they are and escapes only lone
 * ones), and no nesting deeper than {@link maxJsonDepth}. Linear in the text; the common
 * payload (no `\u`, shorter than the depth limit) costs one search.
 */
function checkJsonText(text: string, field: string): void {
  if (text.includes('\\u')) {
    for (const match of text.matchAll(/(\\+)u([0-9a-fA-F]{4})/g)) {
      // An even run of backslashes is escaped backslashes, then a plain "u".
      if ((match[1] as string).length % 2 === 0) continue;
      const code = Number.parseInt(match[2] as string, 16);
      if (code === 0) throw new InvalidInputError(field, 'contains a NUL character, which jsonb cannot store');
      if (code >= 0xd800 && code <= 0xdfff) {
        throw new InvalidInputError(field, 'is not well-formed Unicode (a lone surrogate)');
      }
    }
  }
  if (text.length > maxJsonDepth) {
    let depth = 0;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (inString) {
        if (c === 0x5c) i++;
        else if (c === 0x22) inString = false;
      } else if (c === 0x22) inString = true;
      else if (c === 0x5b || c === 0x7b) {
        if (++depth > maxJsonDepth) throw new InvalidInputError(field, `nests deeper than ${maxJsonDepth} levels`);
      } else if (c === 0x5d || c === 0x7d) depth--;
    }
  }
}

function checkText(text: string, field: string): void {
  if (text.includes('\u0000')) throw new InvalidInputError(field, 'contains a NUL character, which jsonb cannot store');
  if (!text.isWellFormed()) throw new InvalidInputError(field, 'is not well-formed Unicode (a lone surrogate)');
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** A caller's value in an error message: short, and safe for any value (deep, cyclic, hostile). */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  return typeName(value) === 'a number' ? String(value) : typeName(value);
}
