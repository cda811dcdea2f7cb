/**
 * The personal-data facet of a store: forget a data subject (erasure, GDPR article 17)
 * without rewriting history. The events stay as stored and their seals still verify; what
 * goes is the subject's key, so its personal fields read as `null` everywhere from then on.
 * The erasure itself is recorded as an event, through the store's one append path.
 */
import { toAnnalsError } from '../errors.js';
import { deleteSubject } from '../queries/subject-keys.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import { assertStreamId, readOptions } from '../validation.js';
import { maxSubjectLength, subjectStream } from './personal-data.js';

/** What forgetting a subject did. */
export interface ForgetResult {
  /** False when the subject had no key (never seen, or already forgotten): nothing was recorded. */
  forgotten: boolean;
  /** Events holding the subject's personal data, now redacted. */
  events: number;
  /** Snapshots of its streams that were dropped (they could hold decrypted data). */
  snapshotsDropped: number;
  /** Position of the recorded `SubjectForgotten` event. */
  position: number | null;
}

/** Personal data of one store; see {@link personalData}. */
export interface PersonalData {
  /**
   * Forgets a data subject: deletes its key, so its personal fields read as `null` everywhere
   * from now on, drops the snapshots of the streams holding its data, blanks the errors of
   * its parked events, and records the erasure as a `SubjectForgotten` event in the stream
   * `$subject-<id>` — all in one transaction. Read models that copied personal fields must
   * react to `SubjectForgotten` (or be rebuilt). Personal data appended for the subject
   * later gets a new key.
   *
   * @example
   * ```ts
   * import { personalData } from '@annals/core';
   *
   * const { forgotten, events } = await personalData(store).forget('customer-7', {
   *   actor: 'dpo@example.com',
   *   reason: 'erasure request #1234',
   * });
   * console.log(forgotten, events);
   * ```
   */
  forget(subjectId: string, context?: { actor?: string; reason?: string }): Promise<ForgetResult>;
}

/** The personal-data facet of `store`. */
export function personalData(store: EventStore): PersonalData {
  const context = contextOf(store);
  return {
    async forget(subjectId, given) {
      context.assertOpen();
      assertStreamId(subjectId, 'subjectId', maxSubjectLength);
      const by = readOptions<{ actor: string; reason: string }>(given, 'context');
      const record = context.pipeline.prepare([
        {
          streamId: subjectStream(subjectId),
          events: [
            {
              type: 'SubjectForgotten',
              data: { subjectId },
              metadata: { ...(by.actor ? { actor: by.actor } : {}), reason: by.reason ?? 'erasure' },
            },
          ],
        },
      ]);
      try {
        return await context.client.transaction(async (tx) => {
          const gone = await deleteSubject(tx, context.schema, subjectId);
          if (!gone.existed) return { forgotten: false, events: gone.events, snapshotsDropped: 0, position: null };
          const [result] = await context.pipeline.appendInTransaction(tx, record);
          return {
            forgotten: true,
            events: gone.events,
            snapshotsDropped: gone.snapshots,
            position: result?.positions[0] ?? null,
          };
        });
      } catch (error) {
        throw toAnnalsError(error);
      }
    },
  };
}
