/**
 * Subscriptions reading the log from a streaming replica: a real physical replica of a private
 * cluster (`pg_basebackup -R`, a hot standby on its own port), appends on the primary, pages
 * from the replica, checkpoints on the primary. Every event once, in order, with the replica's
 * lag reported, and nothing lost when the replica is stopped and started again mid-run.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createPostgresClient,
  type EventStore,
  InvalidInputError,
  openEventStore,
  type RecordedEvent,
  subscriptions,
} from '../src/index.js';
import { backends, openTestStore, sleep } from './support/backends.js';
import { replicaUnavailable, startPrivateCluster } from './support/pg-cluster.js';
import { openReplicaStore, runOn } from './support/replica-store.js';

const unavailable = replicaUnavailable();
if (unavailable) console.warn(`[annals] replica tests skipped: ${unavailable}`);

describe('readFrom: bad input', () => {
  it('refuses what is not a store of the same schema, and a consumer group', async () => {
    const a = await openTestStore(backends[0] as (typeof backends)[number]);
    const b = await openTestStore(backends[0] as (typeof backends)[number]);
    try {
      const handler = () => {};
      for (const readFrom of [{}, 'replica', 42, null]) {
        expect(() => subscriptions(a.store).subscribe({ handler, readFrom: readFrom as never })).toThrow(
          InvalidInputError,
        );
      }
      expect(() => subscriptions(a.store).subscribe({ handler, readFrom: b.store })).toThrow(/same schema/);
      expect(() =>
        subscriptions(a.store).joinGroup({ group: 'g', handler, ...({ readFrom: b.store } as object) }),
      ).toThrow(InvalidInputError);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
});

describe.skipIf(unavailable !== undefined)('subscriptions on a streaming replica', () => {
  it('delivers every event once, in order, through a replica restart, with the lag reported', async () => {
    const primary = await startPrivateCluster();
    const replicaCluster = await primary.startReplica();
    const primaryStore = await openEventStore({
      client: createPostgresClient({ connectionString: primary.url, maxConnections: 6 }),
      schema: 'annals',
    });
    let replicaStore: EventStore | undefined;
    try {
      replicaStore = await openReplicaStore(replicaCluster.url, 'annals');
      const received: RecordedEvent[] = [];
      const delays: number[] = [];
      const appendedAt = new Map<string, number>();
      const subscription = subscriptions(primaryStore).subscribe({
        name: 'replica-reader',
        readFrom: replicaStore,
        batchSize: 500,
        pollIntervalMs: 200,
        handler: (events) => {
          const now = performance.now();
          for (const event of events) {
            received.push(event);
            const at = appendedAt.get(event.id);
            if (at !== undefined) delays.push(now - at);
          }
        },
      });
      const primaryDelays: number[] = [];
      const direct = subscriptions(primaryStore).subscribe({
        batchSize: 500,
        handler: (events) => {
          const now = performance.now();
          for (const event of events) {
            const at = appendedAt.get(event.id);
            if (at !== undefined) primaryDelays.push(now - at);
          }
        },
      });
      const total = 20_000;
      let lagSeen = 0;
      let heldBack = false;
      let unreachable: number | undefined = -1;
      const onReplica = (sql: string) => runOn(replicaCluster.url, sql);
      try {
        for (let done = 0; done < total; done += 100) {
          const events = Array.from({ length: 100 }, (_, i) => ({
            id: randomUUID(),
            type: 'Deposited',
            data: { amount: done + i },
          }));
          for (;;) {
            try {
              const at = performance.now();
              for (const event of events) appendedAt.set(event.id, at);
              await primaryStore.append(`account-${done % 37}`, events);
              break;
            } catch {
              await sleep(50);
            }
          }
          // Replay paused: the replica falls behind, and the status says by how much.
          if (done === 4_000) await onReplica('select pg_wal_replay_pause()');
          if (done === 6_000) {
            const status = await subscription.status();
            lagSeen = status.head - (status.sourceHead ?? status.head);
            // Its pages come from the replica: nothing past the replica's head was delivered.
            heldBack = (received.at(-1)?.position ?? 0) <= (status.sourceHead ?? 0);
            await onReplica('select pg_wal_replay_resume()');
          }
          if (done === 8_000) replicaCluster.stop('fast');
          if (done === 10_000) unreachable = (await subscription.status()).sourceHead;
          if (done === 12_000) replicaCluster.start();
        }
        await subscription.waitFor(total);
        const status = await subscription.status();
        expect(status).toMatchObject({ position: total, head: total, sourceHead: total, lag: 0 });
      } catch (error) {
        throw new Error(`${String(error)}; status ${JSON.stringify(await subscription.status().catch(() => null))}`);
      } finally {
        await subscription.stop();
        await direct.stop();
      }
      expect(received.map((e) => e.position)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      const ids: string[] = [];
      for await (const event of primaryStore.readAll({ pageSize: 5000 })) ids.push(event.id);
      expect(received.map((e) => e.id)).toEqual(ids);
      // While replay was paused the primary went on: the replica's lag was reported, not hidden.
      expect(lagSeen).toBeGreaterThanOrEqual(2000);
      expect(heldBack).toBe(true);
      expect(unreachable).toBeUndefined();
      const p50 = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]?.toFixed(1);
      console.log(
        `[annals] replica reader: ${total} events, append-to-handler p50 ${p50(delays)} ms (a subscription on the primary: ` +
          `${p50(primaryDelays)} ms; both include the replica's pause and restart), lag with replay paused ${lagSeen} events`,
      );
    } finally {
      await replicaStore?.close().catch(() => {});
      await primaryStore.close().catch(() => {});
      primary.cleanup();
    }
  }, 240_000);
});
