/**
 * The one way events get into the log. Plain appends, multi-stream appends, the command
 * handler (through `append`) and the erasure record of `personalData(store).forget` all go
 * through here, so every event is checked, encrypted and projected the same way:
 *
 * 1. prepare: check and serialize the writes (ids made, sizes checked, before any SQL), and
 *    mark the events that hold personal data (subjects checked).
 * 2. coalesce: concurrent appends leave together in one database call (append-batcher.ts),
 *    each with its own outcome. An append inside a caller's transaction skips this step.
 * 3. store: in one transaction when needed (personal data, inline projections), else in one
 *    statement: encrypt personal fields under keys held until commit, call `append_events`,
 *    run the inline projections (bounded, see inline-projections.ts).
 * 4. answer: each append's outcomes become its results or its typed error.
 */
import {
  AppendCoordinator,
  type AppendCoordinatorStatus,
  type ResolvedCoordinatorOptions,
} from '../coordinator/append-coordinator.js';
import type { SqlClient, SqlQueryable } from '../db/sql-client.js';
import { ConcurrencyError, sqlStateOf, toAnnalsError } from '../errors.js';
import type { StoreOptions } from '../options.js';
import { type CompiledPolicy, holdsPersonalData, planPersonalData, protectWrites } from '../personal/personal-data.js';
import type { Projection } from '../projections/projection.js';
import { appendEvents, type WriteOutcome } from '../queries/append-events.js';
import type { AppendResult } from '../types.js';
import { type PreparedWrite, prepareWrites } from '../validation.js';
import { AppendBatcher, type Settled } from './append-batcher.js';
import { toAppendResults } from './append-results.js';
import { applyInline } from './inline-projections.js';
import { report, type StoreInstrumentation } from './instrumentation.js';

/** @internal The store's append path; see the module comment. */
export class AppendPipeline {
  readonly #client: SqlClient;
  readonly #options: Readonly<StoreOptions>;
  readonly #inline: readonly Projection[];
  readonly #policy: CompiledPolicy;
  readonly #batcher: AppendBatcher<AppendResult[]>;
  readonly #instrumentation: StoreInstrumentation;
  #coordinator: AppendCoordinator | undefined;

