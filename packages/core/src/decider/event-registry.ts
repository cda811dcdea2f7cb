/**
 * Event schemas: validation of event data at append and at read through any Standard Schema
 * validator (zod, valibot, ArkType, ...), and upcasting of old versions on read.
 *
 * Each event type has a current version (1 unless given). Appends stamp it in the event's
 * metadata as `schemaVersion`. On read, an event stored at version v < current goes through
 * the upcasters v -> v+1 -> ... -> current, then through the schema; stored events are never
 * rewritten, and old ones never reach code written for the new shape.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { EventValidationError, InvalidInputError, UnknownEventTypeError, type ValidationIssue } from '../errors.js';
import type { JsonValue, RecordedEvent } from '../types.js';
import type { DomainEvent } from './decider.js';

/** How one event type is checked and upgraded. */
export interface EventDefinition {
  /** Validates the data of the current version. */
  schema?: StandardSchemaV1;
  /** Current version of the data's shape. @defaultValue 1 */
  version?: number;
  /** `upcasters[v]` turns data of version v into version v + 1. One for each v below `version`. */
  upcasters?: Record<number, (data: JsonValue) => JsonValue>;
}

export interface EventRegistryOptions {
  /** What reading an event of a type not defined here does. @defaultValue `'error'` */
  unknownTypes?: 'error' | 'pass-through';
}

type Upcaster = (data: JsonValue) => JsonValue;

interface ResolvedDefinition {
  schema: StandardSchemaV1 | undefined;
  version: number;
  chain: Upcaster[];
}

/** The metadata key holding an event's schema version. */
export const schemaVersionKey = 'schemaVersion';

/** A set of event definitions; see the module comment. */
export class EventRegistry {
  readonly #definitions: ReadonlyMap<string, ResolvedDefinition>;
  readonly #unknownTypes: 'error' | 'pass-through';

  constructor(definitions: Record<string, EventDefinition>, options: EventRegistryOptions = {}) {
    const map = new Map<string, ResolvedDefinition>();
    for (const [type, definition] of Object.entries(definitions)) {
      const version = definition.version ?? 1;
      if (!Number.isSafeInteger(version) || version < 1) {
        throw new InvalidInputError(`events.${type}.version`, 'must be an integer >= 1');
      }
      const chain: Upcaster[] = [];
      for (let v = 1; v < version; v++) {
        const upcaster = definition.upcasters?.[v];
        if (typeof upcaster !== 'function') {
          throw new InvalidInputError(`events.${type}.upcasters`, `needs an upcaster from version ${v} to ${v + 1}`);
        }
        chain.push(upcaster);
      }
      map.set(type, { schema: definition.schema, version, chain });
    }
    this.#definitions = map;
    this.#unknownTypes = options.unknownTypes ?? 'error';
  }

  /** Whether `type` is defined. */
  has(type: string): boolean {
    return this.#definitions.has(type);
  }

  /**
   * Checks an event about to be appended; returns its data as validated (the schema may
   * normalize it) and the metadata entry to stamp.
   * @throws {@link EventValidationError} or {@link InvalidInputError} for an unknown type.
   */
  async encode(event: DomainEvent): Promise<{ data: JsonValue; metadata: { [schemaVersionKey]: number } }> {
    const definition = this.#definitions.get(event.type);
    if (!definition) throw new InvalidInputError('type', `unknown event type ${JSON.stringify(event.type)}`);
    const data = await validate(definition.schema, event.type, event.data);
    return { data, metadata: { [schemaVersionKey]: definition.version } };
  }

  /**
   * Turns a stored event into the current shape of its type: upcast, then validated.
   * @throws {@link UnknownEventTypeError} / {@link EventValidationError}, naming the position.
   */
  async decode(event: RecordedEvent): Promise<DomainEvent> {
    const definition = this.#definitions.get(event.type);
    if (!definition) {
      if (this.#unknownTypes === 'pass-through') return { type: event.type, data: event.data };
      throw new UnknownEventTypeError(event.type, event.position);
    }
    const stored = event.metadata[schemaVersionKey] ?? 1;
    const from = typeof stored === 'number' && Number.isSafeInteger(stored) && stored >= 1 ? stored : Number.NaN;
    if (Number.isNaN(from)) {
      throw new EventValidationError(
        event.type,
        [{ message: `bad schema version ${JSON.stringify(stored)}`, path: [] }],
        event.position,
      );
    }
    if (from > definition.version) {
      throw new EventValidationError(
        event.type,
        [{ message: `stored at schema version ${from}, newer than the ${definition.version} known here`, path: [] }],
        event.position,
      );
    }
    // chain[v - 1] turns version v into v + 1.
    const data = definition.chain.slice(from - 1).reduce((d, upcast) => upcast(d), event.data);
    try {
      return { type: event.type, data: await validate(definition.schema, event.type, data, event.position) };
    } catch (error) {
      // Personal fields of a forgotten subject read as null, which the schema of their type
      // may refuse: such an event passes as it is when every failing field is a null (so also
      // after an upcaster moved a redacted field elsewhere), never for any other failure.
      if (error instanceof EventValidationError && event.redacted && onlyNulls(error.issues, data)) {
        return { type: event.type, data };
      }
      throw error;
    }
  }
}

/** Builds an {@link EventRegistry}. */
export function defineEvents(definitions: Record<string, EventDefinition>, options?: EventRegistryOptions) {
  return new EventRegistry(definitions, options);
}

function onlyNulls(issues: readonly ValidationIssue[], data: JsonValue): boolean {
  return issues.every((issue) => {
    let value: JsonValue | undefined = data;
    for (const key of issue.path) {
      if (typeof value !== 'object' || value === null) return false;
      value = (value as Record<string | number, JsonValue>)[key];
    }
    return issue.path.length > 0 && value === null;
  });
}

async function validate(
  schema: StandardSchemaV1 | undefined,
  type: string,
  data: JsonValue,
  position?: number,
): Promise<JsonValue> {
  if (!schema) return data;
  const result = await schema['~standard'].validate(data);
  if (result.issues) {
    const issues: ValidationIssue[] = result.issues.map((issue) => ({
      message: issue.message,
      path: (issue.path ?? []).map((segment) =>
        typeof segment === 'object' && segment !== null
          ? (segment.key as string | number)
          : (segment as string | number),
      ),
    }));
    throw new EventValidationError(type, issues, position);
  }
  return result.value as JsonValue;
}
