/**
 * One persistent subscription group at work (docs/kurrent-protocol.md, "Persistent
 * subscriptions"): the events of its source handed out to the consumers connected to it, each
 * event to one consumer at a time, until one of them acknowledges it.
 *
 * The group reads through a durable Annals subscription named after the group (its checkpoint
 * and parked events are Annals' own: `annals checkpoints` and the admin UI show them). Its
 * handler gets a page of at most `liveBufferSize` events, queues each for the consumers, and
 * returns only once every one is settled: acknowledged, skipped, or to be parked. So the
 * checkpoint never passes an event that is still owed to someone, and a crash or restart
 * delivers again what was not settled (at least once, as KurrentDB does).
 *
 * - A nack with `retry`, a message timeout, or the consumer leaving puts the event back in the
 *   queue with its retry count raised; past `maxRetryCount` it is parked.
 * - A nack with `park` (or too many retries) settles it as "park": the handler then fails for
 *   that event alone, and the subscription parks it with the reason, as it parks any event
 *   whose handler keeps failing. The rest of the page is settled already and not sent again.
 * - A nack with `stop` ends that consumer's call; its events go to the others.
 * - With no consumer the Annals subscription is stopped (nothing is read for nobody) and
 *   started again, from its checkpoint, when one joins.
 * - Replaying parked events hands each to the consumers again; what is acknowledged is
 *   unparked, what is parked again stays.
 */
import { createHash, randomUUID } from 'node:crypto';
import { type EventStore, type RecordedEvent, type Subscription, subscriptions } from '@annals/core';
import { GrpcError } from '../errors.js';
import { recordedOf } from '../mapping.js';
import { type ReadCall, send } from '../sink.js';
import type { GroupDefinition } from './registry.js';
import { filterOfSettings, maxWindow, positionText, sourceName } from './settings.js';

/** A consumer connected to the group. */
export interface Consumer {
  id: string;
  call: ReadCall;
  /** How many events it may hold unacknowledged (its `buffer_size`). */
  slots: number;
  structuredIds: boolean;
  from: string;
  username: string;
  connectionName: string;
  /** Ends its call (with the error, if any). */
  drop(error?: GrpcError): void;
}

export type NackAction = 'Unknown' | 'Park' | 'Retry' | 'Skip' | 'Stop';

interface Delivery {
  event: RecordedEvent;
  retryCount: number;
  state: 'queued' | 'sent' | 'settled';
  consumer?: ConsumerState;
  timer?: NodeJS.Timeout;
  /** Set when settled: undefined when done with, else the reason to park it. */
  park?: string;
  settle: () => void;
  done: Promise<void>;
  /** A parked event handed out again (not part of the subscription's page). */
  replay: boolean;
}

interface ConsumerState {
  consumer: Consumer;
  inFlight: Set<Delivery>;
  delivered: number;
}

/** Thrown into the subscription's handler when the group stops: the page is not settled. */
class Stopped extends Error {}

/** The Annals subscription name of a group: readable when it can be, else a digest. */
export function checkpointName(definition: GroupDefinition): string {
  const readable = `$persistent:${sourceName(definition.source)}::${definition.group}@${definition.generation}`;
  // A name with a control character (of its stream) is hashed: the store refuses those.
  if (readable.length <= 256 && !/\p{Cc}/u.test(readable)) return readable;
  const digest = createHash('sha256')
    .update(JSON.stringify([sourceName(definition.source), definition.group, definition.generation]))
    .digest('hex');
  return `$persistent:${digest}`;
}

