/**
 * Coalesces concurrent appends into one database call.
 *
 * Why: every append must commit durably, and appends reserve positions one transaction at a
 * time (the log lock, see sql/0001_event_store.sql), so one append per transaction would cap
 * throughput at one commit latency per append. Appends that arrive while a call is in flight
 * wait in a queue and leave together in the next call, each with its own outcome: one
 * append's conflict does not fail its neighbours.
 *
 * How:
 * - Appends leave as soon as a slot is free (fewer than `concurrency` calls in flight), at
 *   the next turn of the event loop (setImmediate, no timer): callers woken by one batch
 *   queue their next appends in promise continuations, which all run before that turn, so
 *   they leave together instead of the first one alone.
 * - A batch takes queued appends in arrival order up to `maxEvents` events and `maxBytes`
 *   payload bytes (a larger single append goes alone), skipping any append that touches a stream already in this batch or
 *   in one still in flight: it leaves later, so appends to one stream are applied in the
 *   order they were made.
 * - An append whose own check fails (a conflict, a reused id) gets its own error; the others
 *   of the batch were stored and get their results.
 * - If a whole call fails (a unique violation from two appends reusing an event id, a
 *   deadlock, a lost connection...), the database rolled all of it back; each append of a
 *   multi-append batch is then retried on its own, so every caller gets its own answer.
 *   Event ids make those retries idempotent.
 */
import type { PreparedWrite } from '../validation.js';

/** One append's own outcome within a batch that as a whole went through. */
export type Settled<Result> = { ok: true; value: Result } | { ok: false; error: unknown };

/**
 * Runs one batch: `appends[i]` is one append's writes; returns one settled outcome per append,
 * in order. It throws only when the whole call failed (nothing was stored).
 */
export type BatchRunner<Result> = (appends: readonly (readonly PreparedWrite[])[]) => Promise<Settled<Result>[]>;

interface Pending<Result> {
  writes: readonly PreparedWrite[];
  eventCount: number;
  bytes: number;
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

export interface AppendBatcherOptions {
  maxEvents: number;
  /** Most payload bytes of one call (see `maxAppendBytes`); unlimited when not given. */
  maxBytes?: number;
  concurrency: number;
}

export class AppendBatcher<Result> {
  readonly #run: BatchRunner<Result>;
  readonly #options: AppendBatcherOptions;
  #queue: Pending<Result>[] = [];
  #inFlight = 0;
  #pumpScheduled = false;
  /** Streams with an append in flight: no second batch may touch them until it is answered. */
  readonly #busy = new Set<string>();
  #idle: (() => void)[] = [];

  constructor(run: BatchRunner<Result>, options: AppendBatcherOptions) {
    this.#run = run;
    this.#options = options;
  }

  /** Queues one append; resolves with its own result. */
  append(writes: readonly PreparedWrite[]): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const eventCount = writes.reduce((sum, write) => sum + write.events.length, 0);
      const bytes = writes.reduce((sum, write) => sum + (write.bytes ?? 0), 0);
      this.#queue.push({ writes, eventCount, bytes, resolve, reject });
      this.#schedulePump();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  drain(): Promise<void> {
    if (this.#inFlight === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Pumps once the current burst of promise continuations has run: callers woken by the last
   * batch queue their next appends in those continuations, and should leave together rather
   * than the first one alone.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#options.concurrency && this.#queue.length > 0) {
      const batch = this.#takeBatch();
      if (batch.length === 0) return;
      const streams = batch.flatMap((pending) => pending.writes.map((write) => write.streamId));
      for (const stream of streams) this.#busy.add(stream);
      this.#inFlight++;
      void this.#send(batch).finally(() => {
        for (const stream of streams) this.#busy.delete(stream);
        this.#inFlight--;
        this.#schedulePump();
        if (this.#inFlight === 0 && this.#queue.length === 0) {
          for (const resolve of this.#idle.splice(0)) resolve();
        }
      });
    }
  }

  #takeBatch(): Pending<Result>[] {
    const batch: Pending<Result>[] = [];
    const streams = new Set<string>(this.#busy);
    const rest: Pending<Result>[] = [];
    let events = 0;
    let bytes = 0;
    const maxBytes = this.#options.maxBytes ?? Number.POSITIVE_INFINITY;
    for (const pending of this.#queue) {
      const fits =
        batch.length === 0 ||
        (events + pending.eventCount <= this.#options.maxEvents && bytes + pending.bytes <= maxBytes);
      const free = pending.writes.every((write) => !streams.has(write.streamId));
      if (fits && free) {
        batch.push(pending);
        events += pending.eventCount;
        bytes += pending.bytes;
      } else {
        rest.push(pending);
      }
      // Streams of skipped appends are reserved too, so a later append to the same stream
      // cannot overtake an earlier one.
      for (const write of pending.writes) streams.add(write.streamId);
    }
    this.#queue = rest;
    return batch;
  }

  async #send(batch: Pending<Result>[]): Promise<void> {
    let results: Settled<Result>[];
    try {
      results = await this.#run(batch.map((pending) => pending.writes));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      await Promise.all(batch.map((pending) => this.#send([pending])));
      return;
    }
    batch.forEach((pending, i) => {
      const result = results[i];
      if (result?.ok) pending.resolve(result.value);
      else pending.reject(result ? result.error : new Error('no outcome for this append'));
    });
  }
}
