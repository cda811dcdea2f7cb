/**
 * The projections facet of a store: run a projection (one active runner across processes),
 * rebuild it with progress (and switch readers to the version it built), build its read model
 * as of a past moment, and read the JSON documents projections write.
 */
import type { SqlQueryable } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import { readCheckpoint } from '../queries/checkpoints.js';
import { type Documents, documents } from '../queries/documents.js';
import { readServingVersion, type ServingVersion, writeServingVersion } from '../queries/projection-versions.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import { assertDuration, assertInteger, readOptions } from '../validation.js';
import { checkProjection, type Projection } from './projection.js';
import { buildProjectionAt } from './projection-at.js';
import { ProjectionRunner, type ProjectionRunnerOptions, type ProjectionStatus } from './projection-runner.js';

export type { ServingVersion };

const assertName = (name: unknown): void => {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new InvalidInputError('name', 'must be a projection name: a string of 1-200 characters');
  }
};

const assertActor = (actor: unknown): void => {
  if (typeof actor !== 'string' || actor.trim() === '' || actor.length > 1000) {
    throw new InvalidInputError('actor', 'must be a non-empty string of at most 1000 characters');
  }
};

/** Options of {@link Projections.rebuild}. */
export interface RebuildOptions extends ProjectionRunnerOptions {
  /** Told the runner's status every `progressIntervalMs`, and once at the end. */
  onProgress?: (status: ProjectionStatus) => void;
  /** @defaultValue 1000 */
  progressIntervalMs?: number;
  /**
   * When the rebuild reaches the head, serve readers this version from then on
   * ({@link Projections.servingVersion}); a rebuild that fails switches nothing.
   * @defaultValue false
   */
  switchOnSuccess?: boolean;
  /** Who switched (recorded with the switch). */
  actor?: string;
}

/** Projections of one store; see {@link projections}. */
export interface Projections {
  /**
   * Runs a projection: read-model writes and checkpoint in one transaction per batch, one
   * runner at a time across processes. See {@link ProjectionRunner}.
   *
   * @example
   * ```ts
   * import { projections } from '@annals/core';
   *
   * const runner = projections(store).run(balances);
   * await runner.waitFor(await store.headPosition());
   * await runner.stop();
   * ```
   */
  run(projection: Projection, options?: ProjectionRunnerOptions): ProjectionRunner;
  /**
   * Builds (or brings up to date) a projection's read model from its checkpoint to the log's
   * head as it is now, reporting progress, then stops. It is done once the stored checkpoint
   * reaches that head, whichever runner moved it (another process's runner may hold the
   * lease). When the runner faults it rejects, naming the error the runner last met. For a rebuild without downtime, give
   * the projection a new `version` writing to new tables: the old version keeps serving
   * meanwhile; switch readers when this resolves, then run the new version as usual (it
   * continues from its checkpoint) and retire the old one.
   *
   * @example
   * ```ts
   * import { projections } from '@annals/core';
   *
   * await projections(store).rebuild({ ...balances, version: 2 }, {
   *   onProgress: (s) => console.log(`${s.position}/${s.head}, ${s.eventsPerSecond}/s, ETA ${s.etaSeconds}s`),
   * });
   * ```
   */
  rebuild(projection: Projection, options?: RebuildOptions): Promise<ProjectionStatus>;
  /**
   * The version of projection `name` readers are served: the one a rebuild with
   * `switchOnSuccess`, or {@link Projections.switchTo}, switched to last (null: never switched;
   * serve the version you run). Readers of a versioned read model read its tables.
   */
  servingVersion(name: string): Promise<ServingVersion | null>;
  /**
   * Serves readers `version` of projection `name` (back to an older one, say). Refused with
   * {@link InvalidInputError} when that version was never built (it has no checkpoint).
   */
  switchTo(name: string, version: number, options?: { actor?: string }): Promise<ServingVersion>;
  /**
   * A projection's read model as it was at a global position or time: built from the log into
   * a scratch schema, handed to `query`, then discarded (one transaction, always rolled back).
   * The projection's own tables must be named without a schema in its `setup` and handlers:
   * they then resolve to the scratch schema. Live read models are not touched.
   *
   * @example
   * ```ts
   * import { projections } from '@annals/core';
   *
   * const lastMonth = await projections(store).at(balances, { time: new Date('2026-10-31T23:59:59Z') },
   *   (tx, documents) => documents.find('account-balances', { match: { status: 'closed' } }));
   * console.log(lastMonth.position, lastMonth.result.length);
   * ```
   * @throws {@link InvalidInputError} for a malformed moment or projection.
   */
  at<T>(
    projection: Projection,
    moment: { position: number } | { time: Date },
    query: (tx: SqlQueryable, documents: Documents) => Promise<T>,
  ): Promise<{ position: number; result: T }>;
  /** JSON documents written by projections (document-style read models), to read and query. */
  readonly documents: Documents;
}

