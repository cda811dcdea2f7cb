/**
 * Reads from a streaming replica over a real socket: a private cluster and its real physical
 * replica (`pg_basebackup -R`, hot standby). Appends go to the primary; reads, audit, time
 * travel and SSE come from the replica; `Annals-Min-Position` gives read-your-writes (the
 * replica, or the primary when the replica is held back); a stopped replica leaves reads on
 * the primary, and they go back once it is up; a bad header is a 400 that changes nothing.
 */
import { createPostgresClient, type EventStore, openEventStore } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../../core/test/support/backends.js';
import { type PrivateCluster, replicaUnavailable, startPrivateCluster } from '../../core/test/support/pg-cluster.js';
import { openReplicaStore, runOn } from '../../core/test/support/replica-store.js';
import { type AnnalsServer, createServer } from '../src/index.js';
import { openSse } from './auth-support.js';

const unavailable = replicaUnavailable();
if (unavailable) console.warn(`[annals] replica read tests skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('reads from a streaming replica', () => {
  let primary: PrivateCluster;
  let replicaCluster: PrivateCluster;
  let primaryStore: EventStore;
  let replicaStore: EventStore;
  let server: AnnalsServer;
  let base: string;

  /** Runs a statement on the replica (pausing or resuming its replay). */
  const onReplica = (sql: string) => runOn(replicaCluster.url, sql);
  const append = async (streamId: string, count: number) => {
    const answer = await fetch(`${base}/streams/${streamId}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        events: Array.from({ length: count }, (_, i) => ({ type: 'Deposited', data: { i } })),
      }),
    });
    expect(answer.status).toBe(201);
    const result = (await answer.json()) as { positions: number[]; streamVersion: number };
    return { lastPosition: result.positions.at(-1) as number, version: result.streamVersion };
  };
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const answer = await fetch(`${base}${path}`, { headers });
    return {
      status: answer.status,
      from: answer.headers.get('annals-read-from'),
      body: (await answer.json()) as never,
    };
  };

  beforeAll(async () => {
    primary = await startPrivateCluster();
    replicaCluster = await primary.startReplica();
    primaryStore = await openEventStore({
      client: createPostgresClient({ connectionString: primary.url, maxConnections: 8 }),
      schema: 'annals',
    });
    replicaStore = await openReplicaStore(replicaCluster.url, 'annals', 6);
    server = await createServer({ store: primaryStore, readReplica: { store: replicaStore, waitMs: 1500 } });
    await server.api.listen({ host: '127.0.0.1', port: 0 });
    const address = server.api.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await replicaStore?.close();
    await primaryStore?.close();
    replicaCluster?.cleanup();
    primary?.cleanup();
  });

  it('reads its own appends from the replica with Annals-Min-Position, and the primary when the replica is held back', async () => {
    const first = await append('account-1', 50);
    const read = await get('/streams/account-1/events', { 'annals-min-position': String(first.lastPosition) });
    expect(read.status).toBe(200);
    expect(read.from).toBe('replica');
    expect((read.body as { events: unknown[] }).events).toHaveLength(50);

    await onReplica('select pg_wal_replay_pause()');
    try {
      const second = await append('account-1', 10);
      // Asked to see the new append: the replica does not have it within the wait, the primary does.
      const own = await get('/streams/account-1/events', { 'annals-min-position': String(second.lastPosition) });
      expect(own.from).toBe('primary');
      expect((own.body as { events: unknown[] }).events).toHaveLength(60);
      // Not asked: the replica as it is, a gap-free prefix of the primary's log.
      const stale = await get('/events?limit=10000');
      expect(stale.from).toBe('replica');
      const positions = (stale.body as { events: { position: number }[] }).events.map((e) => e.position);
      expect(positions).toEqual(Array.from({ length: first.lastPosition }, (_, i) => i + 1));
      // The stream's head on the replica is the one before the paused append.
      expect(((await get('/streams/account-1')).body as { version: number }).version).toBe(50);
    } finally {
      await onReplica('select pg_wal_replay_resume()');
    }
    const caughtUp = await get('/streams/account-1', { 'annals-min-position': '60' });
    expect(caughtUp.from).toBe('replica');
    expect((caughtUp.body as { version: number }).version).toBe(60);
  });

  it('serves audit and time travel from the replica, and SSE through it live', async () => {
    const sse = await openSse(base, '/streams/account-2/subscribe?after=0');
    try {
      const { lastPosition } = await append('account-2', 3);
      await waitUntil(() => sse.text().includes(`id: ${lastPosition}\n`), { message: 'the SSE client got the append' });
      expect(sse.text().match(/^id: /gm)).toHaveLength(3);
      const history = await get('/streams/account-2/history', { 'annals-min-position': String(lastPosition) });
      expect(history.status).toBe(200);
      expect(history.from).toBe('replica');
      expect((history.body as { entries: unknown[] }).entries).toHaveLength(3);
      const state = await get('/streams/account-2/state?version=2', { 'annals-min-position': String(lastPosition) });
      expect(state.from).toBe('replica');
      expect(state.body).toMatchObject({ streamId: 'account-2', state: { i: 1 } });
    } finally {
      sse.close();
    }
  });

  it('reads the primary while the replica is down, and the replica again once it is back', async () => {
    replicaCluster.stop('fast');
    try {
      const { lastPosition } = await append('account-3', 5);
      const read = await get('/streams/account-3/events');
      expect(read.status).toBe(200);
      expect(read.from).toBe('primary');
      expect((read.body as { events: { position: number }[] }).events.at(-1)?.position).toBe(lastPosition);
    } finally {
      replicaCluster.start();
    }
    await waitUntil(async () => (await get('/streams/account-3/events')).from === 'replica', {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: 'reads go back to the replica',
    });
    expect(((await get('/streams/account-3/events')).body as { events: unknown[] }).events).toHaveLength(5);
  });

  it('answers a bad Annals-Min-Position with a 400 naming the header', async () => {
    for (const value of ['abc', '-1', '1e3', '1.5', '99999999999999999999', "1' or '1'='1"]) {
      const answer = await get('/events', { 'annals-min-position': value });
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ code: 'INVALID_INPUT', field: 'Annals-Min-Position' });
    }
    // Ahead of the log: the replica cannot have it; the primary answers what there is.
    const ahead = await get('/events?limit=1', { 'annals-min-position': '999999999' });
    expect(ahead.status).toBe(200);
    expect(ahead.from).toBe('primary');
  });
});

describe('createServer with a replica and tenants', () => {
  it('refuses the pair', async () => {
    await expect(
      createServer({ tenants: async () => undefined, readReplica: { store: {} as EventStore } }),
    ).rejects.toThrow(/replica of a store, not of tenants/);
  });
});
