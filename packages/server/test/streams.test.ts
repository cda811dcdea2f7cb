/** The HTTP API of streams and the log, over a real socket, on each backend. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support.js';

const uuid = (n: number) => `0190a6f2-8c1e-7b3a-9f00-${String(n).padStart(12, '0')}`;

describe.each(backends)('streams over HTTP on $name', (backend) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(backend);
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('appends with an expected version, answers a retry with the first result, and a conflict with both versions', async () => {
    const first = await server.request('POST', '/streams/account-1/events', {
      events: [{ id: uuid(1), type: 'Opened', data: { owner: 'ada' }, metadata: { actor: 'ada' } }],
      expectedVersion: 'no-stream',
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ streamId: 'account-1', streamVersion: 1, duplicate: false });
    expect(first.body.positions).toHaveLength(1);
    expect(new Date(first.body.recordedAt).getTime()).not.toBeNaN();

    const retry = await server.request('POST', '/streams/account-1/events', {
      events: [{ id: uuid(1), type: 'Opened', data: { owner: 'ada' }, metadata: { actor: 'ada' } }],
      expectedVersion: 'no-stream',
    });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ streamVersion: 1, duplicate: true, positions: first.body.positions });

    const conflict = await server.request('POST', '/streams/account-1/events', {
      events: [{ type: 'Deposited', data: { amount: 5 } }],
      expectedVersion: 7,
    });
    expect(conflict.status).toBe(409);
    expect(conflict.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(conflict.body).toMatchObject({
      status: 409,
      code: 'CONCURRENCY_CONFLICT',
      streamId: 'account-1',
      expected: 7,
      actual: 1,
    });

    const reused = await server.request('POST', '/streams/account-1/events', {
      events: [{ id: uuid(1), type: 'Other', data: {} }],
    });
    expect(reused.status).toBe(409);
    expect(reused.body.code).toBe('EVENT_ID_REUSED');
  });

  it('appends to several streams atomically: all or nothing', async () => {
    const head = (await server.request('GET', '/position')).body.head;
    const ok = await server.request('POST', '/appends', {
      writes: [
        { streamId: 'transfer-a', events: [{ type: 'Debited', data: { amount: 3 } }], expectedVersion: 'no-stream' },
        { streamId: 'transfer-b', events: [{ type: 'Credited', data: { amount: 3 } }], expectedVersion: 'no-stream' },
      ],
    });
    expect(ok.status).toBe(200);
    expect(ok.body.results.map((r: { streamId: string }) => r.streamId)).toEqual(['transfer-a', 'transfer-b']);
    const refused = await server.request('POST', '/appends', {
      writes: [
        { streamId: 'transfer-c', events: [{ type: 'Debited', data: { amount: 3 } }], expectedVersion: 'no-stream' },
        { streamId: 'transfer-b', events: [{ type: 'Credited', data: { amount: 3 } }], expectedVersion: 'no-stream' },
      ],
    });
    expect(refused.status).toBe(409);
    expect((await server.request('GET', '/streams/transfer-c')).status).toBe(404);
    expect((await server.request('GET', '/position')).body.head).toBe(head + 2);
  });

  it('reads a stream forward and backward in pages with a next cursor, and its head and metadata', async () => {
    await server.request('POST', '/streams/cart-9/events', {
      events: Array.from({ length: 5 }, (_, i) => ({ type: 'ItemAdded', data: { i } })),
    });
    const page1 = await server.request('GET', '/streams/cart-9/events?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body.events.map((e: { streamVersion: number }) => e.streamVersion)).toEqual([1, 2]);
    expect(page1.body.next).toEqual({ fromVersion: 3 });
    const page3 = await server.request('GET', '/streams/cart-9/events?fromVersion=5&limit=2');
    expect(page3.body.events.map((e: { data: { i: number } }) => e.data.i)).toEqual([4]);
    expect(page3.body.next).toBeNull();
    const backward = await server.request('GET', '/streams/cart-9/events?direction=backward&limit=2');
    expect(backward.body.events.map((e: { streamVersion: number }) => e.streamVersion)).toEqual([5, 4]);
    expect(backward.body.next).toEqual({ fromVersion: 3 });

    expect((await server.request('PUT', '/streams/cart-9/metadata', { owner: 'ada' })).status).toBe(204);
    const info = await server.request('GET', '/streams/cart-9');
    expect(info.body).toMatchObject({ streamId: 'cart-9', version: 5, exists: true, metadata: { owner: 'ada' } });
    const missing = await server.request('GET', '/streams/cart-0/events');
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('STREAM_NOT_FOUND');
  });

  it('lists the streams page by page, of one category, and refuses bad paging', async () => {
    for (const id of ['shelf-b', 'shelf-a', 'shelf-c']) {
      await server.request('POST', `/streams/${id}/events`, { events: [{ type: 'Stocked', data: {} }] });
    }
    await server.request('POST', '/streams/shelf-a/events', { events: [{ type: 'Stocked', data: {} }] });
    const seen: { streamId: string; version: number; state: string }[] = [];
    let query = 'category=shelf&limit=2';
    for (let pages = 0; pages < 5; pages++) {
      const page = await server.request('GET', `/streams?${query}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.streams);
      if (!page.body.next) break;
      query = `category=shelf&limit=2&after=${encodeURIComponent(page.body.next.after)}`;
    }
    expect(seen.map((s) => [s.streamId, s.version, s.state])).toEqual([
      ['shelf-a', 2, 'active'],
      ['shelf-b', 1, 'active'],
      ['shelf-c', 1, 'active'],
    ]);
    for (const bad of ['limit=0', 'limit=x', 'category=a-b', 'after=', 'nope=1']) {
      const refused = await server.request('GET', `/streams?${bad}`);
      expect(refused.status, bad).toBe(400);
      expect(refused.headers.get('content-type'), bad).toContain('application/problem+json');
    }
  });

  it('reads the global log after a position with filters, page by page, and one event by id', async () => {
    const all: number[] = [];
    let next: Record<string, number> | null = { after: 0 };
    while (next) {
      const page: { body: { events: { position: number }[]; next: Record<string, number> | null } } =
        await server.request('GET', `/events?after=${next.after}&limit=3`);
      all.push(...page.body.events.map((e) => e.position));
      next = page.body.next;
    }
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    const carts = await server.request('GET', '/events?category=cart&type=ItemAdded');
    expect(carts.body.events).toHaveLength(5);
    const two = await server.request('GET', '/events?stream=transfer-a&stream=transfer-b');
    expect(two.body.events.map((e: { streamId: string }) => e.streamId)).toEqual(['transfer-a', 'transfer-b']);
    const one = await server.request('GET', `/events/${uuid(1)}`);
    expect(one.body).toMatchObject({ id: uuid(1), streamId: 'account-1', type: 'Opened' });
    expect((await server.request('GET', `/events/${uuid(99)}`)).status).toBe(404);
  });

  it('puts the request’s traceparent into the metadata of what it appends', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const appended = await server.request(
      'POST',
      '/streams/trace-1/events',
      { events: [{ type: 'Traced', data: {} }] },
      { traceparent },
    );
    const [event] = (await server.request('GET', `/events?after=${appended.body.positions[0] - 1}&limit=1`)).body
      .events;
    expect(event.metadata.traceparent).toBe(traceparent);
    const garbage = await server.request(
      'POST',
      '/streams/trace-2/events',
      { events: [{ type: 'Traced', data: {} }] },
      { traceparent: 'not-a-trace' },
    );
    const [plain] = (await server.request('GET', `/events?after=${garbage.body.positions[0] - 1}&limit=1`)).body.events;
    expect(plain.metadata.traceparent).toBeUndefined();
  });

  it('answers bad input with a typed problem and changes nothing', async () => {
    const head = (await server.request('GET', '/position')).body.head;
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/streams/x-1/events', '{"events": [', 400, 'MALFORMED_JSON'],
      ['POST', '/streams/x-1/events', { events: [] }, 400, 'INVALID_INPUT'],
      ['POST', '/streams/x-1/events', { events: [{ type: 'A', data: {} }], expectedVersion: -1 }, 400, 'INVALID_INPUT'],
      ['POST', '/streams/x-1/events', { events: [{ type: 'A', data: {} }], surprise: 1 }, 400, 'INVALID_INPUT'],
      ['POST', '/streams/x-1/events', { events: [{ type: 'A', data: {}, id: 'not-a-uuid' }] }, 400, 'INVALID_INPUT'],
      ['POST', '/streams/x-1/events', { events: [{ type: 'A\u0000', data: {} }] }, 400, 'INVALID_INPUT'],
      [
        'POST',
        '/streams/x-1/events',
        { events: [{ type: 'A', data: 'x'.repeat(1_100_000) }] },
        413,
        'PAYLOAD_TOO_LARGE',
      ],
      ['GET', '/streams/x-1/events?limit=0', undefined, 400, 'INVALID_INPUT'],
      ['GET', '/events?after=-3', undefined, 400, 'INVALID_INPUT'],
      ['GET', '/events?after=abc', undefined, 400, 'INVALID_INPUT'],
      ['GET', '/position?time=yesterday', undefined, 400, 'INVALID_INPUT'],
      ['PUT', '/streams/x-1/metadata', [1, 2], 400, 'INVALID_INPUT'],
      ['DELETE', '/streams/x-1/events', undefined, 405, 'METHOD_NOT_ALLOWED'],
      ['GET', '/no/such/route', undefined, 404, 'NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const response = await server.request(method, path, body);
      expect(response.status, `${method} ${path}`).toBe(status);
      expect(response.body.code, `${method} ${path}`).toBe(code);
      expect(response.body.status).toBe(status);
    }
    const wrongType = await server.request('POST', '/streams/x-1/events', 'a=1', { 'content-type': 'text/plain' });
    expect(wrongType.status).toBe(415);
    const tooBig = await server.request('POST', '/streams/x-1/events', {
      events: [{ type: 'A', data: 'x'.repeat(5 * 1024 * 1024) }],
    });
    expect(tooBig.status).toBe(413);
    expect((await server.request('GET', '/position')).body.head).toBe(head);
    expect((await server.request('GET', '/streams/x-1')).status).toBe(404);
  });
});
