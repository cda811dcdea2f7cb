import { assertMigrated, type MigrateResult, migrate, notifyChannel } from '../db/migrate.js';
import type { Listener, SqlClient, SqlQueryable } from '../db/sql-client.js';
import {
  ConcurrencyError,
  EventIdReusedError,
  InlineProjectionError,
  InvalidInputError,
  PayloadTooLargeError,
  StoreClosedError,
  StreamNotFoundError,
  sqlStateOf,
  toAnnalsError,
} from '../errors.js';
import { Sealer, type SealerOptions } from '../integrity/sealer.js';
import { sealAll } from '../integrity/sealing.js';
import { type VerifyOptions, type VerifyReport, verifySeals } from '../integrity/verify.js';
import { resolveStoreOptions, type StoreOptions } from '../options.js';
import {
  compilePolicy,
  holdsPersonalData,
  maxSubjectLength,
  type PersonalDataPolicy,
  planPersonalData,
  protectWrites,
  subjectStream,
} from '../personal/personal-data.js';
import { appendEvents, type WriteOutcome } from '../queries/append-events.js';
import { readByMetadata } from '../queries/audit.js';
import {
  type CheckpointStatus,
  listParked,
  type ParkedEvent,
  readCheckpointStatuses,
  unparkEvent,
} from '../queries/checkpoints.js';
import { type Documents, documents } from '../queries/documents.js';
import { loadStreamPage } from '../queries/load-stream.js';
import { readLogHolders } from '../queries/log-holders.js';
import { type ReadAllFilter, readAllPage, readHeadPosition, readPositionAt } from '../queries/read-all.js';
import { readEventById } from '../queries/read-event.js';
import { readStreamPage } from '../queries/read-stream.js';
import { readLastSealed } from '../queries/seals.js';
import { readSnapshot, type Snapshot, writeSnapshot } from '../queries/snapshots.js';
import { readStreamInfo, writeStreamMetadata } from '../queries/streams.js';
import { deleteSubject } from '../queries/subject-keys.js';
import { ConsumerGroupMember, type ConsumerGroupOptions } from '../subscriptions/consumer-group.js';
import {
  checkProjection,
  type Projection,
  ProjectionRunner,
  type ProjectionRunnerOptions,
  type ProjectionStatus,
} from '../subscriptions/projection-runner.js';
import { Subscription, type SubscriptionOptions } from '../subscriptions/subscription.js';
import { buildProjectionAt } from '../time-travel/projection-at.js';
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
  type PreparedWrite,
  prepareWrites,
  toJson,
} from '../validation.js';
import { AppendBatcher, type Settled } from './append-batcher.js';
import { toAppendResults } from './append-results.js';
import { applyInline } from './inline-projections.js';
import { paged } from './paging.js';

