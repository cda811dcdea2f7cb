/**
 * The event store itself: appends, reads of streams and of the global log, stream heads and
 * metadata, the log's head and its position at a time, who holds the log, and close. Every
 * other capability is a facet over a store — `subscriptions(store)`, `projections(store)`,
 * `snapshots(store)`, `integrity(store)`, `personalData(store)`, `auditTrail(store)`,
 * `timeTravel(store, decider)`, `commandHandler(store, decider)` — so this object stays small
 * and this module imports none of them.
 */

import { type AppendCoordinatorOptions, resolveCoordinatorOptions } from '../coordinator/append-coordinator.js';
import { assertMigrated, migrate } from '../db/migrate.js';
import type { SqlClient } from '../db/sql-client.js';
import { InvalidInputError, toAnnalsError } from '../errors.js';
import { resolveStoreOptions, type StoreOptions } from '../options.js';
import { compilePolicy, type PersonalDataPolicy } from '../personal/personal-data.js';
import { checkProjection, type Projection } from '../projections/projection.js';
import { lifecycleStream } from '../queries/lifecycle.js';
import { readLogHolders } from '../queries/log-holders.js';
import { readHeadPosition, readPositionAt } from '../queries/read-all.js';
import { readStreamInfo, writeStreamMetadata } from '../queries/streams.js';
import { inSpan, withTraceContext } from '../tracing.js';
import type {
  AppendOptions,
  AppendResult,
  JsonObject,
  LogHolder,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamInfo,
  StreamWrite,
} from '../types.js';
import {
  assertEventId,
  assertInteger,
  assertStreamId,
  describe,
  guarded,
  readOptions,
  sqlTime,
  toJson,
} from '../validation.js';
import { AppendPipeline } from './append-pipeline.js';
import { type ReadAllFilter, readAllEvents, readEvent, readStreamEvents } from './event-reads.js';
import type { StoreInstrumentation } from './instrumentation.js';
import { paged } from './paging.js';
import { bindStoreContext, createStoreContext, type StoreContext } from './store-context.js';

function assertFlag(value: unknown, field: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw new InvalidInputError(field, `must be a boolean, got ${describe(value)}`);
}

/** Options of {@link openEventStore}. */
export interface OpenEventStoreOptions extends Partial<StoreOptions> {
  /** The database: `createPostgresClient(...)` or `createPgliteClient(...)`. */
  client: SqlClient;
  /** Close `client` when the store closes. @defaultValue `true` */
  closeClient?: boolean;
  /**
   * Projections applied inside each append's transaction: a read of the read model right
   * after `append` resolves sees the append (read-your-writes). A handler that throws, or
   * that takes longer than `inlineProjectionTimeoutMs`, fails the append with
   * {@link InlineProjectionError}, and nothing is stored. They run while the append holds
   * the log lock, so their time is every writer's time: keep them to a few set-based
   * statements. Added to a store with history, an inline projection sees only new appends:
   * build the past with `projections(store).rebuild` first.
   */
  inlineProjections?: Projection[];
  /**
   * Which fields of which event types are personal data: they are stored encrypted with a
   * key of their subject, and read as `null` once `personalData(store).forget` deleted it.
   * Reads need no policy (events say what they hold), only appends do.
   *
   * @example
   * ```ts
   * import { createPostgresClient, openEventStore } from '@annals/core';
   *
   * const store = await openEventStore({
   *   client: createPostgresClient({ connectionString: 'postgres://localhost/app' }),
   *   personalData: { CustomerRegistered: { subject: 'customerId', fields: ['name', 'email'] } },
   * });
   * ```
   */
  personalData?: PersonalDataPolicy;
  /** Hooks for metrics: told of every append and every coalesced database call. */
  instrumentation?: StoreInstrumentation;
  /**
   * Share append transactions with the other processes of this log (docs/ordering.md,
   * "Appends from many processes"). Every process opened with it is a candidate; one at a
   * time holds the role, listens on `host:port` and runs the plain appends of all of them
   * (no inline projection, no personal data: those always run in their own process). Turn
   * it on in every instance of a deployment; each keeps one connection of its pool for the
   * role. Nothing depends on it for correctness: a process that cannot reach the holder
   * appends directly. Ignored on a backend without concurrent connections (PGlite).
   *
   * @example
   * ```ts
   * import { createPostgresClient, openEventStore } from '@annals/core';
   *
   * const store = await openEventStore({
   *   client: createPostgresClient({ connectionString: 'postgres://localhost/app' }),
   *   appendCoordinator: { host: '10.0.0.5', port: 7400 },
   * });
   * ```
   */
  appendCoordinator?: AppendCoordinatorOptions | false;
}

