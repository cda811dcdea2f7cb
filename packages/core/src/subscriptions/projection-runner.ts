/**
 * Projections: read models in PostgreSQL tables, kept exactly in step with the log.
 *
 * A batch is one transaction that (1) locks the projection's checkpoint row, (2) reads the
 * next events after it, (3) runs the handlers, which write the read model through the same
 * transaction, and (4) moves the checkpoint. It commits whole or not at all, so a crash at any
 * point neither applies an event twice nor skips one (DESIGN.md invariant 6).
 *
 * Leases: one runner per projection does the work at a time, across processes. A runner
 * holds a session-level advisory lock on a connection of its own; the others poll for it
 * every `leaseRetryMs`. When the holder's process or connection dies, PostgreSQL releases the
 * lock and a standby takes over. The lock only saves wasted work: correctness rests on the
 * checkpoint row lock, which also fences a runner that lost its lease without knowing it.
 */
import type { SqlClient, SqlQueryable, SqlSession } from '../db/sql-client.js';
import { InvalidInputError, toAnnalsError } from '../errors.js';
import { lockCheckpoint, readCheckpoint } from '../queries/checkpoints.js';
import { type Documents, documents } from '../queries/documents.js';
import { readAllPage, readHeadPosition } from '../queries/read-all.js';
import type { RecordedEvent } from '../types.js';
import { assertStreamId } from '../validation.js';
import { PositionWaiters } from './position-waiters.js';
import { Wakeup } from './wakeup.js';

/** A read model fed by the log; see the module comment. */
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

/** Options of {@link EventStore.runProjection}. */
export interface ProjectionRunnerOptions {
  /** Events per transaction. @defaultValue 500 */
  batchSize?: number;
  /** Longest sleep between reads when no NOTIFY comes. @defaultValue 1000 */
  pollIntervalMs?: number;
  /** How often a standby tries to take the lease. @defaultValue 1000 */
  leaseRetryMs?: number;
  /**
   * Consecutive failed batches before the runner stops as faulted; the pause between tries
   * doubles from 0.2 s up to 5 s, so the default rides out about half a minute of outage.
   * @defaultValue 10
   */
  maxFailures?: number;
}

/** Where a projection is. */
export interface ProjectionStatus {
  name: string;
  version: number;
  state: 'standby' | 'catching-up' | 'live' | 'stopped' | 'faulted';
  /** Whether this runner holds the lease. */
  leader: boolean;
  /** Stored checkpoint. */
  position: number;
  head: number;
  lag: number;
  /** Recent rate of this runner, over the last few seconds. */
  eventsPerSecond: number;
  /** Seconds to catch up at that rate (null when not moving). */
  etaSeconds: number | null;
  lastError: string | undefined;
}

/** @internal What a runner needs of its store. */
export interface ProjectionHost {
  client: SqlClient;
  schema: string;
  /** Calls `wake` after appends (and after a lost LISTEN connection came back); returns the way to stop. */
  onAppended(wake: () => void): Promise<() => void>;
}

/** Runs one projection; see the module comment. */
export class ProjectionRunner {
  readonly #host: ProjectionHost;
  readonly #projection: Projection;
  readonly #checkpoint: string;
  readonly #version: number;
  /** (time, position) of recent batches, for the rate. */
  #samples: [number, number][] = [];
  readonly #options: Required<ProjectionRunnerOptions>;
  readonly #wakeup = new Wakeup();
  #state: ProjectionStatus['state'] = 'standby';
  #leader = false;
  #lastError: string | undefined;
  #stopped = false;
  readonly #progress = new PositionWaiters();
  /** Resolves when the runner stopped or faulted. */
  readonly done: Promise<void>;

