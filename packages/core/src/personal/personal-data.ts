/**
 * Personal data: which fields of which events are personal, encrypting them on the way in
 * and decrypting (or redacting) them on the way out.
 *
 * Writing: for each event whose type the policy names, the store finds its subject, fetches
 * or creates the subject's key (one query per append batch), replaces each personal field
 * present by its {@link Envelope} and records `{ subject, fields }` under the metadata key
 * `$personal`. Reading: every read path (store/event-reads.ts) reveals events through {@link revealEvents},
 * which needs no policy — the metadata says what to decrypt — so a process without the policy
 * (the CLI, another service) still reads personal fields while the key exists, and reads them
 * as `null`, listed in `event.redacted`, once the subject is forgotten.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InvalidInputError, PayloadTooLargeError } from '../errors.js';
import { keysFor, readKeys } from '../queries/subject-keys.js';
import type { EventMetadata, JsonObject, JsonValue, RecordedEvent } from '../types.js';
import type { PreparedWrite } from '../validation.js';
import { assertStreamId } from '../validation.js';
import { decryptValue, deriveKeys, encryptValue, type FieldKeys, fieldContext, isEnvelope } from './cipher.js';

/** The metadata key under which an event names its subject and encrypted fields. */
const personalKey = '$personal';

/** The stream recording a subject's erasure. */
export const subjectStream = (subjectId: string): string => `$subject-${subjectId}`;

/** Longest subject id (its erasure record lives in the stream `$subject-<id>`). */
export const maxSubjectLength = 200;

/** The personal fields of one event type. */
export interface PersonalFields {
  /**
   * Whose data it is: the path of a string field of the data (e.g. `'customerId'`, never a
   * personal field itself), or a function of the event.
   */
  subject: string | ((event: { type: string; data: JsonValue; metadata: EventMetadata }) => string);
  /** Paths of the personal fields in the data: `'email'`, `'address.street'`. Absent ones are skipped. */
  fields: string[];
}

/** Personal fields per event type. */
export type PersonalDataPolicy = Record<string, PersonalFields>;

/** What the metadata of an event with personal data holds under {@link personalKey}. */
interface PersonalMarker {
  subject: string;
  fields: string[];
}

interface CompiledFields {
  subject: (event: { type: string; data: JsonValue; metadata: EventMetadata }) => unknown;
  fields: string[];
}

/** A policy checked and ready: per event type, how to find the subject and which fields. */
export type CompiledPolicy = Map<string, CompiledFields>;

/** Checks a policy and turns paths into functions; throws {@link InvalidInputError}. */
export function compilePolicy(policy: unknown): CompiledPolicy {
  const compiled = new Map<string, CompiledFields>();
  if (policy === undefined) return compiled;
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new InvalidInputError('personalData', 'must be an object of event type to { subject, fields }');
  }
  for (const [type, entry] of Object.entries(policy)) {
    const field = `personalData.${type}`;
    if (typeof entry !== 'object' || entry === null) throw new InvalidInputError(field, 'must be { subject, fields }');
    const { subject, fields } = entry as PersonalFields;
    if (!Array.isArray(fields) || fields.length === 0) {
      throw new InvalidInputError(`${field}.fields`, 'must be a non-empty array of paths');
    }
    fields.forEach((path, i) => {
      assertPath(path, `${field}.fields[${i}]`);
    });
    if (typeof subject === 'string') {
      assertPath(subject, `${field}.subject`);
      if (fields.includes(subject)) throw new InvalidInputError(`${field}.subject`, 'must not be a personal field');
      compiled.set(type, { subject: (event) => getPath(event.data, subject), fields: [...fields] });
    } else if (typeof subject === 'function') {
      compiled.set(type, { subject, fields: [...fields] });
    } else {
      throw new InvalidInputError(`${field}.subject`, 'must be a path or a function');
    }
  }
  return compiled;
}

function assertPath(path: unknown, field: string): asserts path is string {
  if (typeof path !== 'string' || !/^[^.]+(\.[^.]+)*$/.test(path)) {
    throw new InvalidInputError(field, `must be a dotted path such as "address.street", got ${JSON.stringify(path)}`);
  }
}

function getPath(data: JsonValue, path: string): JsonValue | undefined {
  let value: JsonValue | undefined = data;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, key)) {
      return undefined;
    }
    value = value[key];
  }
  return value;
}

function setPath(data: JsonValue, path: string, value: JsonValue): void {
  const keys = path.split('.');
  let target = data as JsonObject;
  for (const key of keys.slice(0, -1)) target = target[key] as JsonObject;
  target[keys.at(-1) as string] = value;
}

/**
 * Finds the events of one append that hold personal data and checks their subjects (before
 * anything reaches the database: a bad subject fails this append alone). Marks each such
 * event with what {@link protectWrites} needs later.
 */
