/**
 * Streaming answers written ahead of the socket (grpc/pipelined-writes.ts): a long read keeps
 * its order and loses nothing, many appends on one BatchAppend call are each answered once, and
 * a reader that stops reading holds the server to a bounded number of messages in flight.
 */
import type { ServerInterceptingCallInterface } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelinedWrites } from '../src/grpc/pipelined-writes.js';
import { collect, type KurrentServer, startKurrentServer } from './kurrent-support.js';
import { backends } from './support.js';

/** The inner call of the interceptor: records messages, completes their writes when told. */
function fakeCall() {
  const pending: (() => void)[] = [];
  const sent: unknown[] = [];
  const call = {
    sendMetadata() {},
    sendMessage(message: unknown, callback: () => void) {
      sent.push(message);
      pending.push(callback);
    },
  } as unknown as ServerInterceptingCallInterface;
  return { call, sent, complete: () => pending.shift()?.() };
}

const streaming = { path: '/s', requestStream: false, responseStream: true } as never;
const unary = { path: '/u', requestStream: false, responseStream: false } as never;

describe('pipelined writes', () => {
  it('acknowledges at once below the window, then one per completed write, in order', () => {
    const inner = fakeCall();
    const call = pipelinedWrites(3)(streaming, inner.call);
    const acknowledged: number[] = [];
    for (let i = 0; i < 5; i++) call.sendMessage(i, () => acknowledged.push(i));
    // Messages 0 and 1 are acknowledged while in flight; 2 fills the window and waits.
    expect(inner.sent).toEqual([0, 1, 2, 3, 4]);
    expect(acknowledged).toEqual([0, 1]);
    inner.complete();
    expect(acknowledged).toEqual([0, 1, 2]);
    inner.complete();
    inner.complete();
    expect(acknowledged).toEqual([0, 1, 2, 3, 4]);
  });

  it('acknowledges nothing more while nothing completes (a stalled reader)', () => {
    const inner = fakeCall();
    const call = pipelinedWrites(4)(streaming, inner.call);
    let acknowledged = 0;
    // A writer that, like a Writable, sends the next message only once the last is acknowledged.
    const next = (i: number) => {
      if (i < 1000) call.sendMessage(i, () => next(++acknowledged));
    };
    next(0);
    expect(acknowledged).toBe(3);
    expect(inner.sent).toHaveLength(4);
  });

  it('leaves calls without a streamed answer as grpc-js has them: acknowledged once written', () => {
    const inner = fakeCall();
    const call = pipelinedWrites()(unary, inner.call);
    let acknowledged = false;
    call.sendMessage('answer', () => {
      acknowledged = true;
    });
    expect(inner.sent).toEqual(['answer']);
    expect(acknowledged).toBe(false);
    inner.complete();
    expect(acknowledged).toBe(true);
  });
});

describe.each(backends)('KurrentDB protocol, long streamed answers, on $name', (backend) => {
  let server: KurrentServer;
  const total = 6000;
  beforeAll(async () => {
    server = await startKurrentServer(backend);
    for (let done = 0; done < total; done += 500) {
      const events = Array.from({ length: 500 }, (_, i) => ({
        type: 'Filled',
        data: { n: done + i, pad: 'x'.repeat(200) },
      }));
      const answer = await server.request('POST', `/streams/flow-${done}/events`, { events });
      expect(answer.status).toBe(201);
    }
  }, 120_000);
  afterAll(async () => {
    await server?.cleanup();
  });

  it('reads $all of thousands of events once each, in log order, forwards and backwards', async () => {
    const forwards: bigint[] = [];
    const numbers: number[] = [];
    for await (const resolved of server.kurrent.readAll({ maxCount: total })) {
      forwards.push(resolved.event?.position?.commit ?? -1n);
      numbers.push((resolved.event?.data as { n?: number } | undefined)?.n ?? -1);
    }
    expect(forwards).toEqual(Array.from({ length: total }, (_, i) => BigInt(i + 1)));
    expect(numbers).toEqual(Array.from({ length: total }, (_, i) => i));
    const backwards: bigint[] = [];
    for await (const resolved of server.kurrent.readAll({
      direction: 'backwards',
      fromPosition: 'end',
      maxCount: total,
    })) {
      backwards.push(resolved.event?.position?.commit ?? -1n);
    }
    expect(backwards).toEqual([...forwards].reverse());
  });

  it('answers 2,000 concurrent appends on one connection, each once with its own revision', async () => {
    const { jsonEvent } = await import('@kurrent/kurrentdb-client');
    const results = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        server.kurrent.appendToStream(`many-${i % 50}`, jsonEvent({ type: 'Counted', data: { i } })),
      ),
    );
    // Each of the 50 streams got 40 appends: its revisions are 0..39, each answered once.
    const revisions = new Map<number, bigint[]>();
    results.forEach((result, i) => {
      const list = revisions.get(i % 50) ?? [];
      list.push(result.nextExpectedRevision);
      revisions.set(i % 50, list);
    });
    for (const list of revisions.values()) {
      expect([...list].sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: 40 }, (_, r) => BigInt(r)));
    }
    const [last] = await collect(server.kurrent.readAll({ direction: 'backwards', fromPosition: 'end', maxCount: 1 }));
    expect(last?.event?.position?.commit).toBe(BigInt(total + 2000));
  });
});
