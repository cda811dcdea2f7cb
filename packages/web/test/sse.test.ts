/**
 * The fetch-based SSE reader of the live tail (src/sse.ts), in Node against a plain HTTP
 * server: the parser follows the spec (line ends, comments, fields, the id kept across
 * events, an unfinished event dropped), and the reader reconnects after the `retry:` hint
 * with `Last-Event-ID`, and stops on a refusal or an abort.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readSse, type SseMessage, SseParser } from '../src/sse.js';

describe('SseParser', () => {
  const parse = (chunks: string[]) => {
    const messages: SseMessage[] = [];
    const parser = new SseParser((message) => messages.push(message));
    for (const chunk of chunks) parser.push(chunk);
    return { messages, parser };
  };

  it('reads data, id, event and retry fields, skips comments, and splits lines on CRLF, LF and CR', () => {
    const { messages, parser } = parse([
      ': heartbeat\n\nretry: 250\n\n',
      'id: 1\ndata: {"a":1}\n\n',
      'data:two\r\ndata:  lines\r\n\r\n',
      'event: custom\rid: 3\rdata: x\r\r',
      'data\n\n',
    ]);
    expect(messages).toEqual([
      { type: 'message', data: '{"a":1}', lastEventId: '1' },
      { type: 'message', data: 'two\n lines', lastEventId: '1' },
      { type: 'custom', data: 'x', lastEventId: '3' },
      // A `data` field without a colon is an empty value: an event with empty data, per the spec.
      { type: 'message', data: '', lastEventId: '3' },
    ]);
    expect(parser.retryMs).toBe(250);
  });

  it('joins lines split across chunks (a CRLF too), and drops an event the stream cut short', () => {
    const { messages, parser } = parse(['id: 7\nda', 'ta: he', 'llo\r', '\n\r\n', 'id: 8\ndata: cut']);
    expect(messages).toEqual([{ type: 'message', data: 'hello', lastEventId: '7' }]);
    parser.end();
    expect(parser.lastEventId).toBe('7');
    expect(messages).toHaveLength(1);
  });

  it('ignores a bad retry and an id with NUL, and dispatches nothing for an event without data', () => {
    const { messages, parser } = parse(['retry: 1s\nid: a\0b\n\nid: 9\n\n']);
    expect(messages).toEqual([]);
    expect(parser.retryMs).toBeUndefined();
    expect(parser.lastEventId).toBe('9');
  });
});

describe('readSse', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  async function serve(handler: (request: IncomingMessage, count: number) => string | number): Promise<string> {
    let count = 0;
    server = createServer((request, response) => {
      const answer = handler(request, ++count);
      if (typeof answer === 'number') {
        response.writeHead(answer, { 'content-type': 'application/problem+json' });
        response.end(
          JSON.stringify({ status: answer, code: 'FORBIDDEN', detail: 'this key lacks the "subscribe" scope' }),
        );
        return;
      }
      response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      response.end(answer);
    });
    const listening = server;
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(listening.address() as AddressInfo).port}/subscribe`;
  }

  it('reconnects after the retry hint with Last-Event-ID, and stops on a 403', async () => {
    const seen: (string | undefined)[] = [];
    const url = await serve((request, count) => {
      seen.push(request.headers['last-event-id'] as string | undefined);
      expect(request.headers.accept).toBe('text/event-stream');
      if (count === 1) return 'retry: 20\n\nid: 4\ndata: {"n":4}\n\nid: 5\ndata: {"n":5}\n\n';
      if (count === 2) return 'id: 6\ndata: {"n":6}\n\n';
      return 403;
    });
    const data: string[] = [];
    const events: string[] = [];
    let refused: { status: number; missingScope: string | undefined } | undefined;
    await readSse(
      url,
      {
        onOpen: () => events.push('open'),
        onDisconnect: () => events.push('disconnect'),
        onMessage: (message) => data.push(message.data),
        onRefused: (error) => {
          refused = { status: error.status, missingScope: error.missingScope };
        },
      },
      AbortSignal.timeout(5000),
    );
    expect(data).toEqual(['{"n":4}', '{"n":5}', '{"n":6}']);
    expect(seen).toEqual([undefined, '5', '6']);
    expect(events).toEqual(['open', 'disconnect', 'open', 'disconnect']);
    expect(refused).toEqual({ status: 403, missingScope: 'subscribe' });
  });

  it('ends when its signal aborts, also while waiting to reconnect', async () => {
    const url = await serve(() => 'retry: 60000\n\n');
    const abort = new AbortController();
    const done = readSse(url, { onMessage: () => {}, onDisconnect: () => abort.abort() }, abort.signal);
    await expect(
      Promise.race([done.then(() => 'ended'), new Promise((resolve) => setTimeout(resolve, 3000, 'hung'))]),
    ).resolves.toBe('ended');
  });
});