/** A 32-bit hash of a string, for pinning. */
function hashOf(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A group at work in this server; see the module comment. */
export class GroupDispatcher {
  readonly definition: GroupDefinition;
  readonly name: string;
  readonly #store: EventStore;
  readonly #onError: (error: unknown) => void;
  readonly #wanted: (event: RecordedEvent) => boolean;
  /** Deliveries by event id: what a page handed over, kept until the checkpoint passes it. */
  readonly #deliveries = new Map<string, Delivery>();
  /** Parked events handed out again, by event id: kept apart from the pages' deliveries. */
  readonly #replays = new Map<string, Delivery>();
  /**
   * Retry counts of events that were owed when reading stopped (the last consumer left): the
   * next read hands them out with the count they had, so a poison event is still parked.
   */
  readonly #carried = new Map<string, { position: number; retryCount: number }>();
  /** Queued deliveries in log order. */
  #queue: Delivery[] = [];
  readonly #consumers: ConsumerState[] = [];
  #next = 0;
  #subscription: Subscription | undefined;
  /** Rejects the running handler's wait when the subscription is being stopped. */
  #interrupt: ((error: Error) => void) | undefined;
  #closed = false;
  /** What a consumer joining a closed group is told. */
  #closedWith: GrpcError | undefined;
  readonly #closing = deferred();
  #replaying = false;
  #lastCheckpointed: RecordedEvent | undefined;
  #lastKnown: RecordedEvent | undefined;
  #total = 0;

  constructor(store: EventStore, definition: GroupDefinition, onError: (error: unknown) => void) {
    this.#store = store;
    this.definition = definition;
    this.name = checkpointName(definition);
    this.#onError = onError;
    const { source, settings } = definition;
    const matches = filterOfSettings(settings);
    const { floor } = definition.start;
    this.#wanted =
      'stream' in source
        ? (event) => event.streamVersion - 1 >= floor
        : matches
          ? (event) => matches(event.streamId, event.type)
          : () => true;
  }

  /** Consumers connected now. */
  get consumers(): number {
    return this.#consumers.length;
  }

  /**
   * Connects a consumer; refused with `maximum-subscribers-reached` when the group is full,
   * and with `persistent-subscription-dropped` once the group stopped.
   */
  join(consumer: Consumer): void {
    this.assertRoom();
    this.#consumers.push({ consumer, inFlight: new Set(), delivered: 0 });
    this.#start();
    this.#pump();
  }

  /** Throws what {@link join} would refuse a consumer with now (checked before its confirmation is sent). */
  assertRoom(): void {
    const { settings } = this.definition;
    if (this.#closed) throw this.#closedWith ?? this.#dropped();
    if (settings.maxSubscriberCount > 0 && this.#consumers.length >= settings.maxSubscriberCount) {
      throw new GrpcError(
        9, // FAILED_PRECONDITION
        `Maximum subscriptions reached for group ${this.definition.group} on ${sourceName(this.definition.source)}.`,
        'maximum-subscribers-reached',
        this.#names(),
      );
    }
  }

  /** Disconnects a consumer; what it held goes back to the queue. Stops reading when it was the last. */
  async leave(consumer: Consumer): Promise<void> {
    const index = this.#consumers.findIndex((c) => c.consumer === consumer);
    if (index < 0) return;
    const [state] = this.#consumers.splice(index, 1) as [ConsumerState];
    for (const delivery of [...state.inFlight]) this.#retry(delivery, 'the consumer left');
    if (this.#consumers.length === 0) await this.#stopReading();
    else this.#pump();
  }

  /** Settles the events a consumer acknowledged (sent to it, or queued again after its timeout). */
  ack(ids: readonly string[]): void {
    for (const id of ids) {
      const delivery = this.#owed(id);
      if (delivery) this.#settle(delivery, undefined);
    }
    this.#pump();
  }

  /** Acts on a consumer's nack of `ids`. */
  nack(consumer: Consumer, ids: readonly string[], action: NackAction, reason: string): void {
    for (const id of ids) {
      const delivery = this.#owed(id);
      if (!delivery) continue;
      if (action === 'Skip') this.#settle(delivery, undefined);
      else if (action === 'Park') this.#settle(delivery, reason || 'parked by the consumer');
      else this.#retry(delivery, reason || 'retried by the consumer');
    }
    if (action === 'Stop') {
      const state = this.#consumers.find((c) => c.consumer === consumer);
      state?.consumer.drop();
    }
    this.#pump();
  }

  /**
   * Hands the parked events to the consumers again, at most `stopAt` of them; resolves when
   * each was settled (or the group stopped). One replay at a time per group.
   */
  async replayParked(stopAt: number | undefined): Promise<void> {
    if (this.#replaying) return;
    this.#replaying = true;
    let handed = 0;
    try {
      await subscriptions(this.#store).replayParked(this.name, async (event) => {
        if (this.#closed) throw new Stopped();
        if (stopAt !== undefined && handed >= stopAt) throw new Stopped();
        handed++;
        const delivery = this.#delivery(event, true);
        this.#replays.set(event.id, delivery);
        this.#enqueue(delivery);
        this.#pump();
        await Promise.race([delivery.done, this.#closing.promise]);
        this.#replays.delete(event.id);
        if (delivery.state !== 'settled') throw new Stopped();
        if (delivery.park !== undefined) throw new Error(delivery.park);
      });
    } catch (error) {
      if (!this.#closed) this.#onError(error);
    } finally {
      this.#replaying = false;
    }
  }

  /** Stops the group: every consumer's call ends with `error` (dropped, by default). */
  async close(error: GrpcError = this.#dropped()): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closedWith = error;
    this.#closing.resolve();
    for (const state of [...this.#consumers]) {
      for (const delivery of state.inFlight) clearTimeout(delivery.timer);
      state.consumer.drop(error);
    }
    this.#consumers.length = 0;
    await this.#stopReading();
  }

  /** The group's `SubscriptionInfo` fields that are its state (the rest are its settings). */
  async state() {
    const isStream = 'stream' in this.definition.source;
    const where = (event: RecordedEvent | undefined) =>
      event === undefined ? '' : isStream ? String(event.streamVersion - 1) : positionText(event.position);
    const parked = await subscriptions(this.#store).parked(this.name);
    const status = this.#subscription ? await this.#subscription.status().catch(() => undefined) : undefined;
    const inFlight = this.#consumers.reduce((sum, c) => sum + c.inFlight.size, 0);
    return {
      status: !status ? 'NotReady' : status.state === 'live' ? 'Live' : 'CatchingUp',
      connections: this.#consumers.map((c) => ({
        from: c.consumer.from,
        username: c.consumer.username,
        average_items_per_second: 0,
        total_items: String(c.delivered),
        count_since_last_measurement: '0',
        observed_measurements: [],
        available_slots: Math.max(0, c.consumer.slots - c.inFlight.size),
        in_flight_messages: c.inFlight.size,
        connection_name: c.consumer.connectionName,
      })),
      average_per_second: 0,
      total_items: String(this.#total),
      count_since_last_measurement: '0',
      last_checkpointed_event_position: where(this.#lastCheckpointed),
      last_known_event_position: where(this.#lastKnown),
      read_buffer_count: this.#queue.length,
      live_buffer_count: '0',
      retry_buffer_count: this.#queue.filter((d) => d.retryCount > 0).length,
      total_in_flight_messages: inFlight,
      outstanding_messages_count: this.#queue.length + inFlight,
      parked_message_count: String(parked.length),
    };
  }

  #names() {
    return { 'stream-name': sourceName(this.definition.source), 'group-name': this.definition.group };
  }

  /** The group's end as consumers hear it: FAILED_PRECONDITION when deleted or changed, UNAVAILABLE when the store went. */
  #dropped(code = 9): GrpcError {
    return new GrpcError(
      code,
      `Subscription group ${this.definition.group} on ${sourceName(this.definition.source)} was dropped.`,
      'persistent-subscription-dropped',
      this.#names(),
    );
  }

  #start(): void {
    if (this.#subscription || this.#closed) return;
    const { source, settings } = this.definition;
    const { from } = this.definition.start;
    let interrupt: (error: Error) => void = () => {};
    const interrupted = new Promise<never>((_resolve, reject) => {
      interrupt = reject;
    });
    interrupted.catch(() => {});
    this.#interrupt = interrupt;
    const subscription = subscriptions(this.#store).subscribe({
      name: this.name,
      from,
      ...('stream' in source ? { streamIds: [source.stream] } : {}),
      batchSize: Math.min(maxWindow, settings.liveBufferSize),
      pollIntervalMs: 200,
      // A second attempt at once: what makes a stopped page 'interrupted' rather than failed,
      // and what isolates an event to park (its page settled but for it).
      retry: { attempts: 2, backoffMs: 1 },
      onFailure: 'park',
      handler: (events) => this.#handle(events, interrupted),
    });
    this.#subscription = subscription;
    const ended = () => {
      // Ended on its own (the store closed, the database gone past retries): the consumers
      // are told, and resubscribe.
      if (this.#subscription !== subscription) return;
      this.#subscription = undefined;
      for (const state of [...this.#consumers]) state.consumer.drop(this.#dropped(14));
    };
    void subscription.done.then(ended, ended);
  }

  async #stopReading(): Promise<void> {
    const subscription = this.#subscription;
    if (!subscription) return;
    this.#subscription = undefined;
    // stop() marks the loop stopped at once; the handler's wait is then cut short, and the
    // loop sees the page as interrupted, not failed.
    const stopping = subscription.stop();
    this.#interrupt?.(new Stopped());
    // Whatever is still queued is handed out again from the checkpoint next time, with the
    // retries it had. Done before waiting: a consumer joining meanwhile starts a new read,
    // whose page must stay queued.
    for (const delivery of this.#queue) {
      if (delivery.replay) continue;
      this.#deliveries.delete(delivery.event.id);
      const { event, retryCount } = delivery;
      if (retryCount > 0) this.#carried.set(event.id, { position: event.position, retryCount });
    }
    this.#queue = this.#queue.filter((d) => d.replay);
    try {
      await stopping;
    } catch (error) {
      this.#onError(error);
    }
  }

  /** The subscription's handler: queue the page, wait until every event of it is settled. */
  async #handle(events: RecordedEvent[], interrupted: Promise<never>): Promise<void> {
    const first = events[0];
    if (!first) return;
    // Below the page, the checkpoint has passed: nothing there is owed any more.
    for (const [id, delivery] of this.#deliveries) {
      if (delivery.state === 'settled' && delivery.event.position < first.position) this.#deliveries.delete(id);
    }
    for (const [id, carried] of this.#carried) if (carried.position < first.position) this.#carried.delete(id);
    const waits: Delivery[] = [];
    for (const event of events) {
      if (!this.#wanted(event)) continue;
      let delivery = this.#deliveries.get(event.id);
      if (!delivery) {
        delivery = this.#delivery(event, false);
        const carried = this.#carried.get(event.id);
        if (carried) {
          delivery.retryCount = carried.retryCount;
          this.#carried.delete(event.id);
        }
        this.#deliveries.set(event.id, delivery);
        this.#enqueue(delivery);
      }
      waits.push(delivery);
    }
    this.#pump();
    await Promise.race([Promise.all(waits.map((d) => d.done)), interrupted]);
    const park = waits.find((d) => d.park !== undefined);
    // The subscription tries the page again, then each event alone: the settled ones pass at
    // once, and this one is parked with the reason.
    if (park) throw new Error(park.park);
    const last = waits.at(-1)?.event;
    if (last) this.#lastCheckpointed = last;
  }

  /** The unsettled delivery of `id`: a page's first, else a replay's. */
  #owed(id: string): Delivery | undefined {
    const delivery = this.#deliveries.get(id);
    if (delivery && delivery.state !== 'settled') return delivery;
    const replay = this.#replays.get(id);
    return replay && replay.state !== 'settled' ? replay : undefined;
  }

  #delivery(event: RecordedEvent, replay: boolean): Delivery {
    const { promise, resolve } = deferred();
    return { event, retryCount: 0, state: 'queued', settle: resolve, done: promise, replay };
  }

  #enqueue(delivery: Delivery): void {
    delivery.state = 'queued';
    delivery.consumer = undefined;
    const queue = this.#queue;
    // Mostly at the end; a retry goes back to its place in log order.
    let at = queue.length;
    while (at > 0 && (queue[at - 1] as Delivery).event.position > delivery.event.position) at--;
    queue.splice(at, 0, delivery);
  }

  #settle(delivery: Delivery, park: string | undefined): void {
    clearTimeout(delivery.timer);
    if (delivery.state === 'queued') this.#queue = this.#queue.filter((d) => d !== delivery);
    delivery.consumer?.inFlight.delete(delivery);
    delivery.consumer = undefined;
    delivery.state = 'settled';
    delivery.park = park;
    delivery.settle();
  }

  #retry(delivery: Delivery, why: string): void {
    if (delivery.state !== 'sent') return;
    clearTimeout(delivery.timer);
    delivery.consumer?.inFlight.delete(delivery);
    delivery.retryCount++;
    if (delivery.retryCount > this.definition.settings.maxRetryCount) {
      this.#settle(delivery, `${why}; retried ${delivery.retryCount - 1} times, the most allowed`);
      return;
    }
    this.#enqueue(delivery);
  }

  /** The consumer a delivery goes to now, or undefined when the one it must go to is full. */
  #pick(delivery: Delivery): ConsumerState | undefined {
    const consumers = this.#consumers;
    const free = (c: ConsumerState) => c.inFlight.size < c.consumer.slots;
    const strategy = this.definition.settings.consumerStrategy;
    if (strategy === 'Pinned' || strategy === 'PinnedByCorrelation') {
      // KurrentDB clients write `$correlationId`; Annals' own events carry `correlationId`.
      const correlation = delivery.event.metadata.$correlationId ?? delivery.event.metadata.correlationId;
      const key =
        strategy === 'PinnedByCorrelation' && typeof correlation === 'string' ? correlation : delivery.event.streamId;
      const pinned = consumers[hashOf(key) % consumers.length] as ConsumerState;
      return free(pinned) ? pinned : undefined;
    }
    if (strategy === 'DispatchToSingle') return consumers.find(free);
    for (let i = 0; i < consumers.length; i++) {
      const candidate = consumers[(this.#next + i) % consumers.length] as ConsumerState;
      if (free(candidate)) {
        this.#next = (this.#next + i + 1) % consumers.length;
        return candidate;
      }
    }
    return undefined;
  }

  /** Hands queued events to consumers with free slots, in log order. */
  #pump(): void {
    if (this.#consumers.length === 0) return;
    const queue = this.#queue;
    if (!this.definition.settings.consumerStrategy.startsWith('Pinned')) {
      // Unpinned: the head goes first; once no consumer has a slot, nothing further can go.
      let sent = 0;
      for (; sent < queue.length; sent++) {
        const target = this.#pick(queue[sent] as Delivery);
        if (!target) break;
        this.#send(queue[sent] as Delivery, target);
      }
      if (sent > 0) queue.splice(0, sent);
      return;
    }
    // Pinned: each event waits for its own consumer; the others pass it.
    const left: Delivery[] = [];
    for (const delivery of queue) {
      const target = this.#pick(delivery);
      if (target) this.#send(delivery, target);
      else left.push(delivery);
    }
    this.#queue = left;
  }

  #send(delivery: Delivery, target: ConsumerState): void {
    delivery.state = 'sent';
    delivery.consumer = target;
    target.inFlight.add(delivery);
    target.delivered++;
    this.#total++;
    const { event } = delivery;
    if (!this.#lastKnown || event.position > this.#lastKnown.position) this.#lastKnown = event;
    const timeout = this.definition.settings.messageTimeoutMs;
    if (timeout > 0) {
      delivery.timer = setTimeout(() => {
        this.#retry(delivery, 'no answer within the message timeout');
        this.#pump();
      }, timeout);
      delivery.timer.unref();
    }
    void send(target.consumer.call, {
      event: {
        event: recordedOf(event, target.consumer.structuredIds),
        commit_position: String(event.position),
        retry_count: delivery.retryCount,
      },
    }).catch((error: unknown) => this.#onError(error));
  }
}

/** A fresh consumer id, as the confirmation names it. */
export const consumerId = () => randomUUID();