export function planPersonalData(
  policy: CompiledPolicy,
  writes: readonly PreparedWrite[],
  maxEventBytes: number,
): void {
  writes.forEach((write, w) => {
    write.events.forEach((event, e) => {
      const entry = policy.get(event.type);
      if (!entry) return;
      const data = JSON.parse(event.data) as JsonValue;
      const metadata = JSON.parse(event.metadata) as EventMetadata;
      const fields = entry.fields.filter((path) => getPath(data, path) !== undefined);
      if (fields.length === 0) return;
      const subject = entry.subject({ type: event.type, data, metadata });
      const where = `${writes.length > 1 ? `writes[${w}].` : ''}events[${e}]`;
      assertStreamId(subject, `${where} subject of ${event.type}`, maxSubjectLength);
      // The size as stored: each field becomes an envelope of a known length.
      const sized = structuredClone(data);
      for (const path of fields) {
        const plain = Buffer.byteLength(JSON.stringify(getPath(sized, path)));
        setPath(sized, path, { $encrypted: `v1.${'x'.repeat(Math.ceil(((12 + plain + 16) * 4) / 3))}` });
      }
      const marker: PersonalMarker = { subject, fields };
      const bytes =
        Buffer.byteLength(JSON.stringify(sized)) +
        Buffer.byteLength(JSON.stringify({ ...metadata, [personalKey]: marker }));
      if (bytes > maxEventBytes) throw new PayloadTooLargeError(`${where} encrypted`, maxEventBytes, bytes);
      event.personal = { subject, fields, data, metadata };
    });
  });
}

/** Whether any event of a batch holds personal data (marked by {@link planPersonalData}). */
export function holdsPersonalData(appends: readonly (readonly PreparedWrite[])[]): boolean {
  return appends.some((writes) => writes.some((write) => write.events.some((event) => event.personal)));
}

/**
 * The writes with the personal fields of their events encrypted (new objects; the given ones
 * are untouched, for inline projections to see the plain values). Runs in the append's
 * transaction: the keys stay locked until it commits (see `keysFor`).
 */
export async function protectWrites(
  tx: SqlQueryable,
  schema: string,
  appends: readonly (readonly PreparedWrite[])[],
): Promise<PreparedWrite[][]> {
  const holdings = appends.flatMap((writes) =>
    writes.flatMap((write) =>
      write.events.flatMap((event) =>
        event.personal ? [{ subject: event.personal.subject, streamId: write.streamId }] : [],
      ),
    ),
  );
  const keys = await keysFor(tx, schema, holdings);
  const derived = new Map<string, FieldKeys>();
  const keysOf = (subject: string): FieldKeys => {
    let fieldKeys = derived.get(subject);
    if (!fieldKeys) {
      fieldKeys = deriveKeys(keys.get(subject) as Buffer);
      derived.set(subject, fieldKeys);
    }
    return fieldKeys;
  };
  return appends.map((writes) =>
    writes.map((write) => ({
      ...write,
      events: write.events.map((event) => {
        const personal = event.personal;
        if (!personal) return event;
        const data = structuredClone(personal.data);
        for (const path of personal.fields) {
          const context = fieldContext(personal.subject, event.id, path);
          setPath(
            data,
            path,
            encryptValue(keysOf(personal.subject), context, getPath(data, path) as JsonValue) as never,
          );
        }
        const marker: PersonalMarker = { subject: personal.subject, fields: personal.fields };
        const { personal: _, ...stored } = event;
        return {
          ...stored,
          data: JSON.stringify(data),
          metadata: JSON.stringify({ ...personal.metadata, [personalKey]: marker }),
        };
      }),
    })),
  );
}

function markerOf(event: RecordedEvent): PersonalMarker | undefined {
  const marker = event.metadata[personalKey] as Partial<PersonalMarker> | undefined;
  if (typeof marker !== 'object' || marker === null) return undefined;
  if (typeof marker.subject !== 'string' || !Array.isArray(marker.fields)) return undefined;
  return marker as PersonalMarker;
}

/**
 * Decrypts the personal fields of `events` in place, one key look-up per call (none when no
 * event has personal data). A field whose key is gone (or whose ciphertext does not
 * authenticate) reads as `null` and is listed in `event.redacted`.
 */
export async function revealEvents(
  db: SqlQueryable,
  schema: string,
  events: RecordedEvent[],
): Promise<RecordedEvent[]> {
  const subjects = new Set<string>();
  for (const event of events) {
    const marker = markerOf(event);
    if (marker) subjects.add(marker.subject);
  }
  if (subjects.size === 0) return events;
  const keys = await readKeys(db, schema, [...subjects]);
  const derived = new Map<string, FieldKeys>();
  for (const event of events) {
    const marker = markerOf(event);
    if (!marker) continue;
    const key = keys.get(marker.subject);
    let fieldKeys = derived.get(marker.subject);
    if (key && !fieldKeys) {
      fieldKeys = deriveKeys(key);
      derived.set(marker.subject, fieldKeys);
    }
    for (const path of marker.fields) {
      if (typeof path !== 'string') continue;
      const stored = getPath(event.data, path);
      if (!isEnvelope(stored)) continue;
      const value = fieldKeys
        ? decryptValue(fieldKeys, fieldContext(marker.subject, event.id, path), stored)
        : undefined;
      setPath(event.data, path, value ?? null);
      if (value === undefined) event.redacted = [...(event.redacted ?? []), path];
    }
  }
  return events;
}
