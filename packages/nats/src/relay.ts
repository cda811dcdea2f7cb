/**
 * The relay: publishes every event of the log (or of some categories and types), in log
 * order, to one JetStream stream, each event exactly once. docs/nats-relay.md has the design;
 * in short:
 *
 * - **One active relay across processes.** The relay is a consumer group of one partition
 *   (`nats-relay.<name>`): the member holding the partition's lease reads the log in order,
 *   the others stand by and take over when it dies. Its checkpoint (`nats-relay.<name>#0`) is
 *   listed with every subscription's and projection's.
 * - **Checkpoint after acknowledgement.** A page's events are published, and the page is
 *   handed back (so its checkpoint stored) only once JetStream acknowledged every one of them.
 * - **Exactly once, in order, in the stream.** Before every page (and again after a failure)
 *   the relay reads the stream's last message, whose `Annals-Position` header says where the
 *   log was published up to; events of the page at or before it are skipped, not sent again,
 *   whatever the checkpoint says and however long the relay was down. Each message then says
 *   which stream sequence it must follow (`Nats-Expected-Last-Sequence`), so JetStream stores
 *   nothing out of order nor after a gap, even from a second instance that still believes it
 *   holds the lease. `Nats-Msg-Id` (the event id) lets the stream's duplicate window catch
 *   what is left.
 * - **Backpressure.** At most `maxInFlight` publishes wait for their acknowledgement; a page
 *   waits for all of its own, and the next page is read only then.
 */
import { randomUUID } from 'node:crypto';
import {
  type ConsumerGroupMember,
  type EventStore,
  InvalidInputError,
  type RecordedEvent,
  subscriptions,
} from '@annals/core';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { header, messageOf, type PersonalDataMode } from './messages.js';
import { AsyncPublisher, type PubAck } from './publisher.js';
import { categoryOf, type SubjectTemplate, subjectTemplate } from './subjects.js';

/** Options of {@link startNatsRelay}. */
export interface NatsRelayOptions {
  /** NATS servers to connect to. @defaultValue `'nats://127.0.0.1:4222'` */
  servers?: string | string[];
  /** A connection of your own, instead of `servers`; the relay leaves it open when it stops. */
  connection?: NatsConnection;
  /**
   * The relay's name: its checkpoint and lease. Every process relaying to the same stream
   * uses the same name. @defaultValue `'default'`
   */
  name?: string;
  /**
   * The JetStream stream. It must be the relay's own: the relay checks that its last message
   * is one it published. @defaultValue `'ANNALS'`
   */
  stream?: string;
  /**
   * The subject of each event; placeholders `{category}`, `{type}`, `{stream}`.
   * @defaultValue `'annals.{category}.{type}'`
   */
  subject?: string;
  /** Create the stream (file storage, subjects from the template) when it does not exist. @defaultValue true */
  createStream?: boolean;
  /** Only events of these categories. */
  categories?: string[];
  /** Only events of these types. */
  eventTypes?: string[];
  /** Where a relay with no checkpoint begins. @defaultValue `'start'` */
  from?: 'start' | 'end';
  /** Events read from the log at a time. @defaultValue 2000 */
  batchSize?: number;
  /** Publishes waiting for their acknowledgement at most. @defaultValue 5000 */
  maxInFlight?: number;
  /** How long one publish waits for its acknowledgement. @defaultValue 5000 */
  ackTimeoutMs?: number;
  /**
   * How long a page is retried (NATS down, refused publishes) before the relay lets go of it
   * and starts over from its checkpoint. @defaultValue 30000
   */
  retryWindowMs?: number;
  /** `'redact'`: personal fields are published as `null`. @defaultValue `'redact'` */
  personalData?: PersonalDataMode;
  /** How often a standby relay looks for a dead active one. @defaultValue 1000 */
  heartbeatMs?: number;
  /** An active relay silent this long is taken as gone. @defaultValue 5000 */
  sessionTimeoutMs?: number;
}

/** Where a relay is, in the shape of a projection's status. */
export interface NatsRelayStatus {
  name: string;
  /** `'standby'`: another process relays; `'catching-up'` / `'live'`: this one does. */
  state: 'standby' | 'catching-up' | 'live' | 'stopped';
  /** Whether this process holds the relay's lease. */
  leader: boolean;
  /** The stored checkpoint: every event up to it is in JetStream. */
  position: number;
  head: number;
  /** Events in the log after the checkpoint (of every category). */
  lag: number;
  /** Age of the oldest event after the checkpoint, in seconds. */
  lagSeconds: number;
  /** Events this process published (acknowledged, not duplicates). */
  published: number;
  /** Publishes JetStream answered as duplicates (its duplicate window caught them). */
  duplicates: number;
  /** Recent rate of this process, over the last few seconds. */
  eventsPerSecond: number;
  /** The stream sequence of the last message this process knows of. */
  lastSequence: number;
  connected: boolean;
  lastError: string | undefined;
}

