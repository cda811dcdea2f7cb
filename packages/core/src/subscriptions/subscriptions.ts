/**
 * The subscriptions facet of a store: deliver the log to handlers (alone or as a consumer
 * group), and look after what they left behind (checkpoints, parked events).
 */
import { InvalidInputError } from '../errors.js';
import {
  type CheckpointStatus,
  listParked,
  type ParkedEvent,
  readCheckpointStatuses,
  unparkEvent,
} from '../queries/checkpoints.js';
import { readHeadPosition } from '../queries/read-all.js';
import { readAllEvents } from '../store/event-reads.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import type { RecordedEvent } from '../types.js';
import { assertStreamId } from '../validation.js';
import { ConsumerGroupMember, type ConsumerGroupOptions } from './consumer-group.js';
import { replicaPages, Subscription, type SubscriptionOptions } from './subscription.js';

/** Subscriptions of one store; see {@link subscriptions}. */
export interface Subscriptions {
  /**
   * Delivers the global log to `options.handler`, a page at a time, from the start, the end
   * or a stored checkpoint, then live. See {@link Subscription}.
   *
   * @example
   * ```ts
   * import { subscriptions } from '@annals/core';
   *
   * const mailer = subscriptions(store).subscribe({
   *   name: 'mailer', categories: ['account'],
   *   handler: async (events) => { for (const e of events) await sendMail(e); },
   * });
   * // ...
   * await mailer.stop();
   * ```
   */
  subscribe(options: SubscriptionOptions): Subscription;
  /**
   * Joins a consumer group: members (usually one per process) share a subscription, each
   * stream handled in order by one member at a time. See {@link ConsumerGroupMember}.
   */
  joinGroup(options: ConsumerGroupOptions): ConsumerGroupMember;
  /**
   * Every durable subscription's and projection's stored position, with its lag in events and
   * seconds and its parked events; for the running state of one in this process, ask its
   * `status()`.
   */
  checkpoints(): Promise<CheckpointStatus[]>;
  /** Events the named subscription parked after its retries, oldest first. */
  parked(subscription: string): Promise<ParkedEvent[]>;
  /**
   * Delivers the named subscription's parked events to `handler` again, one at a time; each
   * that succeeds is unparked. Returns how many were replayed and how many failed again.
   */
  replayParked(
    subscription: string,
    handler: (event: RecordedEvent) => Promise<void> | void,
  ): Promise<{ replayed: number; failed: number }>;
}

/** The context of the store a subscription reads from, as a typed error for anything else. */
function guardedContext(store: unknown) {
  try {
    return contextOf(store);
  } catch {
    throw new InvalidInputError('readFrom', 'must be an event store opened by openEventStore (on a replica)');
  }
}

/**
 * The subscriptions of `store`. Subscriptions and group members run until stopped, or until
 * the store closes.
 */
export function subscriptions(store: EventStore): Subscriptions {
  const context = contextOf(store);
  const { schema } = context;
  const parked = (subscription: string) => {
    assertStreamId(subscription, 'subscription', 256);
    return context.query((db) => listParked(db, schema, subscription));
  };
  return {
    subscribe(options) {
      context.assertOpen();
      const readFrom = typeof options === 'object' && options !== null ? options.readFrom : undefined;
      if (readFrom === undefined) return context.track(new Subscription(context, options));
      const replica = guardedContext(readFrom);
      if (replica.schema !== schema) {
        throw new InvalidInputError('readFrom', `must be a store of the same schema (${schema}), on a replica`);
      }
      replica.assertOpen();
      const source = replicaPages(context.client, replica.client, schema, options);
      return context.track(new Subscription(context, options, source, () => readHeadPosition(replica.client, schema)));
    },
    joinGroup(options) {
      context.assertOpen();
      if (typeof options === 'object' && options !== null && 'readFrom' in options) {
        throw new InvalidInputError('readFrom', 'is for subscriptions; a consumer group reads the store it joins on');
      }
      return context.track(new ConsumerGroupMember(context, options));
    },
    checkpoints() {
      return context.query((db) => readCheckpointStatuses(db, schema));
    },
    parked,
    async replayParked(subscription, handler) {
      if (typeof handler !== 'function') throw new InvalidInputError('handler', 'must be a function');
      let replayed = 0;
      let failed = 0;
      for (const event of await parked(subscription)) {
        const [next] = await context.query((db) =>
          readAllEvents(db, schema, event.position - 1, 1, {
            include: { deleted: true, archived: true },
          }),
        );
        // The event parked, or none: its position may hold nothing now (a detached range).
        const stored = next?.position === event.position && next.id === event.eventId ? next : undefined;
        try {
          if (stored) await handler(stored);
          await context.query((db) => unparkEvent(db, schema, subscription, event.position));
          replayed++;
        } catch {
          failed++;
        }
      }
      return { replayed, failed };
    },
  };
}
