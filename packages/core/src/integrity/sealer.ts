/**
 * A running sealer: seals the log as it grows (see sealing.ts for one step). Catches up a
 * batch at a time, then sleeps until an append's NOTIFY or `pollIntervalMs`. A database
 * failure is retried with backoff (sealing is idempotent: a step either committed its seals
 * or not), so a sealer stops only when told.
 */
import { InvalidInputError, TamperDetectedError, toAnnalsError } from '../errors.js';
import { readHeadPosition } from '../queries/read-all.js';
import { readLastSealed } from '../queries/seals.js';
import { assertDuration, assertInteger, readOptions } from '../validation.js';
import { type WorkerHost, WorkerLoop } from '../workers/worker-loop.js';
import { sealStep } from './sealing.js';

/** Options of `integrity(store).runSealer`. */
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

/** A background sealer; start one with `integrity(store).runSealer`. */
export class Sealer {
  readonly #host: WorkerHost;
  readonly #batchSize: number;
  readonly #pollIntervalMs: number;
  readonly #loop = new WorkerLoop();
  #state: SealerStatus['state'] = 'starting';

  /** @internal Use `integrity(store).runSealer`. */
  constructor(host: WorkerHost, options: SealerOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
    const { batchSize = 2000, pollIntervalMs = 1000 } = readOptions<SealerOptions>(options, 'options');
    assertInteger(batchSize, 'batchSize', 1);
    assertDuration(pollIntervalMs, 'pollIntervalMs');
    this.#host = host;
    this.#batchSize = batchSize;
    this.#pollIntervalMs = pollIntervalMs;
    this.#loop.start(
      () => this.#run(),
      () => 'sealer stopped',
    );
  }

  /** Resolves when the sealer stopped. */
  get done(): Promise<void> {
    return this.#loop.done;
  }

  /** Stops after the step in hand. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Resolves once every event up to `position` is sealed (rejects if the sealer stops first). */
  waitFor(position: number): Promise<void> {
    return this.#loop.waitFor(position);
  }

  /** Where this sealer is, with the log's head and the last sealed position as stored now. */
  async status(): Promise<SealerStatus> {
    const { client, schema } = this.#host;
    const [head, sealed] = await Promise.all([readHeadPosition(client, schema), readLastSealed(client, schema)]).catch(
      (error: unknown) => {
        throw toAnnalsError(error);
      },
    );
    return { state: this.#state, sealed, head, unsealed: Math.max(0, head - sealed), lastError: this.#loop.lastError };
  }

  async #run(): Promise<void> {
    const { client, schema } = this.#host;
    const loop = this.#loop;
    let stopListening = () => {};
    try {
      stopListening = await loop.listen(this.#host).catch(() => () => {});
      while (!loop.stopped) {
        loop.clearWake();
        try {
          const { sealed, upTo } = await sealStep(client, schema, this.#batchSize);
          loop.recovered();
          // Another sealer may have sealed meanwhile: progress is the table's, not ours.
          loop.reach(upTo);
          if (sealed > 0) {
            this.#state = 'sealing';
            continue;
          }
          this.#state = 'live';
          await loop.idle(this.#pollIntervalMs);
        } catch (error) {
          // Forged seals need a person; a database failure only needs time. Both are retried.
          if (toAnnalsError(error) instanceof TamperDetectedError) this.#state = 'blocked';
          await loop.backOff(toAnnalsError(error));
        }
      }
    } finally {
      this.#state = 'stopped';
      stopListening();
    }
  }
}
