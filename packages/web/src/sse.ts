/**
 * Server-Sent Events read through `fetch`, so that the request carries the signed-in key
 * (`EventSource` cannot send headers). It parses the stream as the SSE spec says (WHATWG HTML,
 * "Server-sent events": lines end in CRLF, LF or CR; `:` starts a comment; `data`, `id`,
 * `event` and `retry` fields; a blank line dispatches), reconnects after the `retry:` hint
 * with `Last-Event-ID`, and stops on 401 (the sign-in view shows, see api.ts) and 403, and
 * whenever `signal` aborts.
 */
import { type ApiError, failure } from './api.js';
import { authHeaders } from './auth.js';

export interface SseMessage {
  /** The event's type: `message` unless an `event:` field said otherwise. */
  type: string;
  data: string;
  /** The last event id seen so far (the event's own, or an earlier one's). */
  lastEventId: string;
}

export interface SseHandlers {
  /** The server answered 200 with an event stream. */
  onOpen?: () => void;
  onMessage: (message: SseMessage) => void;
  /** The connection failed or ended: it reconnects after the retry delay. */
  onDisconnect?: () => void;
  /** The server refused (401, 403 or another 4xx): it does not reconnect. */
  onRefused?: (error: ApiError) => void;
}

/** The delay before a reconnect until the server sends `retry:`, as browsers do. */
const defaultRetryMs = 3000;

/** An SSE parser: feed it decoded text as it comes; it calls `dispatch` per complete event. */
export class SseParser {
  #buffer = '';
  /** A chunk ended in CR: an LF that starts the next one belongs to that line end. */
  #afterCr = false;
  #data = '';
  #type = '';
  #idBuffer = '';
  lastEventId: string;
  retryMs: number | undefined;

  readonly #dispatch: (message: SseMessage) => void;

  constructor(dispatch: (message: SseMessage) => void, lastEventId = '') {
    this.#dispatch = dispatch;
    this.lastEventId = lastEventId;
    this.#idBuffer = lastEventId;
  }

  push(text: string): void {
    let chunk = text;
    if (this.#afterCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.#afterCr = false;
    this.#buffer += chunk;
    let start = 0;
    for (;;) {
      const match = /\r\n|\r|\n/g;
      match.lastIndex = start;
      const found = match.exec(this.#buffer);
      if (!found) break;
      // A CR at the very end may be the first half of a CRLF split across chunks.
      if (found[0] === '\r' && found.index === this.#buffer.length - 1) this.#afterCr = true;
      this.#line(this.#buffer.slice(start, found.index));
      start = found.index + found[0].length;
    }
    this.#buffer = this.#buffer.slice(start);
  }

  /** The stream ended: an event without its blank line is discarded (the spec says so). */
  end(): void {
    this.#buffer = '';
    this.#afterCr = false;
    this.#data = '';
    this.#type = '';
    this.#idBuffer = this.lastEventId;
  }

  #line(line: string): void {
    if (line === '') {
      this.lastEventId = this.#idBuffer;
      const data = this.#data;
      const type = this.#type || 'message';
      this.#data = '';
      this.#type = '';
      if (data === '') return;
      this.#dispatch({ type, data: data.endsWith('\n') ? data.slice(0, -1) : data, lastEventId: this.lastEventId });
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data += `${value}\n`;
    else if (field === 'event') this.#type = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.#idBuffer = value;
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) this.retryMs = Number(value);
    }
  }
}

const wait = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Reads `url` as an event stream until `signal` aborts or the server refuses; resolves then.
 * Each connection sends the current key and, after the first event, `Last-Event-ID`.
 */
export async function readSse(url: string, handlers: SseHandlers, signal: AbortSignal): Promise<void> {
  let lastEventId = '';
  let retryMs = defaultRetryMs;
  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', ...authHeaders() };
      if (lastEventId !== '') headers['last-event-id'] = lastEventId;
      const response = await fetch(url, { headers, signal, cache: 'no-store' });
      if (!response.ok) {
        const error = await failure(response);
        // 4xx is a refusal (reconnecting would be refused again), except too many requests.
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          handlers.onRefused?.(error);
          return;
        }
        const after = Number(response.headers.get('retry-after'));
        if (after > 0) retryMs = Math.max(retryMs, after * 1000);
        throw error;
      }
      if (!/^text\/event-stream\b/.test(response.headers.get('content-type') ?? '') || !response.body) {
        throw new Error('not an event stream');
      }
      handlers.onOpen?.();
      const parser = new SseParser((message) => {
        lastEventId = message.lastEventId;
        handlers.onMessage(message);
      }, lastEventId);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          parser.push(decoder.decode(value, { stream: true }));
          if (parser.retryMs !== undefined) retryMs = parser.retryMs;
        }
        parser.push(decoder.decode());
      } finally {
        parser.end();
        lastEventId = parser.lastEventId;
      }
    } catch {
      // A network failure, a cut connection, or the abort: reconnect unless aborted.
    }
    if (signal.aborted) return;
    handlers.onDisconnect?.();
    await wait(retryMs, signal);
  }
}
