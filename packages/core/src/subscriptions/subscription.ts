/**
 * Subscriptions: deliver the global log to a handler, from a checkpoint, then live.
 *
 * The loop (one per subscription):
 * 1. Read a page of at most `batchSize` events after the position (filtered by category and
 *    event type, through their indexes). The log only ever grows as a gap-free prefix, so
 *    "after the position" never skips an event, and there is no seam between catching up
 *    and live: both are this same read.
 * 2. A page: hand it to the handler and wait for it (a slow handler slows the loop; memory
 *    stays two pages: catching up, the next page is read while the handler has this one).
 *    On failure retry with backoff; when retries run out, try its events one by one and park
 *    each that still fails (stored with its error), or stop, by policy. Then move the
 *    position past the page and, for a named subscription, store it (at-least-once: a crash
 *    before that store delivers the page again).
 * 3. No page: sleep until an append's NOTIFY wakes us, or `pollIntervalMs` passes. NOTIFY is
 *    only a hint: polling alone is correct, and after a lost LISTEN connection is replaced the
 *    loop reads at once.
 */

import type { SqlClient } from '../db/sql-client.js';
import { InvalidInputError, toAnnalsError } from '../errors.js';
import { countParked, parkEvent, readCheckpoint, writeCheckpoint } from '../queries/checkpoints.js';
import { readHeadPosition } from '../queries/read-all.js';
import { readAllEvents } from '../store/event-reads.js';
import type { EventStore } from '../store/event-store.js';
import { batchAttributes, inSpan, linksOf } from '../tracing.js';
import type { RecordedEvent } from '../types.js';
import { assertDuration, assertInteger, assertStreamId, guarded, readOptions } from '../validation.js';
import { delay } from '../workers/wakeup.js';
import { describeError, type WorkerHost, WorkerLoop } from '../workers/worker-loop.js';

/** Options of `subscriptions(store).subscribe`. */
export interface SubscriptionOptions {
  /**
   * Makes the subscription durable: its position and parked events are stored under this
   * name, and a subscription opened again with it resumes where it stopped.
   */
  name?: string;
  /** Where to begin without a stored position: the start, the end, or after a position. @defaultValue `'start'` */
  from?: 'start' | 'end' | { after: number };
  categories?: string[];
  eventTypes?: string[];
  /** Only events of these streams. */
  streamIds?: string[];
  /**
   * Read the log from this store instead: one opened on a streaming replica (hot standby) of
   * this store's database, same schema (`openEventStore({ client, migrate: false })`). Pages
   * come from the replica; the position, checkpoint and parked events stay on this store,
   * and wake-ups come from its NOTIFY. `status().sourceHead` is the replica's head.
   */
  readFrom?: EventStore;
  /** @internal One partition of the streams, for consumer groups. */
  partition?: { count: number; index: number };
  /** Receives each page in log order; the next page waits for it. */
  handler: (events: RecordedEvent[]) => Promise<void> | void;
  /** @defaultValue 100 */
  batchSize?: number;
  /** Longest sleep between reads when no NOTIFY comes. @defaultValue 1000 */
  pollIntervalMs?: number;
  /** Attempts per page (and per event when isolating a failure), and the first backoff. */
  retry?: { attempts?: number; backoffMs?: number };
  /** What an event that keeps failing does: parked (needs a `name`), or the subscription stops. @defaultValue `'park'` when named, else `'stop'` */
  onFailure?: 'park' | 'stop';
}

/** @internal What one read for a subscription found. */
export interface SubscriptionPage {
  /** The matching events after the position asked for, in log order. */
  events: RecordedEvent[];
  /** Every matching event after the position asked for and up to this one is in `events`. */
  upTo: number;
  /** Whether `upTo` was the head when read: there is nothing more to read now. */
  live: boolean;
}

/** @internal Reads a page of at most `limit` events after `after`. */
export type PageSource = (after: number, limit: number) => Promise<SubscriptionPage>;

