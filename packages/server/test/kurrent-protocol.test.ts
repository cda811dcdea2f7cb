/**
 * The KurrentDB protocol through the official `@kurrent/kurrentdb-client`, unchanged, over a
 * real socket, on each backend: appends with every expected revision, reads of a stream and of
 * `$all` both ways, subscriptions with filters, delete, tombstone, metadata, binary events,
 * malformed requests, cancellation; and one store under both APIs.
 */
import {
  ANY,
  BACKWARDS,
  binaryEvent,
  DeadlineExceededError,
  END,
  eventTypeFilter,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  type ResolvedEvent,
  START,
  STREAM_EXISTS,
  StreamDeletedError,
  StreamNotFoundError,
  streamNameFilter,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, type KurrentServer, startKurrentServer, until } from './kurrent-support.js';
import { backends } from './support.js';

const deposited = (n: number) => jsonEvent({ type: 'Deposited', data: { n } });
const revisions = (events: ResolvedEvent[]) => events.map((e) => e.event?.revision);
const numbers = (events: ResolvedEvent[]) => events.map((e) => (e.event?.data as { n: number } | undefined)?.n);

describe.each(backends)('KurrentDB protocol on $name', (backend) => {
  let server: KurrentServer;
  beforeAll(async () => {
    server = await startKurrentServer(backend);
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('appends with each expected revision, answering a conflict with the current revision', async () => {
    const { kurrent } = server;
    const first = await kurrent.appendToStream('acct-1', [deposited(1), deposited(2)], { streamState: NO_STREAM });
    expect(first.nextExpectedRevision).toBe(1n);
    expect(first.position?.commit).toBe(first.position?.prepare);
    const second = await kurrent.appendToStream('acct-1', deposited(3), { streamState: 1n });
    expect(second.nextExpectedRevision).toBe(2n);
    expect(second.position?.commit).toBe((first.position?.commit ?? 0n) + 1n);
    await kurrent.appendToStream('acct-1', deposited(4), { streamState: STREAM_EXISTS });
    await kurrent.appendToStream('acct-1', deposited(5), { streamState: ANY });

    const stale = await kurrent.appendToStream('acct-1', deposited(6), { streamState: 1n }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(WrongExpectedVersionError);
    expect((stale as WrongExpectedVersionError).actualState).toBe(4n);
    expect((stale as WrongExpectedVersionError).expectedState).toBe(1n);
    const exists = await kurrent.appendToStream('acct-1', deposited(6), { streamState: NO_STREAM }).catch((e) => e);
    expect(exists).toBeInstanceOf(WrongExpectedVersionError);
    expect((exists as WrongExpectedVersionError).actualState).toBe(4n);
    const missing = await kurrent
      .appendToStream('acct-none', deposited(1), { streamState: STREAM_EXISTS })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(WrongExpectedVersionError);
    expect((missing as WrongExpectedVersionError).actualState).toBe('no_stream');

    const events = await collect(kurrent.readStream('acct-1'));
    expect(revisions(events)).toEqual([0n, 1n, 2n, 3n, 4n]);
    expect(numbers(events)).toEqual([1, 2, 3, 4, 5]);
  });

  it('reads a stream forwards and backwards, from a revision, with a count; and a missing stream', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('read-1', [1, 2, 3, 4, 5, 6].map(deposited));
    const from2 = await collect(kurrent.readStream('read-1', { fromRevision: 2n, maxCount: 3 }));
    expect(revisions(from2)).toEqual([2n, 3n, 4n]);
    const back = await collect(kurrent.readStream('read-1', { direction: BACKWARDS, fromRevision: END, maxCount: 2 }));
    expect(numbers(back)).toEqual([6, 5]);
    const backFrom = await collect(kurrent.readStream('read-1', { direction: BACKWARDS, fromRevision: 1n }));
    expect(revisions(backFrom)).toEqual([1n, 0n]);
    const past = await collect(kurrent.readStream('read-1', { fromRevision: 10n }));
    expect(past).toEqual([]);
    await expect(collect(kurrent.readStream('read-none'))).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('reads $all forwards from a position and backwards, with the positions of the log', async () => {
    const { kurrent } = server;
    const appended = await kurrent.appendToStream('all-1', [1, 2, 3].map(deposited));
    const last = appended.position?.commit ?? 0n;
    const forwards = await collect(kurrent.readAll({ fromPosition: { commit: last - 1n, prepare: last - 1n } }));
    expect(forwards.map((e) => e.event?.position?.commit)).toEqual([last - 1n, last]);
    expect(numbers(forwards)).toEqual([2, 3]);
    const backwards = await collect(kurrent.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 3 }));
    expect(backwards.map((e) => e.event?.position?.commit)).toEqual([last, last - 1n, last - 2n]);
    const before = await collect(
      kurrent.readAll({ direction: BACKWARDS, fromPosition: { commit: last, prepare: last }, maxCount: 1 }),
    );
    expect(numbers(before)).toEqual([2]);
    const everything = await collect(kurrent.readAll({ direction: FORWARDS, fromPosition: START }));
    const positions = everything.map((e) => Number(e.event?.position?.commit));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(everything.at(-1)?.event?.id).toBe(forwards.at(-1)?.event?.id);
  });

  it('keeps event ids, content types, binary data and custom metadata byte for byte, and when', async () => {
    const { kurrent } = server;
    const bytes = Uint8Array.from([0, 255, 1, 254, 0x7b, 0x22, 10, 0]);
    const meta = Uint8Array.from([0xde, 0xad, 0xbe, 0xef]);
    const id = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    const before = Date.now();
    await kurrent.appendToStream('bin-1', [
      binaryEvent({ id, type: 'Blob', data: bytes, metadata: meta }),
      jsonEvent({ type: 'Noted', data: { text: 'hé' }, metadata: { correlationId: 'c-1', custom: [1, 2] } }),
    ]);
    const [blob, noted] = await collect(kurrent.readStream('bin-1'));
    expect(blob?.event?.id).toBe(id);
    expect(blob?.event?.isJson).toBe(false);
    expect(Buffer.from(blob?.event?.data as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(blob?.event?.metadata as Uint8Array).equals(Buffer.from(meta))).toBe(true);
    expect(noted?.event?.isJson).toBe(true);
    expect(noted?.event?.data).toEqual({ text: 'hé' });
    expect(noted?.event?.metadata).toEqual({ correlationId: 'c-1', custom: [1, 2] });
    const created = noted?.event?.created.getTime() ?? 0;
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    expect(created).toBeLessThanOrEqual(Date.now() + 1000);

    // The same events over HTTP: JSON as JSON, binary in its marked wrapper, audit metadata as such.
    const http = await server.request('GET', '/streams/bin-1/events');
    expect(http.body.events[1]).toMatchObject({ data: { text: 'hé' }, metadata: { correlationId: 'c-1' } });
    expect(http.body.events[0].data).toEqual({ $binary: Buffer.from(bytes).toString('base64') });
  });

  it('shows appends made over HTTP, and the reverse', async () => {
    const { kurrent } = server;
    await server.request('POST', '/streams/both-1/events', { events: [{ type: 'Opened', data: { by: 'http' } }] });
    await kurrent.appendToStream('both-1', jsonEvent({ type: 'Noted', data: { by: 'grpc' } }), { streamState: 0n });
    const overGrpc = await collect(kurrent.readStream('both-1'));
    expect(overGrpc.map((e) => e.event?.data)).toEqual([{ by: 'http' }, { by: 'grpc' }]);
    const overHttp = await server.request('GET', '/streams/both-1/events');
    expect(overHttp.body.events.map((e: { streamVersion: number }) => e.streamVersion)).toEqual([1, 2]);
  });

  it('soft-deletes (reads: not found; an append re-opens at the next revision) and tombstones', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('del-1', [1, 2].map(deposited));
    await kurrent.deleteStream('del-1', { expectedRevision: 1n });
    await expect(collect(kurrent.readStream('del-1'))).rejects.toBeInstanceOf(StreamNotFoundError);
    await expect(kurrent.appendToStream('del-1', deposited(3), { streamState: 1n })).rejects.toBeInstanceOf(
      StreamDeletedError,
    );
    const reopened = await kurrent.appendToStream('del-1', deposited(3));
    expect(reopened.nextExpectedRevision).toBe(2n);
    const after = await collect(kurrent.readStream('del-1'));
    expect(revisions(after)).toEqual([2n]);

    const stale = await kurrent.deleteStream('del-1', { expectedRevision: 0n }).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(WrongExpectedVersionError);

    await kurrent.appendToStream('tomb-1', deposited(1));
    await kurrent.tombstoneStream('tomb-1');
    await expect(collect(kurrent.readStream('tomb-1'))).rejects.toBeInstanceOf(StreamDeletedError);
    await expect(kurrent.appendToStream('tomb-1', deposited(2))).rejects.toBeInstanceOf(StreamDeletedError);
    await expect(kurrent.tombstoneStream('tomb-1')).rejects.toBeInstanceOf(StreamDeletedError);
  });

  it('keeps stream metadata: $maxCount hides older events, custom keys are kept', async () => {
    const { kurrent } = server;
    expect((await kurrent.getStreamMetadata('meta-1')).metadata).toBeUndefined();
    await kurrent.appendToStream('meta-1', [1, 2, 3, 4, 5].map(deposited));
    await kurrent.setStreamMetadata('meta-1', { maxCount: 2, owner: 'ops' } as never);
    const read = await collect(kurrent.readStream('meta-1'));
    expect(numbers(read)).toEqual([4, 5]);
    const { metadata } = await kurrent.getStreamMetadata('meta-1');
    expect(metadata).toMatchObject({ maxCount: 2, owner: 'ops' });
    const info = await server.request('GET', '/streams/meta-1');
    expect(info.body.retention).toEqual({ maxCount: 2, maxAge: null });

    await kurrent.setStreamMetadata('meta-1', { truncateBefore: 4 } as never);
    expect(numbers(await collect(kurrent.readStream('meta-1')))).toEqual([5]);
    const conflict = await kurrent
      .setStreamMetadata('meta-1', { maxCount: 1 } as never, { streamState: 0n } as never) // the client reads streamState
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(WrongExpectedVersionError);

    // $maxAge: events older than it are hidden (and come back when it is lifted).
    await kurrent.appendToStream('meta-2', deposited(1));
    await kurrent.setStreamMetadata('meta-2', { maxAge: 1 } as never);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    await kurrent.appendToStream('meta-2', deposited(2));
    expect(numbers(await collect(kurrent.readStream('meta-2')))).toEqual([2]);
    await kurrent.setStreamMetadata('meta-2', {} as never);
    expect(numbers(await collect(kurrent.readStream('meta-2')))).toEqual([1, 2]);
  });

  it('stream metadata under concurrent writers: one wins an expected revision, every "any" write counts once', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('meta-race', [1, 2, 3, 4, 5].map(deposited));
    await kurrent.setStreamMetadata('meta-race', { maxCount: 5 } as never);
    const { KurrentDBClient } = await import('@kurrent/kurrentdb-client');
    const others = [0, 1, 2].map(() => KurrentDBClient.connectionString`${server.connectionString}`);
    try {
      const writers = [kurrent, ...others];
      const outcomes = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          (writers[i % writers.length] as typeof kurrent).setStreamMetadata(
            'meta-race',
            { maxCount: i + 1, writer: i } as never,
            { streamState: 0n } as never,
          ),
        ),
      );
      const won = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
      expect(won).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(WrongExpectedVersionError);
      const winner = won[0] as number;
      const after = await kurrent.getStreamMetadata('meta-race');
      expect(after.metadata).toMatchObject({ maxCount: winner + 1, writer: winner });
      const revision = async () => (await collect(kurrent.readStream('$$meta-race')))[0]?.event?.revision;
      expect(await revision()).toBe(1n);
      expect((await server.request('GET', '/streams/meta-race')).body.retention.maxCount).toBe(winner + 1);
      // Writes with any: none lost, each one revision.
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (writers[i % writers.length] as typeof kurrent).setStreamMetadata('meta-race', { n: i } as never),
        ),
      );
      expect(await revision()).toBe(13n);
    } finally {
      await Promise.all(others.map((client) => client.dispose()));
    }
  });

  it('subscribes to a stream from the start and from a revision: every event once, in order, then live', async () => {
    const { kurrent } = server;
    await kurrent.appendToStream('sub-1', [1, 2, 3].map(deposited));
    const fromStart = kurrent.subscribeToStream('sub-1', { fromRevision: START });
    const fromRevision = kurrent.subscribeToStream('sub-1', { fromRevision: 1n });
    let caughtUp = false;
    fromStart.on('caughtUp', () => {
      caughtUp = true;
    });
    const seen: number[] = [];
    const seenFrom: number[] = [];
    fromStart.on('data', (e: ResolvedEvent) => seen.push(...numbers([e]).map(Number)));
    fromRevision.on('data', (e: ResolvedEvent) => seenFrom.push(...numbers([e]).map(Number)));
    await until(() => caughtUp && seen.length === 3, 10_000, 'the catch-up');
    await kurrent.appendToStream('sub-1', [4, 5].map(deposited));
    await kurrent.appendToStream('sub-other', deposited(99));
    await kurrent.appendToStream('sub-1', deposited(6));
    await until(() => seen.length >= 6 && seenFrom.length >= 4, 10_000, 'the live events');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seenFrom).toEqual([3, 4, 5, 6]);
    await fromStart.unsubscribe();
    await fromRevision.unsubscribe();
  });

  it('subscribes to $all with filters on stream name or event type, with checkpoints', async () => {
    const { kurrent } = server;
    const head = (await collect(kurrent.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })))[0];
    const from = head?.event?.position ?? START;
    const checkpoints: bigint[] = [];
    const byName = kurrent.subscribeToAll({
      fromPosition: from,
      filter: streamNameFilter({ prefixes: ['order-'], checkpointInterval: 1, maxSearchWindow: 2 }),
    });
    byName.on('checkpoint', () => {});
    const byType = kurrent.subscribeToAll({
      fromPosition: END,
      filter: eventTypeFilter({
        regex: '^Shipped$',
        checkpointInterval: 1,
        checkpointReached: (_s, position) => {
          checkpoints.push(position.commit);
        },
      }),
    });
    const names: string[] = [];
    const types: string[] = [];
    byName.on('data', (e: ResolvedEvent) => names.push(`${e.event?.streamId}:${e.event?.type}`));
    byType.on('data', (e: ResolvedEvent) => types.push(`${e.event?.streamId}:${e.event?.type}`));
    await until(() => server.grpc?.openSubscriptions() === 2, 10_000, 'both subscriptions');
    await kurrent.appendToStream('order-1', jsonEvent({ type: 'Placed', data: {} }));
    await kurrent.appendToStream('invoice-1', jsonEvent({ type: 'Shipped', data: {} }));
    await kurrent.appendToStream('order-1', jsonEvent({ type: 'Shipped', data: {} }));
    for (let i = 0; i < 40; i++) await kurrent.appendToStream('noise-1', jsonEvent({ type: 'Noise', data: { i } }));
    await until(() => names.length >= 2 && types.length >= 2, 10_000, 'the filtered events');
    await until(() => checkpoints.length > 0, 10_000, 'a checkpoint');
    expect(names).toEqual(['order-1:Placed', 'order-1:Shipped']);
    expect(types).toEqual(['invoice-1:Shipped', 'order-1:Shipped']);
    // 32 events a window: one checkpoint for 40 examined, at a position past the matches.
    expect(checkpoints.length).toBe(1);
    await byName.unsubscribe();
    await byType.unsubscribe();
  });

  it('subscribes to $all from the start, from a position and from the end, and resumes after a reconnect', async () => {
    const { kurrent } = server;
    const ours = streamNameFilter({ prefixes: ['resume-'] });
    await until(() => server.grpc?.openSubscriptions() === 0, 10_000, 'earlier subscriptions to end');
    await kurrent.appendToStream('resume-1', [1, 2, 3].map(deposited));
    const fromStart: number[] = [];
    const fromEnd: number[] = [];
    const start = kurrent.subscribeToAll({ fromPosition: START, filter: ours });
    const end = kurrent.subscribeToAll({ fromPosition: END, filter: ours });
    start.on('data', (e: ResolvedEvent) => fromStart.push(...numbers([e]).map(Number)));
    end.on('data', (e: ResolvedEvent) => fromEnd.push(...numbers([e]).map(Number)));
    await until(() => server.grpc?.openSubscriptions() === 2, 10_000, 'both subscriptions');

    // A first connection takes two events, remembers the last position, and goes away.
    const first = kurrent.subscribeToAll({ fromPosition: START, filter: ours });
    let last: { commit: bigint; prepare: bigint } | undefined;
    const seen: number[] = [];
    for await (const e of first) {
      seen.push(...numbers([e]).map(Number));
      last = e.event?.position;
      if (seen.length === 2) break;
    }
    await first.unsubscribe();
    await until(() => (server.grpc?.openSubscriptions() ?? 0) === 2, 10_000, 'the first connection to end');
    await kurrent.appendToStream('resume-2', [4, 5].map(deposited));

    // Reconnecting from that position: the rest, each once, then live.
    const again = kurrent.subscribeToAll({ fromPosition: last ?? START, filter: ours });
    again.on('data', (e: ResolvedEvent) => seen.push(...numbers([e]).map(Number)));
    await until(() => seen.length >= 5, 10_000, 'the catch-up after the reconnect');
    await kurrent.appendToStream('resume-1', deposited(6));
    await until(() => seen.length >= 6 && fromStart.length >= 6 && fromEnd.length >= 3, 10_000, 'live events');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fromStart).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fromEnd).toEqual([4, 5, 6]);
    await Promise.all([start.unsubscribe(), end.unsubscribe(), again.unsubscribe()]);
  });

  it('honours deadlines: one that passes is answered DEADLINE_EXCEEDED, and the server goes on', async () => {
    const { kurrent } = server;
    const late = await kurrent
      .appendToStream('deadline-1', [1, 2, 3].map(deposited), { deadline: 1 })
      .catch((e: unknown) => e);
    expect(late).toBeInstanceOf(DeadlineExceededError);
    const next = await kurrent.appendToStream('deadline-2', deposited(1), { streamState: NO_STREAM });
    expect(next.nextExpectedRevision).toBe(0n);
  });

  it('frees a subscription on the server as soon as the client cancels it', async () => {
    const { kurrent } = server;
    await until(() => server.grpc?.openSubscriptions() === 0, 10_000, 'earlier subscriptions to end');
    const subscription = kurrent.subscribeToAll({ fromPosition: END });
    await until(() => server.grpc?.openSubscriptions() === 1, 10_000, 'the subscription');
    await subscription.unsubscribe();
    await until(() => server.grpc?.openSubscriptions() === 0, 2000, 'the subscription to end');
  });
});
