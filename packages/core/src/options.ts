import { InvalidInputError } from './errors.js';

/** Limits and tuning of an event store. Every field has a default; see {@link defaultStoreOptions}. */
export interface StoreOptions {
  /**
   * PostgreSQL schema holding the store's tables. Lower-case letters, digits and `_`.
   * @defaultValue `'annals'`
   */
  schema: string;
  /**
   * Apply pending migrations when the store opens. Set `false` in production and run
   * `migrate()` (or `annals migrate`) as a deploy step instead.
   * @defaultValue `true`
   */
  migrate: boolean;
  /**
   * Most bytes of one event: its data and metadata as UTF-8 JSON.
   * @defaultValue 1 MiB
   */
  maxEventBytes: number;
  /** @defaultValue 10 000 */
  maxEventsPerAppend: number;
  /**
   * Most bytes of one append as a whole (every event's data and metadata as UTF-8 JSON), and
   * of one coalesced database call (a single larger append still goes alone). An append is
   * one statement; past a few hundred MB the driver cannot even build it.
   * @defaultValue 64 MiB, or `maxEventBytes` when that is larger
   */
  maxAppendBytes: number;
  /** Longest stream id, in characters. @defaultValue 256 */
  maxStreamIdLength: number;
  /** Rows read per round trip by `readStream` and `readAll`. @defaultValue 1000 */
  pageSize: number;
  /**
   * Concurrent appends are coalesced into one database call of at most this many events
   * (a single larger append still goes alone).
   * @defaultValue 2000
   */
  batchMaxEvents: number;
  /**
   * Coalesced append calls in flight at once. Each call holds a connection; calls queue on
   * the log lock, so a second one only overlaps its round trip with the first one's commit.
   * @defaultValue 2 (1 on a backend without concurrent connections)
   */
  appendConcurrency: number;
  /**
   * Longest time the inline projections of one append batch may take. They run inside the
   * append's transaction, while it holds the log lock that every other append waits for, so
   * a slow handler would stall every writer: past this budget the batch is rolled back and
   * its appends fail with `PROJECTION_FAILED` (each statement of a handler is also cut off
   * by a `statement_timeout` of the same length). Keep handlers to a few set-based
   * statements; anything slower belongs in an async projection.
   * @defaultValue 1000
   */
  inlineProjectionTimeoutMs: number;
}

/** The defaults of {@link StoreOptions}. */
export const defaultStoreOptions: Readonly<StoreOptions> = Object.freeze({
  schema: 'annals',
  migrate: true,
  maxEventBytes: 1024 * 1024,
  maxEventsPerAppend: 10_000,
  maxAppendBytes: 64 * 1024 * 1024,
  maxStreamIdLength: 256,
  pageSize: 1000,
  batchMaxEvents: 2000,
  appendConcurrency: 2,
  inlineProjectionTimeoutMs: 1000,
});

const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name: it is spliced into SQL as an identifier, so it must be plain. */
export function assertSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !schemaPattern.test(schema)) {
    throw new InvalidInputError(
      'schema',
      `must be 1-63 lower-case letters, digits or "_", not starting with a digit; got ${JSON.stringify(schema)}`,
    );
  }
}

/** Merges given options over the defaults and checks each one. */
export function resolveStoreOptions(given: Partial<StoreOptions> = {}): StoreOptions {
  const options: StoreOptions = { ...defaultStoreOptions };
  const entries = guardedEntries(given);
  for (const [key, value] of entries) {
    if (value !== undefined) (options as unknown as Record<string, unknown>)[key] = value;
  }
  if (!entries.some(([key, value]) => key === 'maxAppendBytes' && value !== undefined)) {
    const maxEventBytes = options.maxEventBytes;
    if (typeof maxEventBytes === 'number' && maxEventBytes > options.maxAppendBytes) {
      options.maxAppendBytes = maxEventBytes;
    }
  }
  assertSchemaName(options.schema);
  if (typeof options.migrate !== 'boolean') throw new InvalidInputError('migrate', 'must be a boolean');
  for (const key of [
    'maxEventBytes',
    'maxEventsPerAppend',
    'maxAppendBytes',
    'maxStreamIdLength',
    'pageSize',
    'batchMaxEvents',
    'appendConcurrency',
    'inlineProjectionTimeoutMs',
  ] as const) {
    const value = options[key];
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new InvalidInputError(key, `must be a positive integer; got ${String(value)}`);
    }
  }
  // Node's timers hold at most 2^31 - 1 ms; a longer one fires at once.
  if (options.inlineProjectionTimeoutMs > 2_147_483_647) {
    throw new InvalidInputError('inlineProjectionTimeoutMs', 'must be at most 2147483647 (about 24 days)');
  }
  // jsonb holds at most 255 MiB, and one statement's text is a JavaScript string.
  for (const key of ['maxEventBytes', 'maxAppendBytes'] as const) {
    if (options[key] > maxStatementBytes) {
      throw new InvalidInputError(key, `must be at most ${maxStatementBytes} (256 MiB); got ${options[key]}`);
    }
  }
  if (options.maxAppendBytes < options.maxEventBytes) {
    throw new InvalidInputError('maxAppendBytes', `must be at least maxEventBytes (${options.maxEventBytes})`);
  }
  return options;
}

const maxStatementBytes = 256 * 1024 * 1024;

function guardedEntries(given: unknown): [string, unknown][] {
  if (typeof given !== 'object' || given === null) throw new InvalidInputError('options', 'must be an object');
  try {
    return Object.entries(given);
  } catch (error) {
    throw new InvalidInputError('options', `could not be read: ${error instanceof Error ? error.message : 'error'}`);
  }
}