/** How often a rebuild reads the stored checkpoint, in case another runner moves it. */
const checkpointPollMs = 200;

/**
 * Resolves once `runner`'s stored checkpoint reaches `target`, whichever runner moved it: a
 * runner of the same projection elsewhere (a server's own) may hold the lease while this one
 * stands by. Rejects when the runner faults, with the error it last met.
 */
async function checkpointReaches(runner: ProjectionRunner, target: number): Promise<void> {
  let done = false;
  const own = runner.waitFor(target);
  const moved = (async () => {
    while (!done) {
      if ((await runner.status()).position >= target) return;
      await new Promise((resolve) => setTimeout(resolve, checkpointPollMs));
    }
  })();
  // The race's loser may reject later: that is expected, not unhandled.
  own.catch(() => {});
  moved.catch(() => {});
  try {
    await Promise.race([own, moved]);
  } catch (error) {
    const { lastError } = await runner.status().catch(() => ({ lastError: undefined }));
    if (!lastError) throw error;
    throw new Error(`${error instanceof Error ? error.message : String(error)}: ${lastError}`, { cause: error });
  } finally {
    done = true;
  }
}

/** The projections of `store`. Runners run until stopped, or until the store closes. */
export function projections(store: EventStore): Projections {
  const context = contextOf(store);
  const run = (projection: Projection, options?: ProjectionRunnerOptions) => {
    context.assertOpen();
    return context.track(new ProjectionRunner(context, projection, options));
  };
  return {
    run,
    async rebuild(projection, options) {
      const {
        onProgress,
        progressIntervalMs = 1000,
        switchOnSuccess = false,
        actor,
        ...runnerOptions
      } = readOptions<RebuildOptions>(options, 'options');
      if (typeof switchOnSuccess !== 'boolean') throw new InvalidInputError('switchOnSuccess', 'must be a boolean');
      if (actor !== undefined) assertActor(actor);
      if (onProgress !== undefined && typeof onProgress !== 'function') {
        throw new InvalidInputError('onProgress', 'must be a function');
      }
      assertDuration(progressIntervalMs, 'progressIntervalMs');
      const target = await store.headPosition();
      const runner = run(projection, runnerOptions);
      // One status read at a time, so reports arrive in order; a throwing progress callback
      // must not become an unhandled rejection.
      let reporting: Promise<void> | undefined;
      const report = () => {
        reporting ??= runner
          .status()
          .then((status) => onProgress?.(status))
          .catch(() => {})
          .finally(() => {
            reporting = undefined;
          });
      };
      const timer = onProgress ? setInterval(report, progressIntervalMs) : undefined;
      try {
        await checkpointReaches(runner, target);
        clearInterval(timer);
        await reporting;
        const status = await runner.status();
        onProgress?.(status);
        if (switchOnSuccess && status.position >= target && status.state !== 'faulted') {
          await context.query((db) =>
            writeServingVersion(db, context.schema, projection.name, status.version, actor ?? null),
          );
        }
        return status;
      } finally {
        clearInterval(timer);
        await runner.stop();
      }
    },
    async servingVersion(name) {
      context.assertOpen();
      assertName(name);
      return context.query((db) => readServingVersion(db, context.schema, name));
    },
    async switchTo(name, version, options) {
      context.assertOpen();
      assertName(name);
      assertInteger(version, 'version', 1);
      const { actor } = readOptions<{ actor: string }>(options ?? {}, 'options');
      if (actor !== undefined) assertActor(actor);
      return context.query(async (db) => {
        if ((await readCheckpoint(db, context.schema, `projection:${name}:v${version}`)) === null) {
          throw new InvalidInputError('version', `${name} v${version} was never built: it has no checkpoint`);
        }
        await writeServingVersion(db, context.schema, name, version, actor ?? null);
        return (await readServingVersion(db, context.schema, name)) as ServingVersion;
      });
    },
    async at(projection, given, query) {
      context.assertOpen();
      checkProjection(projection);
      if (typeof query !== 'function') throw new InvalidInputError('query', 'must be a function');
      const moment = readOptions<{ position: number; time: Date }>(given, 'at');
      let position: number;
      if ('position' in moment) {
        assertInteger(moment.position, 'at.position', 0);
        position = Math.min(moment.position, await store.headPosition());
      } else if ('time' in moment) {
        position = await store.positionAt(moment.time as Date);
      } else {
        throw new InvalidInputError('at', 'must be { position } or { time }');
      }
      const result = await context.query((client) =>
        buildProjectionAt(client, context.schema, projection, position, query, context.options.pageSize),
      );
      return { position, result };
    },
    get documents() {
      context.assertOpen();
      return documents(context.client, context.schema);
    },
  };
}
