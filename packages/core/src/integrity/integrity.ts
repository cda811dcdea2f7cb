/**
 * The integrity facet of a store: seal the log (behind the appends, never on their path),
 * see how far sealing has come, keep a sealer running, and verify every seal against the
 * events as stored. See sql/0005_seals.sql for what a seal covers.
 */
import { InvalidInputError, StreamNotFoundError } from '../errors.js';
import { readLastSealed } from '../queries/seals.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import { assertInteger, assertStreamId, readOptions } from '../validation.js';
import { Sealer, type SealerOptions } from './sealer.js';
import { sealAll } from './sealing.js';
import { type VerifyOptions, type VerifyReport, verifySeals } from './verify.js';

/** How far sealing has come. */
export interface SealStatus {
  /** The last sealed position. */
  sealedUpTo: number;
  /** The log's last position. */
  head: number;
  /** Events not sealed yet. */
  unsealed: number;
}

/** Integrity of one store; see {@link integrity}. */
export interface Integrity {
  /**
   * Seals every event committed when it is called (see {@link Integrity.runSealer} for a
   * sealer that keeps up by itself) and returns how many it sealed: it ends even while writers
   * append, leaving their newer events to the next call. Safe beside a running sealer.
   */
  seal(options?: { batchSize?: number; onProgress?: (sealed: number) => void }): Promise<number>;
  /** How far sealing has come: the last sealed position, the log's head, and the gap. */
  status(): Promise<SealStatus>;
  /**
   * Starts a sealer: it seals the log behind the appends, a batch per transaction, and waits
   * for more. Run one per store (more are safe: they take turns). Events are tamper-evident
   * from their seal on; `status()` shows how many are not sealed yet.
   *
   * @example
   * ```ts
   * import { integrity } from '@annals/core';
   *
   * const sealer = integrity(store).runSealer();
   * // ... appends ...
   * await sealer.waitFor(await store.headPosition());
   * const report = await integrity(store).verify();
   * if (!report.ok) console.error(report.broken[0]?.message);
   * ```
   */
  runSealer(options?: SealerOptions): Sealer;
  /**
   * Recomputes the seals of the whole store, or of one stream, from the events as stored, and
   * reports every link that does not hold (the first one first); for the whole store, also
   * checks the log chain (and `anchor`, when given) and lists subject keys lost without a
   * recorded erasure. Sealed events only: seal first to cover the latest appends.
   *
   * @throws {@link StreamNotFoundError} when `streamId` names a stream with no events and no seals.
   */
  verify(options?: VerifyOptions): Promise<VerifyReport>;
}

/** The integrity facet of `store`. A sealer runs until stopped, or until the store closes. */
export function integrity(store: EventStore): Integrity {
  const context = contextOf(store);
  const { schema } = context;
  return {
    async seal(options) {
      context.assertOpen();
      const { batchSize = 2000, onProgress } = readOptions<{
        batchSize: number;
        onProgress: (sealed: number) => void;
      }>(options, 'options');
      assertInteger(batchSize, 'batchSize', 1);
      if (onProgress !== undefined && typeof onProgress !== 'function') {
        throw new InvalidInputError('onProgress', 'must be a function');
      }
      return context.query((client) => sealAll(client, schema, { batchSize, onProgress }));
    },
    async status() {
      const sealedUpTo = await context.query((db) => readLastSealed(db, schema));
      const head = await store.headPosition();
      return { sealedUpTo, head, unsealed: Math.max(0, head - sealedUpTo) };
    },
    runSealer(options) {
      context.assertOpen();
      return context.track(new Sealer(context, options));
    },
    async verify(options) {
      context.assertOpen();
      const {
        streamId,
        anchor: given,
        pageSize = 2000,
        maxBroken = 100,
        onProgress,
      } = readOptions<VerifyOptions>(options, 'options');
      const anchor =
        given === undefined ? undefined : readOptions<NonNullable<VerifyOptions['anchor']>>(given, 'anchor');
      if (streamId !== undefined) assertStreamId(streamId, 'streamId', context.options.maxStreamIdLength);
      if (anchor !== undefined) {
        assertInteger(anchor.position, 'anchor.position', 1);
        if (typeof anchor.hash !== 'string' || !/^[0-9a-f]{64}$/i.test(anchor.hash)) {
          throw new InvalidInputError('anchor.hash', 'must be 64 hexadecimal digits (a headHash)');
        }
        if (streamId !== undefined) throw new InvalidInputError('anchor', 'checks the whole log: not with streamId');
      }
      assertInteger(pageSize, 'pageSize', 1);
      assertInteger(maxBroken, 'maxBroken', 1);
      if (onProgress !== undefined && typeof onProgress !== 'function') {
        throw new InvalidInputError('onProgress', 'must be a function');
      }
      const checked = anchor as VerifyOptions['anchor'];
      const report = await verifySeals(context.client, schema, {
        streamId,
        anchor: checked,
        pageSize,
        maxBroken,
        onProgress,
      });
      if (streamId !== undefined && report.checked === 0 && !(await store.getStream(streamId))?.exists) {
        throw new StreamNotFoundError(streamId);
      }
      return report;
    },
  };
}
