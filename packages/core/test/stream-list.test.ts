/**
 * Listing streams: every stream that has events, once, in stream-id order, page by page with
 * the `next` cursor, each with its version, last event and lifecycle state; a category filter;
 * bad options refused before any SQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidInputError, lifecycle, listStreams, type StreamSummary } from '../src/index.js';
import { backends, openTestStore, type TestBackend, type TestStore } from './support/backends.js';

describe.each(backends)('listStreams on $name', (backend: TestBackend) => {
  let test: TestStore & { cleanup: () => Promise<void> };
  const expected = new Map<string, { version: number; last: number }>();

  beforeAll(async () => {
    test = await openTestStore(backend);
    // Streams of three categories, appended interleaved, of different lengths.
    for (let round = 0; round < 4; round++) {
      for (const [i, category] of ['order', 'invoice', 'cart'].entries()) {
        for (let n = 0; n <= i + round; n++) {
          const streamId = `${category}-${n}`;
          const [result] = await test.store.appendMulti([{ streamId, events: [{ type: 'Happened', data: { n } }] }]);
          const last = result?.positions.at(-1) as number;
          expected.set(streamId, { version: result?.streamVersion as number, last });
        }
      }
    }
    await lifecycle(test.store).archive('cart-0', { reason: 'listed as archived' });
  });
  afterAll(async () => {
    await test?.cleanup();
  });

  const all = async (options: { category?: string; limit?: number }) => {
    const seen: StreamSummary[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const page = await listStreams(test.store, { ...options, after });
      seen.push(...page.streams);
      if (!page.next) return { seen, pages: pages + 1 };
      after = page.next;
    }
    throw new Error('more than 100 pages');
  };

  it('lists every stream once, in stream-id order, across pages', async () => {
    const { seen, pages } = await all({ limit: 4 });
    const ids = seen.map((s) => s.streamId);
    const wanted = [...expected.keys(), '$lifecycle'].sort();
    expect(ids).toEqual(wanted);
    expect(pages).toBeGreaterThan(3);
    for (const s of seen) {
      if (s.streamId === '$lifecycle') continue;
      const want = expected.get(s.streamId);
      expect({ id: s.streamId, version: s.version, last: s.lastPosition }).toEqual({
        id: s.streamId,
        version: want?.version,
        last: want?.last,
      });
      expect(s.lastEventAt).toBeInstanceOf(Date);
    }
    expect(seen.find((s) => s.streamId === 'cart-0')?.state).toBe('archived');
    expect(seen.find((s) => s.streamId === 'cart-1')?.state).toBe('active');
  });

  it('lists one category only', async () => {
    const { seen } = await all({ category: 'invoice', limit: 2 });
    expect(seen.map((s) => s.streamId)).toEqual([...expected.keys()].filter((id) => id.startsWith('invoice-')).sort());
  });

  it('refuses bad options before any SQL', async () => {
    for (const options of [
      { limit: 0 },
      { limit: 10_001 },
      { limit: 1.5 },
      { after: '' },
      { category: 'a-b' },
      { category: '' },
      'limit',
    ]) {
      await expect(listStreams(test.store, options as never), JSON.stringify(options)).rejects.toBeInstanceOf(
        InvalidInputError,
      );
    }
  });
});
