/**
 * A running sealer: seals the log as it grows (see sealing.ts for one step). Catches up a
 * batch at a time, then sleeps until an append's NOTIFY or `pollIntervalMs`. A database
 * failure is retried with backoff (sealing is idempotent: a step either committed its seals
 * or not), so a sealer stops only when told.
 */
import { TamperDetectedError, toAnnalsError } from '../errors.js';
import { readHeadPosition } from '../queries/read-all.js';
import { readLastSealed } from '../queries/seals.js';
import { PositionWaiters } from '../subscriptions/position-waiters.js';
import type { SubscriptionHost } from '../subscriptions/subscription.js';
import { Wakeup } from '../subscriptions/wakeup.js';
import { assertInteger } from '../validation.js';
import { sealStep } from './sealing.js';

/** Options of {@link EventStore.runSealer}. */
export interface SealerOptions {
  /** Events sealed per transaction. @defaultValue 2000 */
  batchSize?: number;
  /** Longest sleep between looks at the log when no NOTIFY comes. @defaultValue 1000 */
  pollIntervalMs?: number;
}

/** Where a sealer is. */
export interface SealerStatus {
  /**
   * `sealing` while catching up, `live` when all was sealed at its last look, `blocked` when it
   * found forged seals (see `lastError`; run `verify`).
   */
  state: 'starting' | 'sealing' | 'live' | 'blocked' | 'stopped';
  /** Last sealed position. */
  sealed: number;
  /** Last position in the log. */
  head: number;
  /** Events not sealed yet. */
  unsealed: number;
  lastError: string | undefined;
}

/** A background sealer; start one with {@link EventStore.runSealer}. */
export class Sealer {
  readonly #host: SubscriptionHost;
  readonly #batchSize: number;
  readonly #pollIntervalMs: number;
  readonly #wakeup = new Wakeup();
  readonly #progress = new PositionWaiters();
  #state: SealerStatus['state'] = 'starting';
  #stopped = false;
  #lastError: string | undefined;
  /** Resolves when the sealer stopped. */
  readonly done: Promise<void>;

  /** @internal Use {@link EventStore.runSealer}. */
  constructor(host: SubscriptionHost, options: SealerOptions = {}) {
    const { batchSize = 2000, pollIntervalMs = 1000 } = options;
    assertInteger(batchSize, 'batchSize', 1);
    assertInteger(pollIntervalMs, 'pollIntervalMs', 1);
    this.#host = host;
    this.#batchSize = batchSize;
    this.#pollIntervalMs = pollIntervalMs;
    this.done = this.#run();
  }

  /** Stops after the step in hand. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeup.wake();
    await this.done;
  }

  /** Resolves once every event up to `position` is sealed (rejects if the sealer stops first). */
  waitFor(position: number): Promise<void> {
    return this.#progress.waitFor(position);
  }

  /** Where this sealer is, with the log's head and the last sealed position as stored now. */
  async status(): Promise<SealerStatus> {
    const { client, schema } = this.#host;
    const [head, sealed] = await Promise.all([readHeadPosition(client, schema), readLastSealed(client, schema)]);
    return { state: this.#state, sealed, head, unsealed: Math.max(0, head - sealed), lastError: this.#lastError };
  }

  async #run(): Promise<void> {
    const { client, schema, onAppended } = this.#host;
    let stopListening = () => {};
    let failures = 0;
    try {
      stopListening = await onAppended(() => this.#wakeup.wake()).catch(() => () => {});
      while (!this.#stopped) {
        this.#wakeup.clear();
        try {
          const { sealed, upTo } = await sealStep(client, schema, this.#batchSize);
          failures = 0;
          // Another sealer may have sealed meanwhile: progress is the table's, not ours.
          this.#progress.reach(upTo);
          if (sealed > 0) {
            this.#state = 'sealing';
            continue;
          }
          this.#state = 'live';
          await this.#wakeup.sleep(this.#pollIntervalMs);
        } catch (error) {
          const failure = toAnnalsError(error);
          this.#lastError = failure.message;
          // Forged seals need a person; a database failure only needs time. Both are retried.
          if (failure instanceof TamperDetectedError) this.#state = 'blocked';
          await this.#wakeup.sleep(Math.min(5000, 100 * 2 ** ++failures));
        }
      }
    } catch (error) {
      this.#lastError = toAnnalsError(error).message;
    } finally {
      this.#state = 'stopped';
      stopListening();
      this.#progress.end('sealer stopped');
    }
  }
}
