/**
 * Rebuilds of the app's projections started over HTTP: one at a time per projection and
 * tenant, run in the background, their progress kept in memory (the last one per projection)
 * for `GET /projections/<name>/rebuild`.
 *
 * A rebuild brings the projection's read model from its checkpoint to the log's head as it
 * was at the start, as `projections(store).rebuild` does (a runner, waited for up to that
 * head, then stopped). It is done here with `run` and the runner in hand, because a runner
 * of the same projection may already hold its lease (the server's own, `--projections`): the
 * rebuild's runner then stands by, and the rebuild is done once the checkpoint, whoever moved
 * it, reaches the target, instead of waiting for a lease that never comes.
 */
import {
  type EventStore,
  type Projection,
  type ProjectionRunner,
  type ProjectionRunnerOptions,
  projections,
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
    let runner: ProjectionRunner | undefined;
    try {
      job.target = await this.#store.headPosition();
      runner = projections(this.#store).run(projection, options);
      job.position = (await runner.status()).position;
    } catch (error) {
      await runner?.stop().catch(() => {});
      this.#finish(job, 'failed', messageOf(error));
      return { ...job };
    }
    void this.#follow(job, runner, Date.now());
    return { ...job };
  }

  async #follow(job: RebuildProgress, runner: ProjectionRunner, startedMs: number): Promise<void> {
    const target = job.target ?? 0;
    let first: number | undefined;
    let ended = false;
    const update = async () => {
      const status = await runner.status();
      first ??= status.position;
      const seconds = (Date.now() - startedMs) / 1000;
      // The runner's recent rate; when another runner does the work, the rebuild's average.
      const rate =
        status.eventsPerSecond > 0 ? status.eventsPerSecond : seconds > 0 ? (status.position - first) / seconds : 0;
      const left = Math.max(0, target - status.position);
      job.position = status.position;
      job.eventsPerSecond = rate;
      job.etaSeconds = left === 0 ? 0 : rate > 0 ? left / rate : null;
      return status;
    };
    const watch = async () => {
      while (!ended) {
        const status = await update();
        if (status.position >= target) return;
        if (status.state === 'faulted') throw new Error(status.lastError ?? 'the projection faulted');
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    };
    const reached = runner.waitFor(target);
    const watched = watch();
    // The race's loser may reject later: that is expected, not unhandled.
    reached.catch(() => {});
    watched.catch(() => {});
    try {
      await Promise.race([reached, watched]);
      ended = true;
      await update().catch(() => {});
      this.#finish(job, 'done', null);
    } catch (error) {
      ended = true;
      const status = await runner.status().catch(() => undefined);
      this.#finish(job, 'failed', status?.lastError ?? messageOf(error));
    } finally {
      ended = true;
      await runner.stop().catch(() => {});
    }
  }

  #finish(job: RebuildProgress, state: 'done' | 'failed', error: string | null): void {
    job.state = state;
    job.error = error;
    job.finishedAt = new Date().toISOString();
    if (state === 'done') job.etaSeconds = 0;
  }
}
