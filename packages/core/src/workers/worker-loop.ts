/**
 * The lifecycle every background worker of a store shares: subscriptions, projection
 * runners, the sealer and consumer-group members each own one `WorkerLoop` and write only
 * their step.
 *
 * - start: `start(body)` runs the worker's loop once; `done` resolves when it has ended
 *   (stopped or faulted), never rejects, and the store's `close` waits for it.
 * - stop: `stop()` sets `stopped`, cuts the current sleep short and waits for `done`; a loop
 *   checks `stopped` between steps, so the step in hand finishes first.
 * - wake-up: `listen(host)` wakes the loop on every append of its store (NOTIFY) and after a
 *   lost LISTEN connection came back; `idle(ms)` sleeps until then or `ms`. NOTIFY is only a
 *   hint: the loop reads again after `ms` anyway.
 * - backoff: `backOff(error)` records the error and sleeps min(5 s, 100 ms x 2^n) for the
 *   n-th failure in a row; `recovered()` after a good step starts the count again.
 * - progress: `reach(position)` after a step, `waitFor(position)` for callers; waits reject
 *   once the loop has ended short of their position.
 */
import type { SqlClient } from '../db/sql-client.js';
import { PositionWaiters } from './position-waiters.js';
import { Wakeup } from './wakeup.js';

/** @internal What a worker needs of its store. */
export interface WorkerHost {
  client: SqlClient;
  schema: string;
  /** Calls `wake` after appends (and after a lost LISTEN connection came back); returns the way to stop. */
  onAppended(wake: () => void): Promise<() => void>;
  /** The store's options a worker checks its own against (the longest stream id). */
  options?: { readonly maxStreamIdLength: number };
}

/** Longest pause between two tries after failures. */
const maxBackoffMs = 5000;

/** @internal One worker's loop lifecycle; see the module comment. */
export class WorkerLoop {
  readonly #wakeup = new Wakeup();
  readonly #progress = new PositionWaiters();
  #stopped = false;
  #failures = 0;
  #done: Promise<void> = Promise.resolve();
  /** The last error a step met, kept for `status()`. */
  lastError: string | undefined;

  /** Whether `stop()` was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Resolves when the loop has ended. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** The last position reached. */
  get position(): number {
    return this.#progress.position;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Runs `body` as the loop. When it ends, waits for positions not reached reject with
   * `endedAs()` (e.g. "subscription faulted").
   */
  start(body: () => Promise<void>, endedAs: () => string): void {
    this.#done = (async () => {
      try {
        await body();
      } catch (error) {
        this.lastError = describeError(error);
      } finally {
        this.#progress.end(endedAs());
      }
    })();
  }

  /** Stops after the step in hand; resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeup.wake();
    await this.#done;
  }

  /** Ends the current sleep (or the next one). */
  wake(): void {
    this.#wakeup.wake();
  }

  /** Forgets wakes that came before a read which will see their events anyway. */
  clearWake(): void {
    this.#wakeup.clear();
  }

  /** Sleeps up to `ms`, less when woken or stopped. */
  idle(ms: number): Promise<void> {
    return this.#wakeup.sleep(ms);
  }

  /** Wakes this loop after every append of `host`'s store; returns the way to stop. */
  listen(host: WorkerHost): Promise<() => void> {
    return host.onAppended(() => this.#wakeup.wake());
  }

  /** Records a failed step and sleeps before the next try; returns the failures in a row. */
  async backOff(error: unknown): Promise<number> {
    this.lastError = describeError(error);
    const failures = ++this.#failures;
    await this.#wakeup.sleep(Math.min(maxBackoffMs, 100 * 2 ** failures));
    return failures;
  }

  /** A step succeeded: the next failure backs off from the start. */
  recovered(): void {
    this.#failures = 0;
  }

  /** Records that `position` was reached and wakes those waiting for it. */
  reach(position: number): void {
    this.#progress.reach(position);
  }

  /** Resolves once `position` is reached; rejects if the loop ends first. */
  waitFor(position: number): Promise<void> {
    return this.#progress.waitFor(position);
  }

  /** Makes every current and later wait reject now (a fault), before the loop has ended. */
  endWaits(why: string): void {
    this.#progress.end(why);
  }
}

/** The message of an error, whatever was thrown. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