/**
 * Opens an event store on a database, applying pending migrations unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { createPostgresClient, openEventStore } from '@annals/core';
 *
 * const store = await openEventStore({
 *   client: createPostgresClient({ connectionString: 'postgres://localhost/app' }),
 * });
 * const { streamVersion } = await store.append('account-42', [
 *   { type: 'AccountOpened', data: { owner: 'Ada' }, metadata: { actor: 'ada' } },
 * ], { expectedVersion: 'no-stream' });
 * for await (const event of store.readStream('account-42')) console.log(event.type, streamVersion);
 * await store.close();
 * ```
 */
export async function openEventStore(options: OpenEventStoreOptions): Promise<EventStore> {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
  const {
    client,
    closeClient = true,
    inlineProjections = [],
    personalData,
    instrumentation = {},
    appendCoordinator = false,
    ...rest
  } = options;
  const coordinator = appendCoordinator === false ? undefined : resolveCoordinatorOptions(appendCoordinator);
  if (typeof instrumentation !== 'object' || instrumentation === null) {
    throw new InvalidInputError('instrumentation', 'must be an object of hooks');
  }
  const resolved = resolveStoreOptions(rest);
  const policy = compilePolicy(personalData);
  if (!Array.isArray(inlineProjections)) throw new InvalidInputError('inlineProjections', 'must be an array');
  for (const projection of inlineProjections) checkProjection(projection);
  if (!client.capabilities.concurrentConnections) resolved.appendConcurrency = 1;
  try {
    if (resolved.migrate) await migrate(client, resolved.schema);
    else await assertMigrated(client, resolved.schema);
    for (const { setup } of inlineProjections) if (setup) await client.transaction((tx) => setup(tx));
  } catch (error) {
    if (closeClient) await client.close();
    throw toAnnalsError(error);
  }
  const frozen = Object.freeze({ ...resolved });
  const pipeline = new AppendPipeline(client, frozen, [...inlineProjections], policy, instrumentation);
  if (coordinator && client.capabilities.concurrentConnections) pipeline.startCoordinator(client, coordinator);
  return new EventStore(createStoreContext(client, frozen, pipeline), closeClient);
}

/**
 * An append-only event store: streams with dense versions, a gap-free global log in commit
 * order, optimistic concurrency and idempotent appends. Open one with {@link openEventStore}.
 */
export class EventStore {
  /** The resolved options this store runs with. */
  readonly options: Readonly<StoreOptions>;
  readonly #context: StoreContext;
  readonly #closeClient: boolean;

  /** @internal Use {@link openEventStore}. */
  constructor(context: StoreContext, closeClient: boolean) {
    this.#context = context;
    this.options = context.options;
    this.#closeClient = closeClient;
    bindStoreContext(this, context);
  }

  /** What the database backend can do. */
  get capabilities(): SqlClient['capabilities'] {
    return this.#context.client.capabilities;
  }

  /**
   * Appends events to one stream, atomically, after checking its version.
   *
   * Retrying with the same event ids returns the original result and stores nothing
   * (`duplicate: true`); reusing an id for other content throws {@link EventIdReusedError}.
   *
   * @throws {@link ConcurrencyError} when the stream is not at `expectedVersion`.
   * @throws {@link InvalidInputError} / {@link PayloadTooLargeError} for bad input; nothing is stored.
   */
  async append(streamId: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const { expectedVersion } = readOptions<AppendOptions>(options, 'options');
    const [result] = await this.appendMulti([{ streamId, events, expectedVersion }]);
    return result as AppendResult;
  }