  /** @internal Use {@link EventStore.runProjection}. */
  constructor(host: ProjectionHost, projection: Projection, options: ProjectionRunnerOptions = {}) {
    checkProjection(projection);
    this.#host = host;
    this.#projection = projection;
    this.#version = projection.version ?? 1;
    if (!Number.isSafeInteger(this.#version) || this.#version < 1) {
      throw new InvalidInputError('version', 'must be a positive integer');
    }
    this.#checkpoint = `projection:${projection.name}:v${this.#version}`;
    this.#options = {
      batchSize: options.batchSize ?? 500,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      leaseRetryMs: options.leaseRetryMs ?? 1000,
      maxFailures: options.maxFailures ?? 10,
    };
    for (const [key, value] of Object.entries(this.#options)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new InvalidInputError(key, 'must be a positive integer');
    }
    this.done = this.#run();
  }

  /** Stops after the batch in hand and gives up the lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeup.wake();
    await this.done;
  }

  /** Resolves once this runner has committed every event up to `position`. */
  waitFor(position: number): Promise<void> {
    return this.#progress.waitFor(position);
  }

  async status(): Promise<ProjectionStatus> {
    const { client, schema } = this.#host;
    const [head, stored] = await Promise.all([
      readHeadPosition(client, schema),
      readCheckpoint(client, schema, this.#checkpoint),
    ]);
    const position = stored ?? 0;
    const lag = Math.max(0, head - position);
    const now = Date.now();
    this.#samples = this.#samples.filter(([at]) => now - at < 5000);
    const [first, last] = [this.#samples[0], this.#samples.at(-1)];
    const eventsPerSecond =
      first && last && last[0] > first[0] ? ((last[1] - first[1]) * 1000) / (last[0] - first[0]) : 0;
    return {
      name: this.#projection.name,
      version: this.#version,
      eventsPerSecond,
      etaSeconds: lag === 0 ? 0 : eventsPerSecond > 0 ? lag / eventsPerSecond : null,
      state: this.#state,
      leader: this.#leader,
      position,
      head,
      lag,
      lastError: this.#lastError,
    };
  }

  async #run(): Promise<void> {
    try {
      while (!this.#stopped) {
        let led = false;
        try {
          const session = await this.#host.client.session();
          try {
            if (await this.#takeLease(session)) {
              led = true;
              this.#leader = true;
              await this.#lead(session);
            }
          } finally {
            this.#leader = false;
            // A standby gives its connection back while it waits: it must not starve the pool.
            await this.#giveUpLease(session);
          }
        } catch (error) {
          // The database may be down or restarting: keep trying, a lease round at a time.
          this.#lastError = toAnnalsError(error).message;
        }
        if (this.#state === 'faulted') return;
        if (!led && !this.#stopped) {
          this.#state = 'standby';
          await this.#wakeup.sleep(this.#options.leaseRetryMs);
        }
      }
      this.#state = 'stopped';
    } finally {
      this.#progress.end(`projection ${this.#state}`);
    }
  }

  #leaseKeys(): [string, string] {
    return ['annals.projection', `${this.#host.schema}.${this.#checkpoint}`];
  }

  async #takeLease(session: SqlSession): Promise<boolean> {
    const [row] = await session.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtext($1), hashtext($2)) as locked',
      this.#leaseKeys(),
    );
    return row?.locked === true;
  }

  async #giveUpLease(session: SqlSession): Promise<void> {
    try {
      await session.query('select pg_advisory_unlock(hashtext($1), hashtext($2))', this.#leaseKeys());
      await session.release();
    } catch {
      await session.release(true);
    }
  }

  /** Runs batches while this runner holds the lease. */
  async #lead(session: SqlSession): Promise<void> {
    const { client, onAppended } = this.#host;
    let lost = false;
    void session.lost.then(() => {
      lost = true;
      this.#wakeup.wake();
    });
    const stopListening = await onAppended(() => this.#wakeup.wake());
    try {
      const setup = this.#projection.setup;
      if (setup) await client.transaction((tx) => setup(tx));
      let failures = 0;
      while (!this.#stopped && !lost) {
        this.#wakeup.clear();
        let count: number;
        try {
          count = await this.#batch();
          failures = 0;
        } catch (error) {
          this.#lastError = error instanceof Error ? error.message : String(error);
          if (++failures >= this.#options.maxFailures) {
            this.#state = 'faulted';
            return;
          }
          await this.#wakeup.sleep(Math.min(5000, 100 * 2 ** failures));
          continue;
        }
        if (count < this.#options.batchSize) {
          this.#state = 'live';
          if (count === 0) await this.#wakeup.sleep(this.#options.pollIntervalMs);
        } else {
          this.#state = 'catching-up';
        }
      }
    } finally {
      stopListening();
    }
  }

  /** One batch in one transaction; returns how many events it applied. */
  async #batch(): Promise<number> {
    const { client, schema } = this.#host;
    const eventTypes = projectionEventTypes(this.#projection);
    const [count, last] = await client.transaction(async (tx) => {
      const position = await lockCheckpoint(tx, schema, this.#checkpoint);
      // Read first: every event up to this head is visible to the page read below.
      const head = await readHeadPosition(tx, schema);
      const events = await readAllPage(tx, schema, position, this.#options.batchSize, {
        categories: this.#projection.categories,
        eventTypes,
      });
      await applyProjection(this.#projection, events, tx, documents(tx, schema));
      // A short page saw every matching event up to the head: the events between that it
      // skipped by filter need no second look, so the checkpoint moves to the head.
      const end = Math.max(events.at(-1)?.position ?? position, events.length < this.#options.batchSize ? head : 0);
      if (end > position) {
        await tx.query(
          `update "${schema}".checkpoints set position = $2, updated_at = now() where name = $1 and position = $3`,
          [this.#checkpoint, end, position],
        );
      }
      return [events.length, end] as const;
    });
    this.#samples.push([Date.now(), last]);
    if (this.#samples.length > 1000) this.#samples.splice(0, 500);
    this.#progress.reach(last);
    return count;
  }
}
