/**
 * Rebuilds of the app's projections started over HTTP: one at a time per projection and
 * tenant, run in the background, their progress kept in memory (the last one per projection)
 * for `GET /projections/<name>/rebuild`.
 *
 * A rebuild is `projections(store).rebuild`: from the projection's checkpoint to the log's
 * head as it was at the start. It is done once the checkpoint reaches that head, whichever
 * runner moved it, so it also ends while the server's own runner (`--projections`) holds the
 * projection's lease.
 */
import {
  type EventStore,
  type Projection,
  type ProjectionRunnerOptions,
  type ProjectionStatus,
  projections,
  subscriptions,
} from '@annals/core';
import { HttpProblem, problem } from '../problems.js';

/** Where a rebuild is; see `RebuildProgress` in schemas.ts. */
export interface RebuildProgress {
  name: string;
  version: number;
  state: 'idle' | 'running' | 'done' | 'failed';
  position: number | null;
  target: number | null;
  eventsPerSecond: number | null;
  etaSeconds: number | null;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** How often a running rebuild reads its runner's status. */
const pollMs = 200;

const idle = (projection: Projection): RebuildProgress => ({
  name: projection.name,
  version: projection.version ?? 1,
  state: 'idle',
  position: null,
  target: null,
  eventsPerSecond: null,
  etaSeconds: null,
  error: null,
  startedAt: null,
  finishedAt: null,
});

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The rebuilds of one tenant's store, by projection name. */
export class RebuildJobs {
  readonly #store: EventStore;
  readonly #jobs = new Map<string, RebuildProgress>();

  constructor(store: EventStore) {
    this.#store = store;
  }

  /** The last rebuild of `projection` (idle when none was started). */
  progress(projection: Projection): RebuildProgress {
    return { ...(this.#jobs.get(projection.name) ?? idle(projection)) };
  }

  /**
   * Starts a rebuild of `projection` in the background and answers its first progress.
   * @throws {@link HttpProblem} 409 `REBUILD_RUNNING` while one of it is running.
   */
  async start(projection: Projection, options: ProjectionRunnerOptions): Promise<RebuildProgress> {
    if (this.#jobs.get(projection.name)?.state === 'running') {
      throw new HttpProblem(
        problem(409, 'REBUILD_RUNNING', `a rebuild of projection ${JSON.stringify(projection.name)} is running`),
      );
    }
    // Claimed before the first await, so a second start at the same moment sees it running.
    const job: RebuildProgress = { ...idle(projection), state: 'running', startedAt: new Date().toISOString() };
    this.#jobs.set(projection.name, job);
    try {
      job.target = await this.#store.headPosition();
      job.position = await this.#checkpoint(projection);
    } catch (error) {
      this.#finish(job, 'failed', messageOf(error));
      return { ...job };
    }
    void this.#follow(job, projection, options);
    return { ...job };
  }

  /** The projection's stored checkpoint (0 before its first batch). */
  async #checkpoint(projection: Projection): Promise<number> {
    const name = `projection:${projection.name}:v${projection.version ?? 1}`;
    const found = (await subscriptions(this.#store).checkpoints()).find((c) => c.name === name);
    return found?.position ?? 0;
  }

  async #follow(job: RebuildProgress, projection: Projection, options: ProjectionRunnerOptions): Promise<void> {
    const target = job.target ?? 0;
    const startedMs = Date.now();
    const first = job.position ?? 0;
    const update = (status: ProjectionStatus) => {
      const seconds = (Date.now() - startedMs) / 1000;
      // The runner's recent rate; when another runner does the work, the rebuild's average.
      const rate =
        status.eventsPerSecond > 0 ? status.eventsPerSecond : seconds > 0 ? (status.position - first) / seconds : 0;
      const left = Math.max(0, target - status.position);
      job.position = status.position;
      job.eventsPerSecond = rate;
      job.etaSeconds = left === 0 ? 0 : rate > 0 ? left / rate : null;
    };
    try {
      update(
        await projections(this.#store).rebuild(projection, {
          ...options,
          progressIntervalMs: pollMs,
          onProgress: update,
        }),
      );
      this.#finish(job, 'done', null);
    } catch (error) {
      job.position = await this.#checkpoint(projection).catch(() => job.position);
      this.#finish(job, 'failed', messageOf(error));
    }
  }

  #finish(job: RebuildProgress, state: 'done' | 'failed', error: string | null): void {
    job.state = state;
    job.error = error;
    job.finishedAt = new Date().toISOString();
    if (state === 'done') job.etaSeconds = 0;
  }
}