  /**
   * Appends to several streams in one transaction, each with its own expected version: all
   * are stored or none is. Returns one result per write, in order.
   *
   * @throws {@link ConcurrencyError} naming the first stream whose version did not match.
   */
  async appendMulti(writes: StreamWrite[]): Promise<AppendResult[]> {
    this.#context.assertOpen();
    const { pipeline } = this.#context;
    const single = Array.isArray(writes) && writes.length === 1 ? writes[0]?.streamId : undefined;
    return inSpan(
      'annals.append',
      { 'annals.stream': typeof single === 'string' ? single : undefined },
      async (span) => {
        // Each event carries the append's trace context, for the spans that later handle it.
        const prepared = pipeline.prepare(withTraceContext(writes));
        // The lifecycle records are written only by lifecycle(store), in the change's transaction.
        const record = prepared.findIndex((write) => write.streamId === lifecycleStream);
        if (record >= 0) {
          throw new InvalidInputError(
            prepared.length === 1 ? 'streamId' : `writes[${record}].streamId`,
            `${lifecycleStream} is written only by lifecycle(store)`,
          );
        }
        const results = await pipeline.append(prepared);
        span.setAttribute(
          'annals.events',
          prepared.reduce((sum, write) => sum + write.events.length, 0),
        );
        const positions = results.flatMap((result) => result.positions);
        if (positions.length > 0) {
          span.setAttribute('annals.position.first', Math.min(...positions));
          span.setAttribute('annals.position.last', Math.max(...positions));
        }
        return results;
      },
    );
  }