/** Options of {@link openEventStore}. */
export interface OpenEventStoreOptions extends Partial<StoreOptions> {
  /** The database: `createPostgresClient(...)` or `createPgliteClient(...)`. */
  client: SqlClient;
  /** Close `client` when the store closes. @defaultValue `true` */
  closeClient?: boolean;
  /**
   * Projections applied inside each append's transaction: a read of the read model right
   * after `append` resolves sees the append (read-your-writes). A handler that throws fails
   * the append with {@link InlineProjectionError}, and nothing is stored. Added to a store
   * with history, an inline projection sees only new appends: build the past with
   * `runProjection` first.
   */
  inlineProjections?: Projection[];
  /**
   * Which fields of which event types are personal data: they are stored encrypted with a
   * key of their subject, and read as `null` once {@link EventStore.forgetSubject} deleted
   * it. Reads need no policy (events say what they hold), only appends do.
   *
   * @example
   * ```ts
   * personalData: { CustomerRegistered: { subject: 'customerId', fields: ['name', 'email'] } }
   * ```
   */
  personalData?: PersonalDataPolicy;
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
 * for await (const event of store.readStream('account-42')) console.log(event.type);
 * await store.close();
 * ```
 */
export async function openEventStore(options: OpenEventStoreOptions): Promise<EventStore> {
  const { client, closeClient = true, inlineProjections = [], personalData, ...rest } = options;
  const resolved = resolveStoreOptions(rest);
  const policy = compilePolicy(personalData);
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
  return new EventStore(client, resolved, closeClient, inlineProjections, policy);
}

/**
 * An append-only event store: streams with dense versions, a gap-free global log in commit
 * order, optimistic concurrency and idempotent appends. Open one with {@link openEventStore}.
 */
export class EventStore {
  /** The resolved options this store runs with. */
  readonly options: Readonly<StoreOptions>;
  readonly #client: SqlClient;
  readonly #closeClient: boolean;
  readonly #inline: Projection[];
  readonly #personal: ReturnType<typeof compilePolicy>;
  readonly #batcher: AppendBatcher<AppendResult[]>;
  #closed = false;
  readonly #running = new Set<{ stop(): Promise<void> }>();
  readonly #wakers = new Set<() => void>();
  #listener: Promise<Listener> | undefined;

  /** @internal Use {@link openEventStore}. */
  constructor(
    client: SqlClient,
    options: StoreOptions,
    closeClient: boolean,
    inlineProjections: Projection[] = [],
    personalData: ReturnType<typeof compilePolicy> = new Map(),
  ) {
    this.#client = client;
    this.#inline = inlineProjections;
    this.#personal = personalData;
    this.options = Object.freeze({ ...options });
    this.#closeClient = closeClient;
    this.#batcher = new AppendBatcher((appends) => this.#runBatch(appends), {
      maxEvents: options.batchMaxEvents,
      concurrency: options.appendConcurrency,
    });
  }

  /** What the database backend can do. */
  get capabilities(): SqlClient['capabilities'] {
    return this.#client.capabilities;
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
    if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
    const [result] = await this.appendMulti([{ streamId, events, expectedVersion: options.expectedVersion }]);
    return result as AppendResult;
  }

  /**
   * Appends to several streams in one transaction, each with its own expected version: all
   * are stored or none is. Returns one result per write, in order.
   *
   * @throws {@link ConcurrencyError} naming the first stream whose version did not match.
   */
  async appendMulti(writes: StreamWrite[]): Promise<AppendResult[]> {
    this.#assertOpen();
    const prepared = prepareWrites(writes, this.options);
    if (this.#personal.size > 0) planPersonalData(this.#personal, prepared, this.options.maxEventBytes);
    return this.#batcher.append(prepared);
  }

  /**
   * Reads a stream in version order, fetching a page at a time (constant memory).
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
    const { direction = 'forward', fromVersion, limit, pageSize = this.options.pageSize } = options;
    if (direction !== 'forward' && direction !== 'backward') {
      throw new InvalidInputError('direction', `must be "forward" or "backward", got ${JSON.stringify(direction)}`);
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
            this.#query((db) => readStreamPage(db, this.options.schema, streamId, direction, version, rows)),
          (last) => last.streamVersion + step,
        ),
    };
  }

  /**
   * Reads the global log in position order after a checkpoint, a page at a time. Never skips
   * an event: positions become visible only as a gap-free prefix, whatever order concurrent
   * appends commit in.
   *
   * @example
   * ```ts
   * let checkpoint = 0;
   * for await (const event of store.readAll({ after: checkpoint, categories: ['account'] })) {
   *   checkpoint = event.position;
   * }
   * ```
   */
  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    const { after = 0, limit, pageSize = this.options.pageSize } = options;
    assertInteger(after, 'after', 0);
    if (limit !== undefined) assertInteger(limit, 'limit', 0);
    assertInteger(pageSize, 'pageSize', 1);
    const filter: ReadAllFilter = {
      categories: this.#nameList(options.categories, 'categories'),
      eventTypes: this.#nameList(options.eventTypes, 'eventTypes'),
      streamIds: this.#nameList(options.streamIds, 'streamIds'),
    };
    return {
      [Symbol.asyncIterator]: () =>
        paged(
          after,
          pageSize,
          limit ?? Number.POSITIVE_INFINITY,
          (checkpoint, rows) => this.#query((db) => readAllPage(db, this.options.schema, checkpoint, rows, filter)),
          (last) => last.position,
        ),
    };
  }

  /** One event by its id, or null. */
  getEvent(eventId: string): Promise<RecordedEvent | null> {
    assertEventId(eventId, 'eventId');
    return this.#query((db) => readEventById(db, this.options.schema, eventId.toLowerCase()));
  }

  /**
   * A stream for folding into state: the latest snapshot of `snapshotOf` (when given, and not
   * past `toVersion`), then the events after it up to `toVersion`, paged. The snapshot and the
   * first page come in one round trip.
   */
  async loadStream(
    streamId: string,
    options: { snapshotOf?: { decider: string; modelVersion: number }; toVersion?: number } = {},
  ): Promise<{ snapshot: Snapshot | null; events: AsyncIterable<RecordedEvent> }> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    const { snapshotOf, toVersion = Number.MAX_SAFE_INTEGER } = options;
    if (snapshotOf) {
      assertStreamId(snapshotOf.decider, 'snapshotOf.decider', this.options.maxStreamIdLength);
      assertInteger(snapshotOf.modelVersion, 'snapshotOf.modelVersion', 0);
    }
    assertInteger(toVersion, 'toVersion', 0);
    const pageSize = this.options.pageSize;
    const { snapshot, events: firstPage } = await this.#query((db) =>
      loadStreamPage(db, this.options.schema, streamId, snapshotOf ?? null, toVersion, pageSize + 1),
    );
    const store = this;
    return {
      snapshot,
      events: {
        async *[Symbol.asyncIterator]() {
          yield* firstPage.slice(0, pageSize);
          if (firstPage.length <= pageSize) return;
          const next = (firstPage[pageSize - 1] as RecordedEvent).streamVersion + 1;
          yield* store.readStream(streamId, { fromVersion: next, limit: toVersion - next + 1 });
        },
      },
    };
  }

  /** The stored snapshot of `streamId` for `decider`, or null. Snapshots are a cache, never the truth. */
  loadSnapshot(streamId: string, decider: string): Promise<Snapshot | null> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    assertStreamId(decider, 'decider', this.options.maxStreamIdLength);
    return this.#query((db) => readSnapshot(db, this.options.schema, streamId, decider));
  }

  /** Stores a snapshot, unless a newer one of the same model version is already stored. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    assertStreamId(snapshot.streamId, 'streamId', this.options.maxStreamIdLength);
    assertStreamId(snapshot.decider, 'decider', this.options.maxStreamIdLength);
    assertInteger(snapshot.modelVersion, 'modelVersion', 0);
    assertInteger(snapshot.streamVersion, 'streamVersion', 1);
    const json = toJson(snapshot.state, 'state');
    if (Buffer.byteLength(json) > 64 * this.options.maxEventBytes) {
      throw new PayloadTooLargeError('state', 64 * this.options.maxEventBytes, Buffer.byteLength(json));
    }
    await this.#query((db) => writeSnapshot(db, this.options.schema, snapshot, json));
  }

  /**
   * The last position recorded at or before `time` (0 when the log starts later): a binary
   * search over the log, done by the database in one round trip. Sound because an append
   * takes its time from the database clock while it holds the log lock, so times never
   * decrease along positions (unless the server clock is set back).
   */
  async positionAt(time: Date): Promise<number> {
    if (!(time instanceof Date) || Number.isNaN(time.getTime())) {
      throw new InvalidInputError('time', `must be a valid Date, got ${String(time)}`);
    }
    return this.#query((db) => readPositionAt(db, this.options.schema, time));
  }

  /**
   * Events whose metadata names this actor, this correlation id, or this data subject (events
   * holding its personal data), in log order, through their own index; `after`/`upTo` bound
   * the positions (see {@link EventStore.positionAt}), `limit` the number of events.
   */
  readByMetadata(
    key: 'actor' | 'correlationId' | 'subject',
    value: string,
    range: { after?: number; upTo?: number; limit?: number; pageSize?: number } = {},
  ): AsyncIterable<RecordedEvent> {
    if (key !== 'actor' && key !== 'correlationId' && key !== 'subject') {
      throw new InvalidInputError('key', 'must be "actor", "correlationId" or "subject"');
    }
    assertStreamId(value, key, 1000);
    const { after = 0, upTo = Number.MAX_SAFE_INTEGER, limit, pageSize = this.options.pageSize } = range;
    assertInteger(after, 'after', 0);
    assertInteger(upTo, 'upTo', 0);
    if (limit !== undefined) assertInteger(limit, 'limit', 0);
    assertInteger(pageSize, 'pageSize', 1);
    return {
      [Symbol.asyncIterator]: () =>
        paged(
          after,
          pageSize,
          limit ?? Number.POSITIVE_INFINITY,
          (position, rows) =>
            this.#query((db) =>
              readByMetadata(db, this.options.schema, key, value, { after: position, upTo, limit: rows }),
            ),
          (last) => last.position,
        ),
    };
  }

  /** The position of the last committed event (0 for an empty store). */
  headPosition(): Promise<number> {
    return this.#query((db) => readHeadPosition(db, this.options.schema));
  }

  /** A stream's head, or null when it has neither events nor metadata. */
  getStream(streamId: string): Promise<StreamInfo | null> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    return this.#query((db) => readStreamInfo(db, this.options.schema, streamId));
  }

  /** A stream's last version: 0 when it has no event. */
  async streamVersion(streamId: string): Promise<number> {
    return (await this.getStream(streamId))?.version ?? 0;
  }

  /** Whether the stream has at least one event. */
  async streamExists(streamId: string): Promise<boolean> {
    return (await this.getStream(streamId))?.exists ?? false;
  }

  /** Replaces a stream's metadata (a JSON object kept beside the stream, not an event). */
  async setStreamMetadata(streamId: string, metadata: JsonObject): Promise<void> {
    assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidInputError('metadata', 'must be an object');
    }
    const json = toJson(metadata, 'metadata');
    await this.#query((db) => writeStreamMetadata(db, this.options.schema, streamId, json));
  }

  /**
   * Transactions holding the log lock right now: while one is open, other appends wait and
   * readers see the log only up to before it. Empty when nothing holds it.
   */
  logHolders(): Promise<LogHolder[]> {
    return this.#query((db) => readLogHolders(db, this.options.schema));
  }

  /**
   * Delivers the global log to `options.handler`, a page at a time, from the start, the end
   * or a stored checkpoint, then live. See {@link Subscription}.
   *
   * @example
   * ```ts
   * const subscription = store.subscribe({
   *   name: 'mailer', categories: ['account'],
   *   handler: async (events) => { for (const e of events) await sendMail(e); },
   * });
   * // ...
   * await subscription.stop();
   * ```
   */
  subscribe(options: SubscriptionOptions): Subscription {
    this.#assertOpen();
    return this.#track(new Subscription(this.#host(), options));
  }

  /**
   * Joins a consumer group: members (usually one per process) share a subscription, each
   * stream handled in order by one member at a time. See {@link ConsumerGroupMember}.
   */
  joinGroup(options: ConsumerGroupOptions): ConsumerGroupMember {
    this.#assertOpen();
    return this.#track(new ConsumerGroupMember(this.#host(), options));
  }

  /**
   * Runs a projection: read-model writes and checkpoint in one transaction per batch, one
   * runner at a time across processes. See {@link ProjectionRunner}.
   */
  runProjection(projection: Projection, options?: ProjectionRunnerOptions): ProjectionRunner {
    this.#assertOpen();
    return this.#track(new ProjectionRunner(this.#host(), projection, options));
  }

  /**
   * Builds (or brings up to date) a projection's read model from its checkpoint to the log's
   * head as it is now, reporting progress, then stops. For a rebuild without downtime, give
   * the projection a new `version` writing to new tables: the old version keeps serving
   * meanwhile; switch readers when this resolves, then run the new version as usual (it
   * continues from its checkpoint) and retire the old one.
   *
   * @example
   * ```ts
   * await store.rebuildProjection({ ...balances, version: 2 }, {
   *   onProgress: (s) => console.log(`${s.position}/${s.head}, ${s.eventsPerSecond}/s, ETA ${s.etaSeconds}s`),
   * });
   * ```
   */
  async rebuildProjection(
    projection: Projection,
    options: ProjectionRunnerOptions & {
      onProgress?: (status: ProjectionStatus) => void;
      /** @defaultValue 1000 */
      progressIntervalMs?: number;
    } = {},
  ): Promise<ProjectionStatus> {
    const { onProgress, progressIntervalMs = 1000, ...runnerOptions } = options;
    const target = await this.headPosition();
    const runner = this.runProjection(projection, runnerOptions);
    // A throwing progress callback must not become an unhandled rejection.
    const report = () =>
      void runner
        .status()
        .then(onProgress)
        .catch(() => {});
    const timer = onProgress ? setInterval(report, progressIntervalMs) : undefined;
    try {
      await runner.waitFor(target);
      const status = await runner.status();
      onProgress?.(status);
      return status;
    } finally {
      clearInterval(timer);
      await runner.stop();
    }
  }

  /**
   * A projection's read model as it was at a global position or time: built from the log into
   * a scratch schema, handed to `query`, then discarded (one transaction, always rolled back).
   * The projection's own tables must be named without a schema in its `setup` and handlers:
   * they then resolve to the scratch schema. Live read models are not touched.
   *
   * @example
   * ```ts
   * const lastMonth = await store.projectionAt(balancesProjection, { time: new Date('2026-10-31T23:59:59Z') },
   *   (tx, documents) => documents.find('account-balances', { match: { status: 'closed' } }));
   * ```
   * @throws {@link InvalidInputError} for a malformed moment or projection.
   */
  async projectionAt<T>(
    projection: Projection,
    at: { position: number } | { time: Date },
    query: (tx: SqlQueryable, documents: Documents) => Promise<T>,
  ): Promise<{ position: number; result: T }> {
    this.#assertOpen();
    checkProjection(projection);
    if (typeof query !== 'function') throw new InvalidInputError('query', 'must be a function');
    let position: number;
    if (typeof at === 'object' && at !== null && 'position' in at) {
      assertInteger(at.position, 'at.position', 0);
      position = Math.min(at.position, await this.headPosition());
    } else if (typeof at === 'object' && at !== null && 'time' in at) {
      position = await this.positionAt(at.time);
    } else {
      throw new InvalidInputError('at', 'must be { position } or { time }');
    }
    const result = await this.#query((client) =>
      buildProjectionAt(client, this.options.schema, projection, position, query, this.options.pageSize),
    );
    return { position, result };
  }

  /** JSON documents written by projections (document-style read models), to read and query. */
  get documents(): Documents {
    this.#assertOpen();
    return documents(this.#client, this.options.schema);
  }

  /**
   * Every durable subscription's and projection's stored position, with its lag in events and
   * seconds and its parked events; for the running state of one in this process, ask its
   * `status()`.
   */
  checkpoints(): Promise<CheckpointStatus[]> {
    return this.#query((db) => readCheckpointStatuses(db, this.options.schema));
  }

  /** Events the named subscription parked after its retries, oldest first. */
  parkedEvents(subscription: string): Promise<ParkedEvent[]> {
    assertStreamId(subscription, 'subscription', 256);
    return this.#query((db) => listParked(db, this.options.schema, subscription));
  }

  /**
   * Delivers the named subscription's parked events to `handler` again, one at a time; each
   * that succeeds is unparked. Returns how many were replayed and how many failed again.
   */
  async replayParked(
    subscription: string,
    handler: (event: RecordedEvent) => Promise<void> | void,
  ): Promise<{ replayed: number; failed: number }> {
    let replayed = 0;
    let failed = 0;
    for (const parked of await this.parkedEvents(subscription)) {
      const [event] = await this.#query((db) => readAllPage(db, this.options.schema, parked.position - 1, 1));
      try {
        if (event) await handler(event);
        await this.#query((db) => unparkEvent(db, this.options.schema, subscription, parked.position));
        replayed++;
      } catch {
        failed++;
      }
    }
    return { replayed, failed };
  }

  /**
   * Seals every event committed so far (see {@link EventStore.runSealer} for a sealer that
   * keeps up by itself) and returns how many it sealed. Safe beside a running sealer.
   */
  async seal(options: { batchSize?: number; onProgress?: (sealed: number) => void } = {}): Promise<number> {
    this.#assertOpen();
    const { batchSize = 2000, onProgress } = options;
    assertInteger(batchSize, 'batchSize', 1);
    return sealAll(this.#client, this.options.schema, { batchSize, onProgress });
  }

  /** How far sealing has come: the last sealed position, the log's head, and the gap. */
  async sealStatus(): Promise<{ sealedUpTo: number; head: number; unsealed: number }> {
    const sealedUpTo = await this.#query((db) => readLastSealed(db, this.options.schema));
    const head = await this.headPosition();
    return { sealedUpTo, head, unsealed: Math.max(0, head - sealedUpTo) };
  }

  /**
   * Starts a sealer: it seals the log behind the appends, a batch per transaction, and waits
   * for more. Run one per store (more are safe: they take turns). Events are tamper-evident
   * from their seal on; `status()` shows how many are not sealed yet.
   *
   * @example
   * ```ts
   * const sealer = store.runSealer();
   * // ... appends ...
   * await sealer.waitFor(await store.headPosition());
   * const report = await store.verify();
   * if (!report.ok) console.error(report.broken[0]?.message);
   * ```
   */
  runSealer(options?: SealerOptions): Sealer {
    this.#assertOpen();
    return this.#track(new Sealer(this.#host(), options));
  }

  /**
   * Recomputes the seals of the whole store, or of one stream, from the events as stored, and
   * reports every link that does not hold (the first one first); for the whole store, also
   * checks the log chain (and `anchor`, when given) and lists subject keys lost without a
   * recorded erasure. Sealed events only: seal first to cover the latest appends.
   *
   * @throws {@link StreamNotFoundError} when `streamId` names a stream with no events and no seals.
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    this.#assertOpen();
    if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
    const { streamId, anchor, pageSize = 2000, maxBroken = 100, onProgress } = options;
    if (streamId !== undefined) assertStreamId(streamId, 'streamId', this.options.maxStreamIdLength);
    if (anchor !== undefined) {
      if (typeof anchor !== 'object' || anchor === null)
        throw new InvalidInputError('anchor', 'must be { position, hash }');
      assertInteger(anchor.position, 'anchor.position', 1);
      if (typeof anchor.hash !== 'string' || !/^[0-9a-f]{64}$/i.test(anchor.hash)) {
        throw new InvalidInputError('anchor.hash', 'must be 64 hexadecimal digits (a headHash)');
      }
      if (streamId !== undefined) throw new InvalidInputError('anchor', 'checks the whole log: not with streamId');
    }
    assertInteger(pageSize, 'pageSize', 1);
    assertInteger(maxBroken, 'maxBroken', 1);
    if (onProgress !== undefined && typeof onProgress !== 'function') {
      throw new InvalidInputError('onProgress', 'must be a function');
    }
    const report = await verifySeals(this.#client, this.options.schema, {
      streamId,
      anchor,
      pageSize,
      maxBroken,
      onProgress,
    });
    if (streamId !== undefined && report.checked === 0 && !(await this.streamExists(streamId))) {
      throw new StreamNotFoundError(streamId);
    }
    return report;
  }

  /**
   * Forgets a data subject (erasure, GDPR article 17): deletes its key, so its personal fields
   * read as `null` everywhere from now on, drops the snapshots of the streams holding its data,
   * and records the erasure as a `SubjectForgotten` event in the stream `$subject-<id>` — all
   * in one transaction. The events themselves are untouched, and their seals still verify.
   * Read models that copied personal fields must react to `SubjectForgotten` (or be rebuilt).
   *
   * Returns `forgotten: false` (and records nothing) when the subject has no key: never
   * seen, or already forgotten. Personal data appended for it later gets a new key.
   */
  async forgetSubject(
    subjectId: string,
    context: { actor?: string; reason?: string } = {},
  ): Promise<{ forgotten: boolean; events: number; snapshotsDropped: number; position: number | null }> {
    this.#assertOpen();
    assertStreamId(subjectId, 'subjectId', maxSubjectLength);
    if (typeof context !== 'object' || context === null) throw new InvalidInputError('context', 'must be an object');
    const schema = this.options.schema;
    const [record] = prepareWrites(
      [
        {
          streamId: subjectStream(subjectId),
          events: [
            {
              type: 'SubjectForgotten',
              data: { subjectId },
              metadata: { ...(context.actor ? { actor: context.actor } : {}), reason: context.reason ?? 'erasure' },
            },
          ],
        },
      ],
      this.options,
    );
    try {
      return await this.#client.transaction(async (tx) => {
        const gone = await deleteSubject(tx, schema, subjectId);
        if (!gone.existed) return { forgotten: false, events: gone.events, snapshotsDropped: 0, position: null };
        const outcomes = await appendEvents(tx, schema, [[record as PreparedWrite]]);
        await applyInline(this.#inline, tx, schema, [[record as PreparedWrite]], outcomes);
        const [[outcome]] = outcomes as [[WriteOutcome]];
        return {
          forgotten: true,
          events: gone.events,
          snapshotsDropped: gone.snapshots,
          position: outcome.firstPosition ?? null,
        };
      });
    } catch (error) {
      throw toAnnalsError(error);
    }
  }

  /** Keeps a subscription or runner so that `close` stops it first. */
  #track<T extends { stop(): Promise<void>; done: Promise<void> }>(running: T): T {
    this.#running.add(running);
    const forget = () => this.#running.delete(running);
    void running.done.then(forget, forget);
    return running;
  }

  #host() {
    return {
      client: this.#client,
      schema: this.options.schema,
      onAppended: (wake: () => void) => this.#onAppended(wake),
    };
  }

  /**
   * One LISTEN connection per store, opened on first use and kept until `close`, fans
   * notifications out to every subscription and runner of this store.
   */
  async #onAppended(wake: () => void): Promise<() => void> {
    this.#wakers.add(wake);
    const fire = () => {
      for (const w of this.#wakers) w();
    };
    this.#listener ??= this.#client.listen(notifyChannel(this.options.schema), fire, fire);
    try {
      await this.#listener;
    } catch (error) {
      this.#wakers.delete(wake);
      this.#listener = undefined;
      throw error;
    }
    return () => {
      this.#wakers.delete(wake);
    };
  }

  /** Applies pending migrations (safe while other processes run or migrate). */
  migrate(): Promise<MigrateResult> {
    this.#assertOpen();
    return migrate(this.#client, this.options.schema);
  }

  /**
   * Stops its subscriptions and projection runners, waits for appends in flight, then closes
   * the database client (unless it was borrowed).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#running].map((running) => running.stop()));
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener) await (await listener.catch(() => undefined))?.close();
    await this.#batcher.drain();
    if (this.#closeClient) await this.#client.close();
  }

  async #runBatch(appends: readonly (readonly PreparedWrite[])[]): Promise<Settled<AppendResult[]>[]> {
    const schema = this.options.schema;
    // Personal fields are encrypted in the append's transaction, under keys it holds until
    // commit; inline projections see them plain, like readers.
    const personal = this.#personal.size > 0 && holdsPersonalData(appends);
    const run = () =>
      this.#inline.length === 0 && !personal
        ? appendEvents(this.#client, schema, appends)
        : this.#client.transaction(async (tx) => {
            const stored = personal ? await protectWrites(tx, schema, appends) : appends;
            const outcomes = await appendEvents(tx, schema, stored);
            await applyInline(this.#inline, tx, schema, appends, outcomes);
            return outcomes;
          });
    let outcomes: WriteOutcome[][];
    try {
      outcomes = await run();
    } catch (error) {
      // A lone append that raced a retry of itself (unique event id) or hit a deadlock is
      // retried once: the retry sees the committed original and reports it as a duplicate.
      const state = sqlStateOf(error);
      if (appends.length !== 1 || (state !== '23505' && state !== '40P01')) throw toAnnalsError(error);
      try {
        outcomes = await run();
      } catch (retryError) {
        throw toAnnalsError(retryError);
      }
    }
    return appends.map((writes, a) => {
      try {
        return { ok: true, value: toAppendResults(writes, outcomes[a] ?? []) };
      } catch (error) {
        return { ok: false, error };
      }
    });
  }

  #nameList(value: unknown, field: string): string[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.length === 0) throw new InvalidInputError(field, 'must be a non-empty array');
    value.forEach((name, i) => {
      assertStreamId(name, `${field}[${i}]`, this.options.maxStreamIdLength);
    });
    return value;
  }

  async #query<T>(run: (db: SqlClient) => Promise<T>): Promise<T> {
    this.#assertOpen();
    try {
      return await run(this.#client);
    } catch (error) {
      throw toAnnalsError(error);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreClosedError();
  }
}
