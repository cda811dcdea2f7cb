/**
 * Live over Server-Sent Events, with the `eventsource` client (the browser's EventSource for
 * Node): catch-up then live, filters, a reconnect mid-stream with appends in between (every
 * event once, in order), and a client that does not read being cut off instead of growing the
 * server's memory.
 */
import { request as httpRequest } from 'node:http';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support.js';

/** Polls `condition` until it holds, failing with `what` after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function follow(url: string) {
  const received: { position: number; streamId: string; type: string }[] = [];
  const ids: string[] = [];
  let opened = 0;
  const source = new EventSource(url);
  source.onopen = () => {
    opened++;
  };
  source.onmessage = (message) => {
    ids.push(message.lastEventId);
    received.push(JSON.parse(message.data));
  };
  return {
    source,
    received,
    ids,
    get opened() {
      return opened;
    },
    positions: () => received.map((event) => event.position),
  };
}

describe.each(backends)('live over SSE on $name', (backend) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(backend, { live: { retryMs: 50, heartbeatMs: 200 } });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  const append = (stream: string, count: number, type = 'Happened') =>
    server.request('POST', `/streams/${stream}/events`, {
      events: Array.from({ length: count }, (_, i) => ({ type, data: { i } })),
    });

  it('catches up, then follows live, with each event’s position as its id', async () => {
    await append('order-1', 5);
    const head = (await server.request('GET', '/position')).body.head as number;
    const client = follow(`${server.url}/subscribe`);
    try {
      await until(() => client.received.length === head, 'the catch-up');
      await append('order-2', 5);
      await until(() => client.received.length === head + 5, 'the live events');
      expect(client.positions()).toEqual(Array.from({ length: head + 5 }, (_, i) => i + 1));
      expect(client.ids).toEqual(client.positions().map(String));
    } finally {
      client.source.close();
    }
  });

  it('resumes after a dropped connection with nothing skipped and nothing repeated', async () => {
    const start = (await server.request('GET', '/position')).body.head as number;
    const client = follow(`${server.url}/subscribe?after=${start}`);
    try {
      await until(() => client.opened === 1, 'the connection');
      for (let round = 0; round < 4; round++) {
        await append(`resume-${round}`, 20);
        // Dropped mid-stream by the server; appends go on while the client is away.
        server.hub.disconnectAll();
        await append(`resume-${round}-away`, 15);
      }
      await append('resume-end', 10);
      const expected = (await server.request('GET', '/position')).body.head - start;
      await until(() => client.received.length >= expected, 'every event after the reconnects');
      expect(client.opened).toBeGreaterThan(1);
      expect(client.positions()).toEqual(Array.from({ length: expected }, (_, i) => start + i + 1));
    } finally {
      client.source.close();
    }
  });

  it('follows only what its filters or its stream select, and resumes from Last-Event-ID', async () => {
    const start = (await server.request('GET', '/position')).body.head as number;
    const byCategory = follow(`${server.url}/subscribe?after=${start}&category=invoice`);
    const byStream = follow(`${server.url}/streams/invoice-7/subscribe?after=${start}`);
    try {
      await append('invoice-7', 2, 'Issued');
      await append('receipt-1', 3, 'Issued');
      await append('invoice-8', 1, 'Issued');
      await until(() => byCategory.received.length === 3 && byStream.received.length === 2, 'the filtered events');
      expect(byCategory.received.map((e) => e.streamId)).toEqual(['invoice-7', 'invoice-7', 'invoice-8']);
      expect(byStream.received.every((e) => e.streamId === 'invoice-7')).toBe(true);
    } finally {
      byCategory.source.close();
      byStream.source.close();
    }
    // A raw request with Last-Event-ID resumes after it; a malformed one is a problem.
    const controller = new AbortController();
    const resumed = await fetch(`${server.url}/subscribe?category=invoice`, {
      headers: { 'last-event-id': String(start + 1) },
      signal: controller.signal,
    });
    expect(resumed.status).toBe(200);
    expect(resumed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = (resumed.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes(`id: ${start + 6}`)) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).not.toContain(`id: ${start + 1}\n`);
    expect(text).toContain(`id: ${start + 2}\n`);
    controller.abort();
    const bad = await server.request('GET', '/subscribe', undefined, { 'last-event-id': 'yesterday' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_INPUT', field: 'last-event-id' });
    const badFilter = await server.request('GET', '/subscribe?category=');
    expect(badFilter.status).toBe(400);
  });
});

describe.each(backends)('a client that does not read, on $name', (backend) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(backend, {
      live: { maxBufferedBytes: 64 * 1024, bufferEvents: 500, stallTimeoutMs: 500, retryMs: 50 },
    });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('is disconnected once its socket stays full, while a reading client gets everything', async () => {
    const start = (await server.request('GET', '/position')).body.head as number;
    const reader = follow(`${server.url}/subscribe?after=${start}`);
    const url = new URL(`${server.url}/subscribe?after=${start}`);
    const stalled = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search });
    // Never reads: its socket's buffers fill up, then the server's. (Paused, it cannot even see
    // the server close it, so the server's own count of clients tells.)
    stalled.on('response', (response) => response.pause());
    stalled.on('error', () => {});
    stalled.end();
    try {
      await until(() => server.hub.clients === 2, 'both clients');
      const payload = 'x'.repeat(4000);
      let appended = 0;
      for (let batch = 0; batch < 200 && server.hub.clients === 2; batch++) {
        await server.request('POST', `/streams/bulk-${batch}/events`, {
          events: Array.from({ length: 50 }, () => ({ type: 'Bulk', data: { payload } })),
        });
        appended += 50;
      }
      await until(() => server.hub.clients === 1, 'the stalled client to be cut off');
      await until(() => reader.received.length === appended, 'the reading client to get every event');
      expect(reader.positions()).toEqual(Array.from({ length: appended }, (_, i) => start + i + 1));
      expect(server.hub.clients).toBe(1);
    } finally {
      reader.source.close();
      stalled.destroy();
    }
  });
});