/** Where a subscription is. */
export interface SubscriptionStatus {
  name: string | undefined;
  state: 'starting' | 'catching-up' | 'live' | 'stopped' | 'faulted';
  /** Last position handled. */
  position: number;
  /** Last position in the log. */
  head: number;
  /** Events between the two (all categories). */
  lag: number;
  lastError: string | undefined;
  parked: number;
  /**
   * With `readFrom`: the head of the replica's log (absent while it cannot be reached).
   * `head - sourceHead` is how far the replica is behind, in events.
   */
  sourceHead?: number;
}

/** A running subscription; see the module comment. */
export class Subscription {
  readonly #host: WorkerHost;
  readonly #options: Required<Pick<SubscriptionOptions, 'batchSize' | 'pollIntervalMs' | 'onFailure'>> &
    SubscriptionOptions;
  readonly #attempts: number;
  readonly #backoffMs: number;
  readonly #loop = new WorkerLoop();
  readonly #source: PageSource | undefined;
  /** The head of the log pages come from, when that is another (a replica). */
  readonly #sourceHead: (() => Promise<number>) | undefined;
  #state: SubscriptionStatus['state'] = 'starting';

  /**
   * @internal Use `subscriptions(store).subscribe`. `source`: where pages come from instead
   * of a read of its own (a consumer group member's one read for its partitions).
   */
  constructor(host: WorkerHost, given: SubscriptionOptions, source?: PageSource, sourceHead?: () => Promise<number>) {
    this.#source = source;
    this.#sourceHead = sourceHead;
    const { batchSize, pollIntervalMs, attempts, backoffMs, onFailure, options } = checkSubscriptionOptions(
      given,
      host.options?.maxStreamIdLength,
    );
    this.#attempts = attempts;
    this.#backoffMs = backoffMs;
    this.#host = host;
    this.#options = { ...options, batchSize, pollIntervalMs, onFailure };
    this.#loop.start(
      () => this.#run(),
      () => `subscription ${this.#state}`,
    );
  }

  /** Resolves when the subscription stopped, or faulted. */
  get done(): Promise<void> {
    return this.#loop.done;
  }

  /** Whether its loop has ended (stopped or faulted). */
  get ended(): boolean {
    return this.#state === 'stopped' || this.#state === 'faulted';
  }

  /** Stops after the page in hand; resolves once stopped. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Resolves once every event up to `position` was handled (rejects if the subscription faults). */
  waitFor(position: number): Promise<void> {
    return this.#loop.waitFor(position);
  }

  async status(): Promise<SubscriptionStatus> {
    const { client, schema } = this.#host;
    try {
      const head = await readHeadPosition(client, schema);
      const name = this.#options.name;
      return {
        name,
        state: this.#state,
        position: this.#loop.position,
        head,
        lag: Math.max(0, head - this.#loop.position),
        lastError: this.#loop.lastError,
        parked: name ? await countParked(client, schema, name) : 0,
        // An unreachable replica leaves it out: the subscription's own figures still stand.
        ...(this.#sourceHead ? { sourceHead: await this.#sourceHead().catch(() => undefined) } : {}),
      };
    } catch (error) {
      throw toAnnalsError(error);
    }
  }

  async #run(): Promise<void> {
    const { client, schema } = this.#host;
    const loop = this.#loop;
    const options = this.#options;
    const read: PageSource = this.#source ?? logPages(client, schema, options);
    let stopListening = () => {};
    let readAhead: { after: number; page: Promise<SubscriptionPage> } | undefined;
    try {
      stopListening = await loop.listen(this.#host);
      loop.reach(await this.#startPosition());
      while (!loop.stopped) {
        loop.clearWake();
        let outcome: 'delivered' | 'failed' | 'interrupted' | 'idle';
        try {
          const ahead = readAhead;
          readAhead = undefined;
          const page =
            ahead && ahead.after === loop.position ? await ahead.page : await read(loop.position, options.batchSize);
          if (page.events.length === 0) {
            if (page.upTo > loop.position) await this.#moveTo(page.upTo);
            // Not live: the read covered part of the log only; read on at once.
            outcome = page.live ? 'idle' : 'delivered';
          } else {
            this.#state = page.live ? 'live' : 'catching-up';
            // Catching up, the next page is read while the handler has this one: the read
            // begins where this page ends, which is where the position will be once it is
            // handled. Used only if it is (a failure or a stop leaves it unread).
            if (!page.live) {
              readAhead = { after: page.upTo, page: read(page.upTo, options.batchSize) };
              readAhead.page.catch(() => {});
            }
            outcome = await this.#deliver(page.events);
            if (outcome === 'delivered') await this.#moveTo(page.upTo);
          }
          loop.recovered();
        } catch (error) {
          // The database failed (restart, lost connection): wait, then read again from the
          // position, which only moves after a page was handled and stored.
          await loop.backOff(error);
          continue;
        }
        if (outcome === 'interrupted') break;
        if (outcome === 'failed') {
          this.#fault();
          return;
        }
        if (outcome === 'idle') {
          this.#state = 'live';
          await loop.idle(options.pollIntervalMs);
        }
      }
      this.#state = 'stopped';
    } catch (error) {
      this.#loop.lastError = describeError(error);
      this.#fault();
    } finally {
      // No read left running against a store about to be closed.
      await readAhead?.page.catch(() => {});
      stopListening();
    }
  }

  async #startPosition(): Promise<number> {
    const { client, schema } = this.#host;
    const name = this.#options.name;
    const stored = name ? await readCheckpoint(client, schema, name) : null;
    if (stored !== null) return stored;
    const from = this.#options.from ?? 'start';
    const start = from === 'start' ? 0 : from === 'end' ? await readHeadPosition(client, schema) : from.after;
    // Stored at once: a named subscription that began at the end must resume there, not at
    // a later end, even if it stops before its first event.
    if (name) await writeCheckpoint(client, schema, name, start);
    return start;
  }

  /**
   * Hands a page over. 'failed': an event keeps failing and the policy is to stop;
   * 'interrupted': stopped while retrying (the page counts as not delivered).
   */
  async #deliver(page: RecordedEvent[]): Promise<'delivered' | 'failed' | 'interrupted'> {
    const attempt = await this.#attempt(page);
    if (attempt !== 'failed') return attempt;
    if (page.length > 1) {
      // Find the events at fault: deliver one by one, park what still fails.
      for (const event of page) {
        const outcome = await this.#deliver([event]);
        if (outcome !== 'delivered') return outcome;
        await this.#moveTo(event.position);
      }
      return 'delivered';
    }
    const event = page[0] as RecordedEvent;
    if (this.#options.onFailure === 'stop') return 'failed';
    await parkEvent(this.#host.client, this.#host.schema, {
      subscription: this.#options.name as string,
      position: event.position,
      eventId: event.id,
      attempts: this.#attempts,
      error: this.#loop.lastError ?? 'unknown error',
    });
    return 'delivered';
  }

  async #attempt(events: RecordedEvent[]): Promise<'delivered' | 'failed' | 'interrupted'> {
    for (let attempt = 0; attempt < this.#attempts; attempt++) {
      if (this.#loop.stopped) return 'interrupted';
      try {
        await inSpan(
          'annals.subscription.batch',
          batchAttributes(this.#options.name, events),
          async () => {
            await this.#options.handler(events);
          },
          () => linksOf(events),
        );
        return 'delivered';
      } catch (error) {
        this.#loop.lastError = describeError(error);
        if (attempt + 1 < this.#attempts) await delay(this.#backoffMs * 2 ** attempt);
      }
    }
    return 'failed';
  }

  /** Takes `position` as handled (stored first, for a named subscription). */
  async #moveTo(position: number): Promise<void> {
    const { client, schema } = this.#host;
    if (this.#options.name) await writeCheckpoint(client, schema, this.#options.name, position);
    this.#loop.reach(position);
  }

  #fault(): void {
    this.#state = 'faulted';
    this.#loop.endWaits(`subscription faulted (${this.#loop.lastError})`);
  }
}

/** The filter of a subscription's reads. */
type PageFilter = Pick<SubscriptionOptions, 'categories' | 'eventTypes' | 'streamIds' | 'partition'>;

/** @internal Pages of the log of `schema` on `client`, filtered as the subscription asks. */
export function logPages(client: SqlClient, schema: string, given: PageFilter): PageSource {
  const filter = {
    categories: given.categories,
    eventTypes: given.eventTypes,
    streamIds: given.streamIds,
    partition: given.partition,
  };
  const filtered = Object.values(filter).some((value) => value !== undefined);
  return async (after, limit) => {
    // With a filter, read the head first: a short page then covers every event up to it.
    // Without one, the events a read skips by their stream's lifecycle (deleted or
    // archived) are always followed by a visible one, the change's record in $lifecycle,
    // and no event of such a stream is appended later, so a page never stops short of it.
    const head = filtered ? await readHeadPosition(client, schema) : 0;
    const events = await readAllEvents(client, schema, after, limit, filter);
    const last = events.at(-1)?.position ?? after;
    const live = events.length < limit;
    return { events, upTo: live ? Math.max(last, head) : last, live };
  };
}

/**
 * @internal Pages read from a streaming replica of the primary's log. The replica's log is a
 * prefix of the primary's (commits replay in commit order), so it is read as the primary's
 * would be. NOTIFY comes from the primary, often before the replica has replayed the append:
 * a read that finds nothing new waits (up to `maxWaitMs`) for the replica to reach the head
 * the primary has now, so a live event is not left to the next poll.
 */
export function replicaPages(
  primary: SqlClient,
  replica: SqlClient,
  schema: string,
  filter: PageFilter,
  maxWaitMs = 1000,
): PageSource {
  const read = logPages(replica, schema, filter);
  return async (after, limit) => {
    let page = await read(after, limit);
    if (page.events.length > 0 || !page.live) return page;
    const target = await readHeadPosition(primary, schema);
    const deadline = Date.now() + maxWaitMs;
    while (page.events.length === 0 && Math.max(page.upTo, await readHeadPosition(replica, schema)) < target) {
      if (Date.now() > deadline) break;
      await delay(5);
      page = await read(after, limit);
    }
    return page;
  };
}

/** Checks subscription options and resolves their defaults; throws {@link InvalidInputError}. */
export function checkSubscriptionOptions(given: SubscriptionOptions, maxStreamIdLength = 256) {
  if (typeof given !== 'object' || given === null) throw new InvalidInputError('options', 'must be an object');
  const options = readOptions<SubscriptionOptions>(given, 'options');
  const retry = readOptions<NonNullable<SubscriptionOptions['retry']>>(options.retry, 'retry');
  if (typeof options.handler !== 'function') throw new InvalidInputError('handler', 'must be a function');
  if (options.name !== undefined) assertStreamId(options.name, 'name', 256);
  for (const field of ['categories', 'eventTypes', 'streamIds'] as const) {
    const list = options[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) throw new InvalidInputError(field, 'must be a non-empty array');
    guarded(field, () => Array.from(list)).forEach((item, i) => {
      // Stream ids and categories as long as the store takes them.
      assertStreamId(item, `${field}[${i}]`, Math.max(256, maxStreamIdLength));
    });
  }
  const from = options.from ?? 'start';
  if (from !== 'start' && from !== 'end') {
    if (typeof from !== 'object' || from === null) {
      throw new InvalidInputError('from', 'must be "start", "end" or { after: position }');
    }
    assertInteger(readOptions<{ after: number }>(from, 'from').after, 'from.after', 0);
  }
  const onFailure = options.onFailure ?? (options.name ? 'park' : 'stop');
  if (onFailure !== 'park' && onFailure !== 'stop')
    throw new InvalidInputError('onFailure', 'must be "park" or "stop"');
  if (onFailure === 'park' && !options.name) throw new InvalidInputError('onFailure', 'parking needs a name');
  return {
    batchSize: positive(options.batchSize ?? 100, 'batchSize'),
    pollIntervalMs: duration(options.pollIntervalMs ?? 1000, 'pollIntervalMs'),
    attempts: positive(retry.attempts ?? 3, 'retry.attempts'),
    backoffMs: duration(retry.backoffMs ?? 100, 'retry.backoffMs'),
    onFailure,
    /** The options as read once: later reads of the caller's object could answer otherwise. */
    options: options as SubscriptionOptions,
  };
}

function duration(value: number, field: string): number {
  assertDuration(value, field);
  return value;
}

function positive(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidInputError(field, 'must be a positive integer');
  return value;
}
