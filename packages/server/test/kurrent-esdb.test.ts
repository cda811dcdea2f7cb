/**
 * The older official client, `@eventstore/db-client` (pure grpc-js, `esdb://`), unchanged,
 * against the KurrentDB-protocol endpoint on each backend: append with a conflict, read both
 * ways, subscribe live, delete and tombstone errors.
 */
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  jsonEvent,
  NO_STREAM,
  type ResolvedEvent,
  START,
  StreamDeletedError,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, until } from './kurrent-support.js';
import { backends, startTestServer, type TestServer } from './support.js';

const deposited = (n: number) => jsonEvent({ type: 'Deposited', data: { n } });

describe.each(backends)('@eventstore/db-client over esdb:// on $name', (backend) => {
  let server: TestServer;
  let esdb: EventStoreDBClient;
  beforeAll(async () => {
    server = await startTestServer(backend, { grpc: { port: 0 } });
    esdb = EventStoreDBClient.connectionString`esdb://127.0.0.1:${String(server.grpc?.port)}?tls=false`;
  });
  afterAll(async () => {
    await esdb?.dispose();
    await server?.cleanup();
  });

  it('appends, conflicts, and reads forwards and backwards', async () => {
    const first = await esdb.appendToStream('es-1', [1, 2, 3].map(deposited), { expectedRevision: NO_STREAM });
    expect(first.nextExpectedRevision).toBe(2n);
    const stale = await esdb.appendToStream('es-1', deposited(4), { expectedRevision: 0n }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(WrongExpectedVersionError);
    const forwards = await collect(esdb.readStream('es-1', { fromRevision: START }));
    expect(forwards.map((e) => e.event?.revision)).toEqual([0n, 1n, 2n]);
    const backwards = await collect(esdb.readStream('es-1', { direction: BACKWARDS, fromRevision: END, maxCount: 1 }));
    expect(backwards.map((e) => (e.event?.data as { n: number } | undefined)?.n)).toEqual([3]);
    const all = await collect(esdb.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 }));
    expect(all[0]?.event?.id).toBe(forwards[2]?.event?.id);
    await expect(collect(esdb.readStream('es-none'))).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('subscribes live, and answers deleted streams as the client expects', async () => {
    const seen: number[] = [];
    const subscription = esdb.subscribeToStream('es-2', { fromRevision: START });
    subscription.on('data', (e: ResolvedEvent) => seen.push((e.event?.data as { n: number } | undefined)?.n ?? -1));
    await until(() => server.grpc?.openSubscriptions() === 1, 10_000, 'the subscription');
    await esdb.appendToStream('es-2', [1, 2].map(deposited));
    await server.request('POST', '/streams/es-2/events', { events: [{ type: 'Deposited', data: { n: 3 } }] });
    await until(() => seen.length >= 3, 10_000, 'the live events');
    expect(seen).toEqual([1, 2, 3]);
    await subscription.unsubscribe();
    await until(() => server.grpc?.openSubscriptions() === 0, 2000, 'the subscription to end');

    await esdb.deleteStream('es-2');
    await expect(collect(esdb.readStream('es-2'))).rejects.toBeInstanceOf(StreamNotFoundError);
    await esdb.tombstoneStream('es-2');
    await expect(esdb.appendToStream('es-2', deposited(4))).rejects.toBeInstanceOf(StreamDeletedError);
  });

  it('ends live subscriptions with UNAVAILABLE when the endpoint closes (the last test: it closes it)', async () => {
    const subscription = esdb.subscribeToAll({ fromPosition: END });
    const failed = new Promise<unknown>((resolve) => subscription.on('error', resolve));
    await until(() => server.grpc?.openSubscriptions() === 1, 10_000, 'the subscription');
    await server.grpc?.close();
    expect(server.grpc?.openSubscriptions()).toBe(0);
    expect((await failed) as { code?: number }).toMatchObject({ code: 14 });
  });
});