/** A relay is given a stream that holds messages it did not publish. */
export class RelayStreamError extends Error {
  override readonly name = 'RelayStreamError';
}

/** A running relay; see the module comment. Start one with {@link startNatsRelay}. */
export class NatsRelay {
  readonly name: string;
  readonly #store: EventStore;
  readonly #options: Required<Omit<NatsRelayOptions, 'connection' | 'categories' | 'eventTypes'>> &
    Pick<NatsRelayOptions, 'connection'>;
  readonly #subject: SubjectTemplate;
  readonly #member: ConsumerGroupMember;
  readonly #stopped: Promise<void>;
  #signalStop: () => void = () => {};
  #stopping = false;
  #connection: NatsConnection | undefined;
  #publisher: AsyncPublisher | undefined;
  #jsm: JetStreamManager | undefined;
  #lastSequence = 0;
  /** The highest log position known to be in the stream. */
  #relayedTo = 0;
  /** Whether `#lastSequence` and `#relayedTo` come from this connection, with no failure since. */
  #trusted = false;
  #published = 0;
  #duplicates = 0;
  #lastError: string | undefined;
  #samples: [number, number][] = [];

  /** @internal Use {@link startNatsRelay}. */
  constructor(store: EventStore, given: NatsRelayOptions) {
    const options = checkOptions(given);
    this.#store = store;
    this.#options = options;
    this.name = options.name;
    this.#subject = subjectTemplate(options.subject);
    this.#stopped = new Promise((resolve) => {
      this.#signalStop = resolve;
    });
    this.#member = subscriptions(store).joinGroup({
      group: `nats-relay.${options.name}`,
      partitions: 1,
      categories: given.categories,
      eventTypes: given.eventTypes,
      from: options.from,
      batchSize: options.batchSize,
      heartbeatMs: options.heartbeatMs,
      sessionTimeoutMs: options.sessionTimeoutMs,
      // The relay retries a page itself for `retryWindowMs`; past that the partition faults
      // and is started again from its checkpoint at the next heartbeat. Never parked: an
      // event left out would be a gap in the stream.
      retry: { attempts: 1 },
      onFailure: 'stop',
      handler: (events) => this.#relay(events),
    });
  }

  /** The checkpoint's name, as `subscriptions(store).checkpoints()` lists it. */
  get checkpoint(): string {
    return `nats-relay.${this.name}#0`;
  }

  async status(): Promise<NatsRelayStatus> {
    const leader = this.#member.partitions.length > 0;
    const stored = (await subscriptions(this.#store).checkpoints()).find((c) => c.name === this.checkpoint);
    const head = await this.#store.headPosition();
    const position = stored?.position ?? 0;
    const lag = stored?.lag ?? head;
    return {
      name: this.name,
      state: this.#stopping ? 'stopped' : !leader ? 'standby' : lag === 0 ? 'live' : 'catching-up',
      leader,
      position,
      head,
      lag,
      lagSeconds: stored?.lagSeconds ?? 0,
      published: this.#published,
      duplicates: this.#duplicates,
      eventsPerSecond: this.#rate(),
      lastSequence: this.#lastSequence,
      connected: this.#connection !== undefined && !this.#connection.isClosed(),
      lastError: this.#lastError ?? this.#member.lastError,
    };
  }

  /**
   * Stops once the page in hand is published (a stop during a reconnect may still publish one
   * more page); gives up the lease; closes its own NATS connection.
   */
  async stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#signalStop();
    }
    await this.#member.stop();
    const connection = this.#connection;
    this.#connection = undefined;
    this.#publisher?.close();
    this.#publisher = undefined;
    if (connection && !this.#options.connection) await connection.close().catch(() => {});
  }

  /** The group's handler: returns once every event of the page is in the stream. */
  async #relay(events: RecordedEvent[]): Promise<void> {
    const deadline = Date.now() + this.#options.retryWindowMs;
    let backoffMs = 100;
    for (;;) {
      if (this.#stopping) throw new Error('the relay is stopping');
      try {
        const publisher = await this.#client();
        // Read where the stream is unless the page begins right after what this instance
        // knows is there: a page may begin past it (another instance relayed meanwhile, and
        // this one's partition started again from the stored checkpoint), and a chain of
        // expected sequences built on stale figures would skip the events in between.
        if (!(this.#trusted && events[0]?.position === this.#relayedTo + 1)) await this.#sync();
        await this.#publish(publisher, events);
        this.#lastError = undefined;
        return;
      } catch (error) {
        this.#trusted = false;
        this.#lastError = describe(error);
        if (Date.now() + backoffMs >= deadline) throw error;
        await Promise.race([delay(backoffMs), this.#stopped]);
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
  }

  /** Publishes the page's events the stream does not hold yet, in order, each after the last. */
  async #publish(publisher: AsyncPublisher, events: RecordedEvent[]): Promise<void> {
    const { stream, maxInFlight, personalData } = this.#options;
    const todo = events.filter((event) => event.position > this.#relayedTo);
    const pending: { event: RecordedEvent; ack: Promise<PubAck> }[] = [];
    const settleOldest = async () => {
      const { event, ack } = pending.shift() as (typeof pending)[number];
      const answer = await ack;
      if (answer.duplicate) {
        // Stored before, within the duplicate window: the sequence chain of the publishes
        // after it is now one off, so they will be refused and the stream read again.
        this.#duplicates++;
        this.#trusted = false;
      } else {
        this.#published++;
        this.#lastSequence = answer.seq;
      }
      this.#relayedTo = event.position;
    };
    try {
      for (const event of todo) {
        const subject = this.#subject.subjectOf({
          category: categoryOf(event.streamId),
          type: event.type,
          stream: event.streamId,
        });
        const { headers, body } = messageOf(event, personalData, {
          [header.relay]: this.name,
          'Nats-Msg-Id': event.id,
          'Nats-Expected-Stream': stream,
          // After the last acknowledged message and every one still waiting before this.
          'Nats-Expected-Last-Sequence': String(this.#lastSequence + pending.length),
        });
        const ack = publisher.publish(subject, body, headers);
        // Awaited in order below; a rejection of one not awaited yet must not go unhandled.
        ack.catch(() => {});
        pending.push({ event, ack });
        if (pending.length >= maxInFlight) await settleOldest();
      }
      while (pending.length > 0) await settleOldest();
    } finally {
      pending.length = 0;
    }
    this.#sample();
  }

  /** Reads where the stream is: its last sequence, and the log position of its last message. */
  async #sync(): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const { stream, createStream } = this.#options;
    let info = await jsm.streams.info(stream).catch((error: unknown) => {
      if (!isStreamNotFound(error)) throw error;
      return undefined;
    });
    if (!info) {
      if (!createStream) throw new RelayStreamError(`JetStream stream ${stream} does not exist`);
      info = await jsm.streams.add({ name: stream, subjects: [this.#subject.filter] });
    }
    const last = info.state.last_seq;
    // What acknowledgements proved stays proved (a duplicate's ack too): a last message gone
    // (removed by a limit) must not make the relay send again what it already knows is there.
    let relayedTo = last >= this.#lastSequence ? this.#relayedTo : 0;
    if (last > 0) {
      const message = await jsm.streams.getMessage(stream, { seq: last });
      if (message) {
        const position = message.header.get(header.position);
        const relay = message.header.get(header.relay);
        if (!/^\d+$/.test(position) || relay !== this.name) {
          throw new RelayStreamError(
            `JetStream stream ${stream} holds messages the relay "${this.name}" did not publish ` +
              `(sequence ${last}); give each relay a stream of its own`,
          );
        }
        relayedTo = Number(position);
      }
      // No last message (removed by a limit): the checkpoint and the duplicate window decide.
    }
    this.#lastSequence = last;
    this.#relayedTo = relayedTo;
    this.#trusted = true;
  }

  /** The publisher, connecting first when there is no connection (or it closed). */
  async #client(): Promise<AsyncPublisher> {
    const current = this.#connection;
    if (current && !current.isClosed() && this.#publisher) return this.#publisher;
    const given = this.#options.connection;
    if (given?.isClosed()) {
      // Nothing to reconnect: let go of the lease, so that a relay elsewhere takes over.
      this.#lastError = 'the NATS connection given to the relay is closed: the relay stops';
      void this.stop();
      throw new Error(this.#lastError);
    }
    this.#publisher?.close();
    this.#publisher = undefined;
    this.#jsm = undefined;
    this.#connection = undefined;
    if (current && !given) await current.close().catch(() => {});
    const connection =
      given ??
      (await connect({
        servers: this.#options.servers,
        name: `annals-relay-${this.name}-${randomUUID().slice(0, 8)}`,
        // Reconnect for as long as it takes; a page's publishes fail meanwhile and are retried.
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        timeout: 2000,
      }));
    try {
      if (this.#stopping) throw new Error('the relay is stopping');
      const jsm = await jetstreamManager(connection, { timeout: this.#options.ackTimeoutMs });
      // Kept only once all of it works: a connection half set up is closed, never left behind.
      this.#jsm = jsm;
      this.#publisher = new AsyncPublisher(connection, this.#options.ackTimeoutMs);
      this.#connection = connection;
      this.#trusted = false;
      return this.#publisher;
    } catch (error) {
      if (!given) await connection.close().catch(() => {});
      throw error;
    }
  }

  #sample(): void {
    const now = Date.now();
    this.#samples.push([now, this.#published]);
    this.#samples = this.#samples.filter(([at]) => now - at <= 5000);
  }

  #rate(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last[0] === first[0]) return 0;
    return Math.round(((last[1] - first[1]) * 1000) / (last[0] - first[0]));
  }
}

/**
 * Starts relaying the log of `store` to JetStream; see {@link NatsRelay}. Throws
 * `InvalidInputError` for bad options; problems with NATS show in `status().lastError` and
 * are retried.
 *
 * @example
 * ```ts
 * import { startNatsRelay } from '@annals/nats';
 *
 * const relay = startNatsRelay(store, { servers: 'nats://127.0.0.1:4222' });
 * // ... every event now reaches subjects annals.<category>.<type> of stream ANNALS
 * await relay.stop();
 * ```
 */
export function startNatsRelay(store: EventStore, options: NatsRelayOptions = {}): NatsRelay {
  return new NatsRelay(store, options);
}

function checkOptions(given: NatsRelayOptions) {
  if (typeof given !== 'object' || given === null) throw new InvalidInputError('options', 'must be an object');
  const name = given.name ?? 'default';
  if (typeof name !== 'string' || !/^[\w:-]{1,100}$/.test(name)) {
    throw new InvalidInputError('name', 'must be 1-100 letters, digits or _ : -');
  }
  const stream = given.stream ?? 'ANNALS';
  if (typeof stream !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(stream)) {
    throw new InvalidInputError('stream', 'must be 1-100 letters, digits, _ or -');
  }
  const servers = given.servers ?? 'nats://127.0.0.1:4222';
  const list = Array.isArray(servers) ? servers : [servers];
  if (list.length === 0 || list.some((server) => !isServerUrl(server))) {
    throw new InvalidInputError('servers', 'must be a NATS URL (nats://host:port) or a non-empty list of them');
  }
  const positive = (value: number | undefined, fallback: number, field: string, max = 3_600_000) => {
    const result = value ?? fallback;
    if (!Number.isSafeInteger(result) || result < 1 || result > max) {
      throw new InvalidInputError(field, `must be a whole number from 1 to ${max}`);
    }
    return result;
  };
  const personalData = given.personalData ?? 'redact';
  if (personalData !== 'redact' && personalData !== 'include') {
    throw new InvalidInputError('personalData', 'must be "redact" or "include"');
  }
  const from = given.from ?? 'start';
  if (from !== 'start' && from !== 'end') throw new InvalidInputError('from', 'must be "start" or "end"');
  return {
    servers: list,
    connection: given.connection,
    name,
    stream,
    subject: given.subject ?? 'annals.{category}.{type}',
    createStream: given.createStream ?? true,
    from,
    batchSize: positive(given.batchSize, 2000, 'batchSize', 10_000),
    maxInFlight: positive(given.maxInFlight, 5000, 'maxInFlight', 100_000),
    ackTimeoutMs: positive(given.ackTimeoutMs, 5000, 'ackTimeoutMs'),
    retryWindowMs: positive(given.retryWindowMs, 30_000, 'retryWindowMs'),
    personalData: personalData as PersonalDataMode,
    heartbeatMs: positive(given.heartbeatMs, 1000, 'heartbeatMs'),
    sessionTimeoutMs: positive(given.sessionTimeoutMs, 5000, 'sessionTimeoutMs'),
  };
}

/** A NATS server address as the client takes it: `host:port`, or a URL of a NATS scheme. */
function isServerUrl(server: unknown): boolean {
  if (typeof server !== 'string' || server.length === 0 || server.length > 2000) return false;
  try {
    const url = new URL(server.includes('://') ? server : `nats://${server}`);
    return ['nats:', 'tls:', 'ws:', 'wss:'].includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

function isStreamNotFound(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    ((error as { name?: string }).name === 'StreamNotFoundError' ||
      /stream not found/i.test(String((error as { message?: string }).message)))
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