  /**
   * Reads a stream in version order, fetching a page at a time (constant memory).
   *
   * A deleted or tombstoned stream answers {@link StreamDeletedError} (unless
   * `includeDeleted`), an archived one {@link StreamArchivedError} (unless
   * `includeArchived`), thrown by the iteration; a re-opened stream starts at its first
   * version after the delete. See `lifecycle(store)`.
   *
   * @example
   * ```ts
   * for await (const event of store.readStream('account-42', { direction: 'backward', limit: 10 })) {
   *   console.log(event.streamVersion, event.type);
   * }
   * ```
   */
  readStream(streamId: string, options: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    const {
      direction = 'forward',
      fromVersion,
      limit,
      pageSize = this.options.pageSize,
      includeDeleted = false,
      includeArchived = false,
    } = readOptions<ReadStreamOptions>(options, 'options');
    assertFlag(includeDeleted, 'includeDeleted');
    assertFlag(includeArchived, 'includeArchived');
    if (direction !== 'forward' && direction !== 'backward') {
      throw new InvalidInputError('direction', `must be "forward" or "backward", got ${describe(direction)}`);
    }
    if (fromVersion !== undefined) assertInteger(fromVersion, 'fromVersion', direction === 'forward' ? 1 : 0);
    if (limit !== undefined) assertInteger(limit, 'limit', 0);
    assertInteger(pageSize, 'pageSize', 1);
    const step = direction === 'forward' ? 1 : -1;
    return {
      [Symbol.asyncIterator]: () =>
        paged(
          fromVersion ?? (direction === 'forward' ? 1 : Number.MAX_SAFE_INTEGER),
          pageSize,
          limit ?? Number.POSITIVE_INFINITY,
          (version, rows) =>
            this.#context.query((db) =>
              readStreamEvents(db, this.options.schema, streamId, direction, version, rows, {
                includeDeleted,
                includeArchived,
              }),
            ),
          (last) => last.streamVersion + step,
        ),
    };
  }

  /**
   * Reads the global log in position order after a checkpoint, a page at a time. Never skips
   * an event: positions become visible only as a gap-free prefix, whatever order concurrent
   * appends commit in.
   *
   * Skips the events of deleted, tombstoned and archived streams, and those below a re-opened
   * stream's truncation, unless `includeDeleted` / `includeArchived`: what it skips is decided
   * as each page is read.
   *
   * @example
   * ```ts
   * let checkpoint = 0;
   * for await (const event of store.readAll({ after: checkpoint, categories: ['account'] })) {
   *   checkpoint = event.position;
   * }
   * ```
   */
  readAll(given: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    const options = readOptions<ReadAllOptions>(given, 'options');
    const {
      after = 0,
      limit,
      pageSize = this.options.pageSize,
      includeDeleted = false,
      includeArchived = false,
    } = options;
    assertInteger(after, 'after', 0);
    assertFlag(includeDeleted, 'includeDeleted');
    assertFlag(includeArchived, 'includeArchived');
    if (limit !== undefined) assertInteger(limit, 'limit', 0);
    assertInteger(pageSize, 'pageSize', 1);
    const filter: ReadAllFilter = {
      categories: this.#nameList(options.categories, 'categories'),
      eventTypes: this.#nameList(options.eventTypes, 'eventTypes'),
      streamIds: this.#nameList(options.streamIds, 'streamIds'),
      include: { deleted: includeDeleted, archived: includeArchived },
    };
    return {
      [Symbol.asyncIterator]: () =>
        paged(
          after,
          pageSize,
          limit ?? Number.POSITIVE_INFINITY,
          (checkpoint, rows) =>
            this.#context.query((db) => readAllEvents(db, this.options.schema, checkpoint, rows, filter)),
          (last) => last.position,
        ),
    };
  }

  /**
   * One event by its id, or null. Returns any stored event, whatever its stream's lifecycle
   * state (a lookup by identity, as the audit trail and command idempotency need).
   */
  getEvent(eventId: string): Promise<RecordedEvent | null> {
    assertEventId(eventId, 'eventId');
    return this.#context.query((db) => readEvent(db, this.options.schema, eventId.toLowerCase()));
  }

  /**
   * The last position recorded at or before `time`, counting the whole of its millisecond (0
   * when the log starts later): an event's own `recordedAt` finds that event, though the
   * database stamps microseconds. A binary search over the log, done by the database in one
   * round trip. Sound because an append
   * takes its time from the database clock while it holds the log lock, so times never
   * decrease along positions (unless the server clock is set back).
   */
  async positionAt(time: Date): Promise<number> {
    const at = sqlTime(time, 'time');
    return this.#context.query((db) => readPositionAt(db, this.options.schema, at));
  }

  /** The position of the last committed event (0 for an empty store). */
  headPosition(): Promise<number> {
    return this.#context.query((db) => readHeadPosition(db, this.options.schema));
  }

  /**
   * A stream's head and lifecycle state, or null when it has neither events, metadata nor a
   * lifecycle state. Its `version` counts every stored event (a deleted stream keeps its
   * version; a re-opened one goes on from it).
   */
  getStream(streamId: string): Promise<StreamInfo | null> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    return this.#context.query((db) => readStreamInfo(db, this.options.schema, streamId));
  }

  /** Replaces a stream's metadata (a JSON object kept beside the stream, not an event). */
  async setStreamMetadata(streamId: string, metadata: JsonObject): Promise<void> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidInputError('metadata', 'must be an object');
    }
    const json = toJson(metadata, 'metadata');
    await this.#context.query((db) => writeStreamMetadata(db, this.options.schema, streamId, json));
  }

  /**
   * Transactions holding the log lock right now: while one is open, other appends wait and
   * readers see the log only up to before it. Empty when nothing holds it.
   */
  logHolders(): Promise<LogHolder[]> {
    return this.#context.query((db) => readLogHolders(db, this.options.schema));
  }

  /**
   * Stops the store's subscriptions and workers, waits for appends in flight, then closes
   * the database client (unless it was borrowed).
   */
  async close(): Promise<void> {
    if (this.#context.closed) return;
    await this.#context.shutdown();
    if (this.#closeClient) await this.#context.client.close();
  }

  #nameList(value: unknown, field: string): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.length === 0) throw new InvalidInputError(field, 'must be a non-empty array');
    const names = guarded(field, () => Array.from(value as unknown[]));
    names.forEach((name, i) => {
      assertStreamId(name, `${field}[${i}]`, this.options.maxStreamIdLength);
    });
    return names as string[];
  }
}
