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

import { projectionLease, tryLockForSession, unlockForSession } from '../db/locks.js';
import type { SqlSession } from '../db/sql-client.js';
import { InvalidInputError, toAnnalsError } from '../errors.js';
import { lockCheckpoint, moveCheckpoint, readCheckpoint } from '../queries/checkpoints.js';
import { documents } from '../queries/documents.js';
import { readHeadPosition } from '../queries/read-all.js';
import { readAllEvents } from '../store/event-reads.js';
import { batchAttributes, inSpan, linksOf } from '../tracing.js';
import { assertDuration, readOptions } from '../validation.js';
import { describeError, type WorkerHost, WorkerLoop } from '../workers/worker-loop.js';
import { applyProjection, checkProjection, type Projection, projectionEventTypes } from './projection.js';

/** Options of `projections(store).run`. */
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

/** Runs one projection; see the module comment. */
export class ProjectionRunner {
  readonly #host: WorkerHost;
  readonly #projection: Projection;
  readonly #checkpoint: string;
  readonly #version: number;
  /** (time, position) of recent batches, for the rate. */
  #samples: [number, number][] = [];
  readonly #options: Required<ProjectionRunnerOptions>;
  readonly #loop = new WorkerLoop();
  #state: ProjectionStatus['state'] = 'standby';
  #leader = false;

  /** @internal Use `projections(store).run`. */
  constructor(host: WorkerHost, projection: Projection, options: ProjectionRunnerOptions = {}) {
    checkProjection(projection);
    this.#host = host;
    this.#projection = projection;
    this.#version = projection.version ?? 1;
    if (!Number.isSafeInteger(this.#version) || this.#version < 1) {
      throw new InvalidInputError('version', 'must be a positive integer');
    }
    this.#checkpoint = `projection:${projection.name}:v${this.#version}`;
    if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
    const given = readOptions<typeof options>(options, 'options');
    this.#options = {
      batchSize: given.batchSize ?? 500,
      pollIntervalMs: given.pollIntervalMs ?? 1000,
      leaseRetryMs: given.leaseRetryMs ?? 1000,
      maxFailures: given.maxFailures ?? 10,
    };
    for (const [key, value] of Object.entries(this.#options)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new InvalidInputError(key, 'must be a positive integer');
    }
    assertDuration(this.#options.pollIntervalMs, 'pollIntervalMs');
    assertDuration(this.#options.leaseRetryMs, 'leaseRetryMs');
    this.#loop.start(
      () => this.#run(),
      () => `projection ${this.#state}`,
    );
  }

  /** Resolves when the runner stopped or faulted. */
  get done(): Promise<void> {
    return this.#loop.done;
  }

  /** Stops after the batch in hand and gives up the lease. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Resolves once this runner has committed every event up to `position`. */
  waitFor(position: number): Promise<void> {
    return this.#loop.waitFor(position);
  }

  async status(): Promise<ProjectionStatus> {
    const { client, schema } = this.#host;
    const [head, stored] = await Promise.all([
      readHeadPosition(client, schema),
      readCheckpoint(client, schema, this.#checkpoint),
    ]).catch((error: unknown) => {
      throw toAnnalsError(error);
    });
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
      lastError: this.#loop.lastError,
    };
  }

  async #run(): Promise<void> {
    const loop = this.#loop;
    try {
      while (!loop.stopped) {
        let led = false;
        try {
          const session = await this.#host.client.session();
          try {
            if (await tryLockForSession(session, this.#lease())) {
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
          loop.lastError = describeError(error);
        }
        if (this.#state === 'faulted') return;
        if (!led && !loop.stopped) {
          this.#state = 'standby';
          await loop.idle(this.#options.leaseRetryMs);
        }
      }
      this.#state = 'stopped';
    } finally {
      if (this.#state !== 'faulted') this.#state = 'stopped';
    }
  }

  #lease() {
    return projectionLease(this.#host.schema, this.#checkpoint);
  }

  async #giveUpLease(session: SqlSession): Promise<void> {
    try {
      await unlockForSession(session, this.#lease());
      await session.release();
    } catch {
      await session.release(true);
    }
  }

  /** Runs batches while this runner holds the lease. */
  async #lead(session: SqlSession): Promise<void> {
    const { client } = this.#host;
    const loop = this.#loop;
    let lost = false;
    void session.lost.then(() => {
      lost = true;
      loop.wake();
    });
    const stopListening = await loop.listen(this.#host);
    try {
      const setup = this.#projection.setup;
      if (setup) await client.transaction((tx) => setup(tx));
      while (!loop.stopped && !lost) {
        loop.clearWake();
        let count: number;
        try {
          count = await this.#batch();
          loop.recovered();
        } catch (error) {
          if (loop.failures + 1 >= this.#options.maxFailures) {
            loop.lastError = describeError(error);
            this.#state = 'faulted';
            return;
          }
          await loop.backOff(error);
          continue;
        }
        if (count < this.#options.batchSize) {
          this.#state = 'live';
          if (count === 0) await loop.idle(this.#options.pollIntervalMs);
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
      const events = await readAllEvents(tx, schema, position, this.#options.batchSize, {
        categories: this.#projection.categories,
        eventTypes,
      });
      if (events.length > 0) {
        await inSpan(
          'annals.projection.batch',
          batchAttributes(this.#checkpoint, events),
          () => applyProjection(this.#projection, events, tx, documents(tx, schema)),
          () => linksOf(events),
        );
      }
      // A short page saw every matching event up to the head: the events between that it
      // skipped by filter need no second look, so the checkpoint moves to the head.
      const end = Math.max(events.at(-1)?.position ?? position, events.length < this.#options.batchSize ? head : 0);
      if (end > position) await moveCheckpoint(tx, schema, this.#checkpoint, position, end);
      return [events.length, end] as const;
    });
    this.#samples.push([Date.now(), last]);
    if (this.#samples.length > 1000) this.#samples.splice(0, 500);
    this.#loop.reach(last);
    return count;
  }
}
