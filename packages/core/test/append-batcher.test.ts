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
    // An append to a stream named "conflict" fails on its own, as a version conflict would.
    return streams.map((stream) =>
      stream === 'conflict'
        ? { ok: false as const, error: new Error('conflict') }
        : { ok: true as const, value: stream },
    );
  };
  /** Answers every batch, including those sent meanwhile, until three turns pass with none. */
  const releaseAll = async () => {
    for (let quiet = 0; quiet < 3; ) {
      await new Promise((resolve) => setImmediate(resolve));
      if (waiting.length === 0) {
        quiet++;
      } else {
        quiet = 0;
        for (const release of waiting.splice(0)) release();
      }
    }
  };
  return { run, batches, releaseAll };
}

describe('AppendBatcher', () => {
  it('sends appends of one tick together, and coalesces those that arrive while a batch is in flight', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const first = [batcher.append(write('a')), batcher.append(write('b'))];
    await new Promise((resolve) => setImmediate(resolve));
    expect(db.batches).toEqual([['a', 'b']]);
    const later = [batcher.append(write('c')), batcher.append(write('d'))];
    await new Promise((resolve) => setImmediate(resolve));
    expect(db.batches).toEqual([['a', 'b']]);
    await db.releaseAll();
    expect(await Promise.all([...first, ...later])).toEqual(['a', 'b', 'c', 'd']);
    expect(db.batches).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('lets callers woken by a batch queue their next appends before the next batch leaves', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    // Three callers, each appending twice in a row, as request handlers would.
    const callers = ['a', 'b', 'c'].map(async (s) => {
      await batcher.append(write(s));
      await batcher.append(write(s));
    });
    await db.releaseAll();
    await Promise.all(callers);
    expect(db.batches).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
    ]);
  });

  it('never puts one stream twice in a batch, and keeps per-stream arrival order', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const results = ['x', 'a', 'b', 'a', 'c', 'a', 'b'].map((s) => batcher.append(write(s)));
    await db.releaseAll();
    await Promise.all(results);
    expect(db.batches).toEqual([['x', 'a', 'b', 'c'], ['a', 'b'], ['a']]);
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
    // a (3) fits beside x (1); b (2) does not, c (1) does; the 9-event append goes alone.
    expect(db.batches).toEqual([['x', 'a', 'c'], ['b'], ['big']]);
  });

  it('runs up to `concurrency` batches at once', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 1, concurrency: 2 });
    const results = ['a', 'b', 'c'].map((s) => batcher.append(write(s)));
    await new Promise((resolve) => setImmediate(resolve));
    expect(db.batches).toEqual([['a'], ['b']]);
    await db.releaseAll();
    await Promise.all(results);
    expect(db.batches).toEqual([['a'], ['b'], ['c']]);
  });

  it('keeps a stream out of a second batch while one with it is in flight', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 4 });
    const results = ['a', 'a', 'b', 'a'].map((s) => batcher.append(write(s)));
    await new Promise((resolve) => setImmediate(resolve));
    // Slots are free, but the second "a" must wait for the first to be answered.
    expect(db.batches).toEqual([['a', 'b']]);
    await db.releaseAll();
    await Promise.all(results);
    expect(db.batches).toEqual([['a', 'b'], ['a'], ['a']]);
  });

  it('gives an append that fails on its own its error, and the others of its batch their results', async () => {
    const db = fakeRunner();
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const settling = Promise.allSettled(['a', 'conflict', 'b'].map((s) => batcher.append(write(s))));
    await db.releaseAll();
    const settled = await settling;
    expect(settled).toEqual([
      { status: 'fulfilled', value: 'a' },
      { status: 'rejected', reason: new Error('conflict') },
      { status: 'fulfilled', value: 'b' },
    ]);
    // Sent once: the batch as a whole went through.
    expect(db.batches).toEqual([['a', 'conflict', 'b']]);
  });

  it('retries each append of a failed batch alone, so each caller gets its own answer', async () => {
    // Any batch holding "bad" fails: as a whole first, then alone.
    const db = fakeRunner((streams) => streams.includes('bad'));
    const batcher = new AppendBatcher(db.run, { maxEvents: 100, concurrency: 1 });
    const settling = Promise.allSettled(['x', 'a', 'bad', 'b'].map((s) => batcher.append(write(s))));
    await db.releaseAll();
    const settled = await settling;
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(db.batches).toEqual([['x', 'a', 'bad', 'b'], ['x'], ['a'], ['bad'], ['b']]);
    await batcher.drain();
  });
});
