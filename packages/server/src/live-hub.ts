/**
 * Live fan-out of the log to Server-Sent Events clients, with one reader of the log for all
 * of them however many there are.
 *
 * - The hub runs one subscription from the log's end and keeps the newest events it saw in a
 *   bounded buffer (`bufferEvents`), contiguous by position.
 * - A client joins after a position (its `Last-Event-ID`, or `after`). It first catches up on
 *   its own, reading the log a page at a time with its filters, while its socket keeps up
 *   (it waits for `drain`); its cursor is the last position it examined.
 * - Once its cursor reaches what the hub's buffer covers, it switches to live: in one
 *   synchronous step it takes the buffered events after its cursor and from then on every
 *   page the hub hands out. Both run on the event loop, so nothing lands between the two:
 *   no event is skipped and none is sent twice, and each is sent in position order.
 * - Each event's SSE `id` is its position. A client that reconnects with `Last-Event-ID`
 *   starts again after the last event it received.
 * - A live client whose socket does not keep up (more than `maxBufferedBytes` waiting in its
 *   socket after a page) leaves live mode: it waits for its socket to drain, then catches up
 *   from the log after its cursor (what it was sent is already in its socket), and switches
 *   back. So a client holds at most `maxBufferedBytes` plus one page of the hub, and memory
 *   stays bounded by clients x that plus the hub's buffer. A client whose socket does not
 *   drain within `stallTimeoutMs` is disconnected, which frees what it held; it reconnects
 *   (the stream announces `retry:`) with its `Last-Event-ID` and catches up.
 * - A heartbeat comment every `heartbeatMs` keeps proxies from closing quiet connections.
 */
import { type EventStore, type RecordedEvent, type Subscription, subscriptions } from '@annals/core';

/** What a client wants of the log. */
export interface LiveFilter {
  categories?: string[];
  eventTypes?: string[];
  streamIds?: string[];
}

/** The socket side of a client: write a chunk, see what waits in its buffer, end it. */
export interface LiveSink {
  write(chunk: string): boolean;
  /** Bytes waiting in the socket's buffer. */
  readonly buffered: number;
  /** Resolves when the socket's buffer has drained (or the socket closed). */
  drained(): Promise<void>;
  /** Ends the connection: gently (`end`) or at once, dropping what waits (`destroy`). */
  close(how: 'end' | 'destroy'): void;
}

/** Options of a {@link LiveHub}. */
export interface LiveHubOptions {
  /** Newest events kept for clients about to switch to live. @defaultValue 10000 */
  bufferEvents?: number;
  /** Bytes a live client may have waiting in its socket before it is dropped. @defaultValue 4 MiB */
  maxBufferedBytes?: number;
  /** @defaultValue 15000 */
  heartbeatMs?: number;
  /** The reconnection delay announced to clients. @defaultValue 1000 */
  retryMs?: number;
  /** Events read per round trip while a client catches up. @defaultValue 500 */
  catchUpPageSize?: number;
  /** How long a client's socket may stay full before the client is disconnected. @defaultValue 30000 */
  stallTimeoutMs?: number;
  /**
   * Told of every page the hub's reader hands out, before it goes to the clients: its events
   * and the live clients it reached (for metrics: how far behind the log the fan-out runs).
   */
  onPublish?: (page: { events: readonly RecordedEvent[]; deliveries: number; clients: number }) => void;
  /**
   * Read the log from this store (one on a streaming replica of the hub's store): the hub's
   * reader and every client's catch-up read it; wake-ups still come from the hub's store.
   */
  readFrom?: EventStore;
}

const categoryOf = (streamId: string) => {
  const dash = streamId.indexOf('-');
  return dash < 0 ? streamId : streamId.slice(0, dash);
};

/** Each event's SSE frame, made once however many clients it goes to. */
const frames = new WeakMap<RecordedEvent, string>();
function frameOf(event: RecordedEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = `id: ${event.position}\ndata: ${JSON.stringify(event)}\n\n`;
    frames.set(event, frame);
  }
  return frame;
}

class LiveClient {
  /** Last position examined: everything up to it was sent or filtered out. */
  cursor: number;
  live = false;
  closed = false;
  delivered = 0;
  readonly #categories: ReadonlySet<string> | undefined;
  readonly #eventTypes: ReadonlySet<string> | undefined;
  readonly #streamIds: ReadonlySet<string> | undefined;
  /** The categories it can match (its categories, or its streams' ones); undefined: any. */
  readonly keys: readonly string[] | undefined;

