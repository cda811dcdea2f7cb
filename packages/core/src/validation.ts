/**
 * Input checks for everything a caller hands the store. They run before any SQL, so a bad
 * input throws a typed error and leaves the database untouched (DESIGN.md invariant 7).
 */
import { InvalidInputError, PayloadTooLargeError } from './errors.js';
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

type Limits = Pick<StoreOptions, 'maxEventBytes' | 'maxEventsPerAppend' | 'maxStreamIdLength'>;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// C0 and C1 control characters, including NUL which PostgreSQL text cannot hold at all.
const controlCharacter = /\p{Cc}/u;
const maxEventTypeLength = 256;
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
  if (!Array.isArray(writes) || writes.length === 0) {
    throw new InvalidInputError('writes', 'must be a non-empty array');
  }
  const streams = new Set<string>();
  const ids = new Set<string>();
  let total = 0;
  const prepared = writes.map((write: unknown, w) => {
    const field = writes.length === 1 ? '' : `writes[${w}].`;
    if (typeof write !== 'object' || write === null) throw new InvalidInputError(`writes[${w}]`, 'must be an object');
    const { streamId, events, expectedVersion } = write as StreamWrite;
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
    const preparedEvents = events.map((event: unknown, e) => prepareEvent(event, `${field}events[${e}]`, limits, ids));
    return { streamId, expected: expectedVersion ?? 'any', expectedCode, events: preparedEvents };
  });
  return prepared;
}

function prepareEvent(event: unknown, field: string, limits: Limits, ids: Set<string>): PreparedEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new InvalidInputError(field, `must be an object with type and data, got ${typeName(event)}`);
  }
  const { type, data, metadata, id } = event as Record<string, unknown>;
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
    for (const name of auditFields) {
      const value = (metadata as Record<string, unknown>)[name];
      if (value !== undefined && typeof value !== 'string') {
        throw new InvalidInputError(`${field}.metadata.${name}`, `must be a string, got ${typeName(value)}`);
      }
    }
    if (Object.hasOwn(metadata, '$personal')) {
      throw new InvalidInputError(
        `${field}.metadata.$personal`,
        'is set by the store for personal data, not by callers',
      );
    }
    metadataJson = toJson(metadata, `${field}.metadata`);
  }
  const bytes = Buffer.byteLength(dataJson) + Buffer.byteLength(metadataJson);
  if (bytes > limits.maxEventBytes) throw new PayloadTooLargeError(field, limits.maxEventBytes, bytes);
  return { id: eventId, type, data: dataJson, metadata: metadataJson };
}

/**
 * Serializes plain JSON, rejecting what `JSON.stringify` would silently change or PostgreSQL's
 * jsonb refuses: cycles, BigInt, functions, symbols, non-finite numbers, `undefined` inside
 * arrays, class instances (Date, Map...), NUL characters and lone surrogates.
 */
export function toJson(value: unknown, field: string): string {
  checkJson(value, field, new Set());
  return JSON.stringify(value);
}

function checkJson(value: unknown, field: string, ancestors: Set<object>): void {
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
  if (ancestors.has(value)) throw new InvalidInputError(field, 'contains a cycle');
  ancestors.add(value);
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      checkJson(item, `${field}[${i}]`, ancestors);
    });
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
      if (item !== undefined) checkJson(item, `${field}.${key}`, ancestors);
    }
  }
  ancestors.delete(value);
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

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  return typeName(value) === 'a number' ? String(value) : typeName(value);
}