  constructor(
    client: SqlClient,
    options: Readonly<StoreOptions>,
    inline: readonly Projection[],
    policy: CompiledPolicy,
    instrumentation: StoreInstrumentation = {},
  ) {
    this.#client = client;
    this.#instrumentation = instrumentation;
    this.#options = options;
    this.#inline = inline;
    this.#policy = policy;
    this.#batcher = new AppendBatcher((appends) => this.#runBatch(appends), {
      maxEvents: options.batchMaxEvents,
      maxBytes: options.maxAppendBytes,
      concurrency: options.appendConcurrency,
    });
  }

  /**
   * Starts the append coordinator of this store (PostgreSQL only): from now on its plain
   * appends go through whichever process holds the role.
   */
  startCoordinator(client: SqlClient, options: ResolvedCoordinatorOptions): AppendCoordinator {
    this.#coordinator = new AppendCoordinator(
      client,
      this.#options.schema,
      options,
      (appends) => appendEvents(this.#client, this.#options.schema, appends),
      {
        maxEvents: this.#options.batchMaxEvents,
        maxBytes: this.#options.maxAppendBytes,
        concurrency: this.#options.appendConcurrency,
      },
    );
    return this.#coordinator;
  }

  /** The coordinator's state, if this store has one. */
  coordinatorStatus(): AppendCoordinatorStatus | undefined {
    return this.#coordinator?.status();
  }

  /** Stops the coordinator: appends go direct from here on. */
  async stopCoordinator(): Promise<void> {
    const coordinator = this.#coordinator;
    this.#coordinator = undefined;
    await coordinator?.stop();
  }

  /** Step 1: checks and prepares the writes of one append; throws a typed error, before any SQL. */
  prepare(writes: unknown): PreparedWrite[] {
    const prepared = prepareWrites(writes, this.#options);
    if (this.#policy.size > 0) planPersonalData(this.#policy, prepared, this.#options.maxEventBytes);
    return prepared;
  }

  /** Steps 2-4 for one prepared append, coalesced with concurrent ones. */
  async append(prepared: PreparedWrite[]): Promise<AppendResult[]> {
    const hook = this.#instrumentation.onAppend;
    if (!hook) return this.#batcher.append(prepared);
    const started = performance.now();
    const events = prepared.reduce((sum, write) => sum + write.events.length, 0);
    try {
      const results = await this.#batcher.append(prepared);
      const outcome = results.every((result) => result.duplicate) ? 'duplicate' : 'ok';
      report(hook, { outcome, events, durationMs: performance.now() - started });
      return results;
    } catch (error) {
      const outcome = error instanceof ConcurrencyError ? 'conflict' : 'error';
      report(hook, { outcome, events, durationMs: performance.now() - started });
      throw error;
    }
  }

  /**
   * Steps 3-4 for one prepared append inside the caller's transaction `tx`, which must end
   * (commit or roll back) soon: it holds the log lock from here until then.
   */
  async appendInTransaction(tx: SqlQueryable, prepared: PreparedWrite[]): Promise<AppendResult[]> {
    const [outcomes] = await this.#store(tx, [prepared]);
    return toAppendResults(prepared, outcomes ?? []);
  }

  /** Resolves once no append is queued or in flight. */
  drain(): Promise<void> {
    return this.#batcher.drain();
  }

  /** Step 3 inside `tx`: encrypt, append, project. */
  async #store(tx: SqlQueryable, appends: readonly (readonly PreparedWrite[])[]): Promise<WriteOutcome[][]> {
    const personal = this.#policy.size > 0 && holdsPersonalData(appends);
    // Personal fields are encrypted in the append's transaction, under keys it holds until
    // commit; inline projections see them plain, like readers.
    const stored = personal ? await protectWrites(tx, this.#options.schema, appends) : appends;
    const outcomes = await appendEvents(tx, this.#options.schema, stored);
    if (this.#inline.length > 0) {
      await applyInline(
        this.#inline,
        tx,
        this.#options.schema,
        appends,
        outcomes,
        this.#options.inlineProjectionTimeoutMs,
      );
    }
    return outcomes;
  }

  /**
   * Steps 3-4 for one coalesced batch. Plain appends (one statement: no inline projection, no
   * personal data) go through the append coordinator when there is one; those it did not
   * store, and every other batch, run here.
   */
  async #runBatch(appends: readonly (readonly PreparedWrite[])[]): Promise<Settled<AppendResult[]>[]> {
    const oneStatement = this.#inline.length === 0 && !(this.#policy.size > 0 && holdsPersonalData(appends));
    const coordinator = this.#coordinator;
    if (!oneStatement || !coordinator) return this.#runDirect(appends, oneStatement);
    const routed = await coordinator.route(appends);
    const left = appends.filter((_, a) => routed[a] === undefined);
    const direct = left.length > 0 ? await this.#runEachDirect(left) : [];
    let d = 0;
    return appends.map((writes, a) => {
      const outcomes = routed[a];
      if (outcomes === undefined) return direct[d++] as Settled<AppendResult[]>;
      try {
        return { ok: true, value: toAppendResults(writes, outcomes) };
      } catch (error) {
        return { ok: false, error };
      }
    });
  }

  /**
   * Appends the coordinator did not store, here: together, or each alone if that call failed
   * as a whole, so each gets its own answer (they may have been stored after all: event ids
   * make the rerun exactly once, reported as a duplicate).
   */
  async #runEachDirect(appends: readonly (readonly PreparedWrite[])[]): Promise<Settled<AppendResult[]>[]> {
    try {
      return await this.#runDirect(appends, true);
    } catch (error) {
      if (appends.length === 1) return [{ ok: false, error }];
      return Promise.all(
        appends.map((writes) =>
          this.#runDirect([writes], true).then(
            ([settled]) => settled as Settled<AppendResult[]>,
            (failure: unknown) => ({ ok: false as const, error: failure }),
          ),
        ),
      );
    }
  }

  /** Steps 3-4 for one batch on this process's own connections. */
  async #runDirect(
    appends: readonly (readonly PreparedWrite[])[],
    oneStatement: boolean,
  ): Promise<Settled<AppendResult[]>[]> {
    const schema = this.#options.schema;
    const run = () =>
      oneStatement
        ? appendEvents(this.#client, schema, appends)
        : this.#client.transaction((tx) => this.#store(tx, appends));
    const started = performance.now();
    const events = appends.reduce((sum, writes) => sum + writes.reduce((n, write) => n + write.events.length, 0), 0);
    const reportBatch = (failed: boolean) =>
      report(this.#instrumentation.onAppendBatch, {
        appends: appends.length,
        events,
        durationMs: performance.now() - started,
        failed,
      });
    let outcomes: WriteOutcome[][];
    try {
      outcomes = await run();
    } catch (error) {
      reportBatch(true);
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
    reportBatch(false);
    return appends.map((writes, a) => {
      try {
        return { ok: true, value: toAppendResults(writes, outcomes[a] ?? []) };
      } catch (error) {
        return { ok: false, error };
      }
    });
  }
}