  constructor(
    readonly filter: LiveFilter,
    after: number,
    readonly sink: LiveSink,
  ) {
    this.cursor = after;
    const set = (values: string[] | undefined) => (values ? new Set(values) : undefined);
    this.#categories = set(filter.categories);
    this.#eventTypes = set(filter.eventTypes);
    this.#streamIds = set(filter.streamIds);
    const keys = this.#categories ?? (this.#streamIds && new Set([...this.#streamIds].map(categoryOf)));
    this.keys = keys && [...keys];
  }

  /** Whether the event passes the filter; `category` is the event's, worked out once by the caller. */
  matches(event: RecordedEvent, category: string): boolean {
    return (
      (!this.#categories || this.#categories.has(category)) &&
      (!this.#eventTypes || this.#eventTypes.has(event.type)) &&
      (!this.#streamIds || this.#streamIds.has(event.streamId))
    );
  }

  /** Sends the events after the cursor that match (catch-up); returns false once the client is gone. */
  send(events: readonly RecordedEvent[]): boolean {
    // One write per page, not per event.
    let chunk = '';
    for (const event of events) {
      if (this.closed) return false;
      if (event.position <= this.cursor) continue;
      this.cursor = event.position;
      if (!this.matches(event, categoryOf(event.streamId))) continue;
      chunk += frameOf(event);
      this.delivered++;
    }
    return this.write(chunk);
  }

  /** Writes a chunk of frames (if any); returns false once the client is gone. */
  write(chunk: string): boolean {
    if (chunk !== '' && !this.closed) this.sink.write(chunk);
    return !this.closed;
  }
}

/**
 * The live clients, indexed by the categories they can match, so an event is offered only to
 * the clients that may want it: with many clients each following a few categories, the cost of
 * a page grows with the deliveries, not with events x clients.
 */
class LiveIndex {
  readonly #byCategory = new Map<string, Set<LiveClient>>();
  readonly #anyCategory = new Set<LiveClient>();
  readonly all = new Set<LiveClient>();

  add(client: LiveClient): void {
    this.all.add(client);
    if (!client.keys) this.#anyCategory.add(client);
    else
      for (const key of client.keys) {
        const clients = this.#byCategory.get(key) ?? new Set<LiveClient>();
        this.#byCategory.set(key, clients);
        clients.add(client);
      }
  }

  delete(client: LiveClient): void {
    if (!this.all.delete(client)) return;
    this.#anyCategory.delete(client);
    for (const key of client.keys ?? []) {
      const clients = this.#byCategory.get(key);
      clients?.delete(client);
      if (clients?.size === 0) this.#byCategory.delete(key);
    }
  }

  /** Each live client that wants some of `events`, with the frames it wants, in order. */
  route(events: readonly RecordedEvent[]): Map<LiveClient, string> {
    const chunks = new Map<LiveClient, string>();
    for (const event of events) {
      const category = categoryOf(event.streamId);
      const offer = (clients: Set<LiveClient> | undefined) => {
        if (!clients) return;
        for (const client of clients) {
          // A client's cursor stays where it went live: events it caught up on are not sent twice.
          if (event.position <= client.cursor || !client.matches(event, category)) continue;
          chunks.set(client, (chunks.get(client) ?? '') + frameOf(event));
          client.delivered++;
        }
      };
      offer(this.#byCategory.get(category));
      offer(this.#anyCategory);
    }
    return chunks;
  }
}

/** The live fan-out; see the module comment. */
export class LiveHub {
  readonly #store: EventStore;
  /** Where the log is read: the store, or a replica of it. */
  readonly #reader: EventStore;
  readonly #options: Required<Omit<LiveHubOptions, 'onPublish' | 'readFrom'>>;
  readonly #onPublish: LiveHubOptions['onPublish'];
  readonly #clients = new Set<LiveClient>();
  readonly #live = new LiveIndex();
  #buffer: RecordedEvent[] = [];
  /** Last position the hub has seen (its subscription's position). */
  #position = 0;
  #subscription: Subscription | undefined;
  #starting: Promise<void> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(store: EventStore, options: LiveHubOptions = {}) {
    this.#store = store;
    this.#reader = options.readFrom ?? store;
    this.#options = {
      bufferEvents: options.bufferEvents ?? 10_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 * 1024 * 1024,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      retryMs: options.retryMs ?? 1000,
      catchUpPageSize: options.catchUpPageSize ?? 500,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    };
    this.#onPublish = options.onPublish;
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Starts the hub's reader (once; clients call it on arrival). */
  start(): Promise<void> {
    this.#starting ??= (async () => {
      this.#position = await this.#reader.headPosition();
      this.#subscription = subscriptions(this.#store).subscribe({
        ...(this.#reader !== this.#store ? { readFrom: this.#reader } : {}),
        from: { after: this.#position },
        batchSize: 1000,
        pollIntervalMs: 1000,
        handler: (events) => this.#publish(events),
      });
      this.#heartbeat = setInterval(() => {
        for (const client of this.#clients) client.sink.write(': heartbeat\n\n');
      }, this.#options.heartbeatMs);
      this.#heartbeat.unref();
    })();
    return this.#starting;
  }

  /**
   * Serves one client until it leaves or the hub closes: catch-up from `after`, then live.
   * Resolves when the client is gone.
   */
  async serve(sink: LiveSink, after: number, filter: LiveFilter, gone: Promise<void>): Promise<void> {
    if (this.#closed) {
      sink.close('end');
      return;
    }
    await this.start();
    const client = new LiveClient(filter, after, sink);
    void gone.then(() => this.#drop(client));
    sink.write(`retry: ${this.#options.retryMs}\n\n`);
    this.#clients.add(client);
    await this.#catchUp(client);
    await gone;
  }

  /** Ends every client with the retry hint (for shutdown), and the hub's reader. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const client of [...this.#clients]) this.#drop(client, 'end');
    await this.#subscription?.stop();
  }

  /** Drops every client at once (they reconnect and resume). */
  disconnectAll(): void {
    for (const client of [...this.#clients]) this.#drop(client, 'destroy');
  }

  /** Catches a client up from its cursor, then switches it to live. */
  async #catchUp(client: LiveClient): Promise<void> {
    try {
      await this.#readUp(client);
    } catch {
      // The store failed while catching up: the client reconnects and tries again.
      this.#drop(client, 'end');
    }
  }

  async #readUp(client: LiveClient): Promise<void> {
    const { catchUpPageSize } = this.#options;
    while (!client.closed && !this.#closed) {
      if (client.sink.buffered > this.#options.maxBufferedBytes / 2 && !(await this.#drainOrStall(client))) return;
      // The switch: the buffer holds every event after (its first position - 1), so a
      // cursor at or past that point continues from the buffer without a gap.
      const covered = (this.#buffer[0]?.position ?? this.#position + 1) - 1;
      if (client.cursor >= covered) {
        if (!client.send(this.#buffer)) return;
        // From here on it gets every page the hub publishes, each after the last: a live
        // client has been handed everything up to the hub's position.
        client.live = true;
        this.#live.add(client);
        this.#leaveIfBehind(client);
        return;
      }
      const head = await this.#reader.headPosition();
      const page: RecordedEvent[] = [];
      for await (const event of this.#reader.readAll({
        after: client.cursor,
        categories: client.filter.categories,
        eventTypes: client.filter.eventTypes,
        streamIds: client.filter.streamIds,
        limit: catchUpPageSize,
      })) {
        page.push(event);
      }
      if (!client.send(page)) return;
      // A short page saw every match up to the head: the cursor moves there.
      if (page.length < catchUpPageSize) client.cursor = Math.max(client.cursor, head);
    }
  }

  /** Waits for a client's socket to drain; false (and the client dropped) if it stalls. */
  async #drainOrStall(client: LiveClient): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#options.stallTimeoutMs);
    });
    const drained = await Promise.race([client.sink.drained().then(() => true), stalled]);
    clearTimeout(timer);
    if (!drained) this.#drop(client, 'destroy');
    return drained && !client.closed;
  }

  #publish(events: RecordedEvent[]): void {
    if (events.length === 0) return;
    this.#buffer.push(...events);
    const excess = this.#buffer.length - this.#options.bufferEvents;
    if (excess > 0) this.#buffer.splice(0, excess);
    this.#position = (events.at(-1) as RecordedEvent).position;
    const routed = this.#live.route(events);
    let deliveries = 0;
    for (const [client, chunk] of routed) {
      if (client.write(chunk)) this.#leaveIfBehind(client);
      deliveries++;
    }
    this.#onPublish?.({ events, deliveries, clients: routed.size });
  }

  /** A live client whose socket holds too much goes back to reading the log at its own pace. */
  #leaveIfBehind(client: LiveClient): void {
    if (client.sink.buffered <= this.#options.maxBufferedBytes) return;
    this.#leaveLive(client);
    void this.#catchUp(client);
  }

  #leaveLive(client: LiveClient): void {
    if (!client.live) return;
    client.live = false;
    this.#live.delete(client);
    // Everything up to the hub's position is in its socket or was filtered out.
    client.cursor = Math.max(client.cursor, this.#position);
  }

  #drop(client: LiveClient, how?: 'end' | 'destroy'): void {
    if (client.closed) return;
    this.#leaveLive(client);
    client.closed = true;
    this.#clients.delete(client);
    if (how) client.sink.close(how);
  }
}
