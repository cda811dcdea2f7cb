/**
 * Catch-up subscriptions (`Read` with `subscription`): a confirmation, the events after the
 * starting point read a page at a time, `caught_up`, then live events through an Annals
 * subscription starting where the catch-up stopped, so each event is sent once and in order.
 * A filtered `$all` subscription also sends a checkpoint every `checkpointInterval` events
 * examined. Cancelling the call stops its Annals subscription at once.
 */
import { randomUUID } from 'node:crypto';
import {
  type EventStore,
  type RecordedEvent,
  StreamDeletedError,
  type Subscription,
  subscriptions,
} from '@annals/core';
import { status } from '@grpc/grpc-js';
import type { GrpcContext } from './context.js';
import { GrpcError, streamDeleted, unauthenticated } from './errors.js';
import type { ReadPlan } from './read-options.js';
import { eventMessage } from './reads.js';
import { type ReadCall, send } from './sink.js';

/** Events read per round trip while catching up. */
const pageSize = 500;

/** How often a live subscription looks at the log when no notification comes. */
const pollIntervalMs = 200;

const timestamp = () => {
  const ms = Date.now();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
};

const positionOf = (position: number) => ({ commit_position: String(position), prepare_position: String(position) });

/** Serves one subscription until the client cancels it or the server closes. */
export async function follow(
  context: GrpcContext,
  store: EventStore,
  call: ReadCall,
  plan: ReadPlan,
  categories: readonly string[] | null,
  watch?: (end: () => void) => () => void,
): Promise<void> {
  const id = randomUUID();
  let live: Subscription | undefined;
  let stopped = false;
  let reason: GrpcError | undefined;
  let wake = () => {};
  const ended = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const stop = (why?: GrpcError) => {
    if (stopped) return;
    stopped = true;
    reason = why;
    context.subscriptions.delete(id);
    void live?.stop();
    wake();
  };
  context.subscriptions.set(id, () => stop(new GrpcError(status.UNAVAILABLE, 'the server is shutting down')));
  call.on('cancelled', () => stop());
  call.on('close', () => stop());
  // A key revoked (or a token expired) while it follows ends the subscription, as SSE does.
  const unwatch = watch?.(() => stop(unauthenticated('the credentials are no longer valid')));
  const scope = categories ? { categories: [...categories] } : {};
  try {
    await send(call, { confirmation: { subscription_id: id } });
    if (plan.stream !== undefined) {
      const stream = plan.stream;
      const info = await store.getStream(stream);
      if (info?.state === 'tombstoned') throw streamDeleted(stream);
      const version = info?.version ?? 0;
      let next = plan.from === 'start' ? 1 : plan.from === 'end' ? version + 1 : plan.from + 2;
      // A soft-deleted stream shows nothing until it is re-opened at its next version.
      if (info?.state === 'deleted') next = Math.max(next, version + 1);
      let head = 0;
      for (;;) {
        head = await store.headPosition();
        if (stopped) break;
        let read = 0;
        try {
          for await (const event of store.readStream(stream, { fromVersion: next, limit: pageSize })) {
            if (stopped) break;
            read++;
            await send(call, eventMessage(event, plan));
            next = event.streamVersion + 1;
          }
        } catch (error) {
          if (!(error instanceof StreamDeletedError) || error.tombstoned) throw error;
        }
        if (read < pageSize) break;
      }
      if (stopped) return;
      await send(call, {
        caught_up: { timestamp: timestamp(), ...(next > 1 ? { stream_revision: String(next - 2) } : {}) },
      });
      live = subscriptions(store).subscribe({
        from: { after: head },
        streamIds: [stream],
        pollIntervalMs,
        handler: async (events: RecordedEvent[]) => {
          for (const event of events) {
            if (stopped) return;
            if (event.streamVersion < next) continue;
            await send(call, eventMessage(event, plan));
            next = event.streamVersion + 1;
          }
        },
      });
    } else {
      let cursor = plan.from === 'start' ? 0 : plan.from === 'end' ? await store.headPosition() : plan.from;
      let examined = 0;
      const deliver = async (event: RecordedEvent) => {
        cursor = event.position;
        if (!plan.filter || plan.filter(event)) await send(call, eventMessage(event, plan));
        if (++examined % plan.checkpointInterval === 0) {
          await send(call, { checkpoint: { ...positionOf(cursor), timestamp: timestamp() } });
        }
      };
      for (;;) {
        let read = 0;
        for await (const event of store.readAll({ after: cursor, limit: pageSize, ...scope })) {
          if (stopped) break;
          read++;
          await deliver(event);
        }
        if (stopped || read < pageSize) break;
      }
      if (stopped) return;
      await send(call, { caught_up: { timestamp: timestamp(), position: positionOf(cursor) } });
      live = subscriptions(store).subscribe({
        from: { after: cursor },
        ...scope,
        pollIntervalMs,
        handler: async (events: RecordedEvent[]) => {
          for (const event of events) {
            if (stopped) return;
            if (event.position <= cursor) continue;
            await deliver(event);
          }
        },
      });
    }
    if (stopped) void live.stop();
    // A live part that ends on its own (the store closing, the database failing past its
    // retries) ends the call, so the client resubscribes rather than waits forever.
    const endedAlone = () => stop(new GrpcError(status.UNAVAILABLE, 'the subscription ended; resubscribe'));
    void live.done.then(endedAlone, endedAlone);
    await ended;
    if (reason) throw reason;
  } finally {
    unwatch?.();
    stop();
  }
}
