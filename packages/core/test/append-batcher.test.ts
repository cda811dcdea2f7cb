/** The coalescing of concurrent appends, with a fake database call. */
import { describe, expect, it } from 'vitest';
import { AppendBatcher } from '../src/store/append-batcher.js';
import type { PreparedWrite } from '../src/validation.js';

const write = (streamId: string, events = 1): PreparedWrite[] => [
  {
    streamId,
    expected: 'any',
    expectedCode: -1,
    events: Array.from({ length: events }, (_, i) => ({
      id: `${streamId}-${i}`,
      type: 'E',
      data: '{}',
      metadata: '{}',
    })),
  },
];

/** A fake database call that records its batches and answers when released. */
function fakeRunner(fail?: (streams: string[]) => boolean) {
  const batches: string[][] = [];
  const waiting: (() => void)[] = [];
  const run = async (appends: readonly (readonly PreparedWrite[])[]) => {
    const streams = appends.map((writes) => writes.map((w) => w.streamId).join('+'));
    batches.push(streams);
    await new Promise<void>((resolve) => waiting.push(resolve));
    if (fail?.(streams)) throw new Error(`batch of ${streams.join(',')} failed`);
    return streams;
  };
  const releaseAll = async () => {
    while (waiting.length > 0) {
      for (const release of waiting.splice(0)) release();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  };
  return { run, batches, releaseAll };
}

describe('AppendBatcher', () => {
  it('sends a lone append at once and coalesces those that arrive while it is in flight', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const results = [batcher.append(write('a')), batcher.append(write('b')), batcher.append(write('c'))];
    expect(db.batches).toEqual([['a']]);
    await db.releaseAll();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c']);
    expect(db.batches).toEqual([['a'], ['b', 'c']]);
  });

  it('never puts one stream twice in a batch, and keeps per-stream arrival order', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const results = ['x', 'a', 'b', 'a', 'c', 'a', 'b'].map((s) => batcher.append(write(s)));
    await db.releaseAll();
    await Promise.all(results);
    expect(db.batches).toEqual([['x'], ['a', 'b', 'c'], ['a', 'b'], ['a']]);
  });

  it('caps a batch at maxEvents, but sends a larger single append alone', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 5, concurrency: 1 });
    const results = [
      batcher.append(write('x')),
      batcher.append(write('a', 3)),
      batcher.append(write('b', 2)),
      batcher.append(write('c', 1)),
      batcher.append(write('big', 9)),
    ];
    await db.releaseAll();
    await Promise.all(results);
    expect(db.batches).toEqual([['x'], ['a', 'b'], ['c'], ['big']]);
  });

  it('runs up to `concurrency` batches at once', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 2 });
    const results = ['a', 'b', 'c', 'd'].map((s) => batcher.append(write(s)));
    expect(db.batches).toEqual([['a'], ['b']]);
    await db.releaseAll();
    await Promise.all(results);
    expect(db.batches).toEqual([['a'], ['b'], ['c', 'd']]);
  });

  it('retries each append of a failed batch alone, so each caller gets its own answer', async () => {
    // Any batch holding "bad" fails: as a whole first, then alone.
    const db = fakeRunner((streams) => streams.includes('bad'));
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const settling = Promise.allSettled(['x', 'a', 'bad', 'b'].map((s) => batcher.append(write(s))));
    await db.releaseAll();
    const settled = await settling;
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(db.batches).toEqual([['x'], ['a', 'bad', 'b'], ['a'], ['bad'], ['b']]);
    await batcher.drain();
  });
});
