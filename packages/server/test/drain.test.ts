/**
 * Closing drains: appends in flight finish and are stored, new requests are refused, SSE
 * clients are ended (they reconnect elsewhere with their Last-Event-ID), and the store closes.
 */
import { describe, expect, it } from 'vitest';
import { backends, startTestServer } from './support.js';

describe.each(backends)('draining on close, on $name', (backend) => {
  it('finishes appends in flight, ends SSE clients, then refuses connections', async () => {
    // An inline projection holds the appends' transaction until the test lets it go, so that
    // appends are surely in flight when the server starts closing.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const server = await startTestServer(backend, {
      store: { inlineProjectionTimeoutMs: 60_000 },
      app: {
        inlineProjections: [
          {
            name: 'gate',
            handleBatch: async () => {
              entered();
              await gate;
            },
          },
        ],
      },
    });
    let cleaned = false;
    try {
      const sse = await fetch(`${server.url}/subscribe`);
      expect(sse.status).toBe(200);
      const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
      const sseEnded = (async () => {
        let text = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return text;
          text += new TextDecoder().decode(value);
        }
      })();
      const append = (i: number) =>
        fetch(`${server.url}/streams/drain-${i}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: [{ type: 'Drained', data: { i } }] }),
        }).then(
          (response) => response.status,
          () => 0,
        );
      const inFlight = Array.from({ length: 8 }, (_, i) => append(i));
      await inside;
      const closing = server.close();
      // New requests are refused while the server drains.
      const late = await append(99);
      expect([0, 503]).toContain(late);
      release();
      const statuses = await Promise.all(inFlight);
      await closing;
      expect(await sseEnded).toContain('retry:');
      // The one held at the gate was surely in flight; the others were, or came after the
      // close began and were refused whole (503, or the connection refused: 0).
      expect(statuses.filter((status) => status === 201).length).toBeGreaterThan(0);
      for (const status of statuses) expect([201, 503, 0]).toContain(status);
      await expect(fetch(`${server.url}/health/live`)).rejects.toThrow();

      // What was acknowledged is stored; what was refused (and the late one) is not.
      const rows = await server.client.query<{ stream_id: string }>(
        `select stream_id from "${server.schema}".events where stream_id like 'drain-%'`,
      );
      const stored = rows.map((row) => row.stream_id).sort();
      const acknowledged = statuses.flatMap((status, i) => (status === 201 ? [`drain-${i}`] : [])).sort();
      expect(stored).toEqual(acknowledged);
      await server.client.exec(`drop schema if exists "${server.schema}" cascade`);
      cleaned = true;
    } finally {
      release();
      if (!cleaned) await server.cleanup().catch(() => {});
    }
  });
});
