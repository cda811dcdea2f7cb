/**
 * One read of the log for every partition a consumer-group member runs.
 *
 * A partition's own read filters the log by the hash of each stream id, and no index can
 * serve that filter for any partition count: the database walks the log to find a page of
 * one partition. Reading that way, P partitions walk the log P times. The member's reader
 * walks it once for all of them instead, and each partition's subscription takes its pages
 * from what it read:
 *
 * - The reader keeps a window: the events of the partitions it runs (and of the group's
 *   filter) in the positions (from, to], in log order. It holds every such event there, so a
 *   partition whose position lies in the window gets its next page from it, and "up to `to`"
 *   with it: the same answer as a read of its own, which is what keeps each partition
 *   gap-free and in order.
 * - A partition at the window's end extends it: the head, then up to `limit` events after
 *   `to` for all the partitions, then `to` moves to the last of them, or to the head when
 *   fewer came (the rule a subscription's own read follows). One extension at a time; the
 *   others wait for it and take their pages from it. A partition that asked while an
 *   extension was under way and finds nothing past its position after one that began later
 *   is live: sixteen idle partitions woken by one append cost one read, not sixteen.
 * - Events every partition has passed leave the window, and it keeps at most `maxEvents`:
 *   a partition behind the window (a slow handler, a checkpoint left behind by a rebalance)
 *   reads its own pages, as without a reader, until it reaches the window.
 * - A new set of partitions (a rebalance) or a partition ahead of the window's end starts a
 *   new window at that partition's position.
 */
import type { SqlClient } from '../db/sql-client.js';
import { type ReadAllFilter, readHeadPosition } from '../queries/read-all.js';
import { readAllEvents, readAllEventsOfPartitions } from '../store/event-reads.js';
import type { RecordedEvent } from '../types.js';
import type { SubscriptionPage } from './subscription.js';

interface Window {
  /** The partitions it holds the events of. */
  owners: ReadonlySet<number>;
  /** Exclusive: it starts after this position. */
  from: number;
  /** Inclusive: it holds every event of its partitions up to this position. */
  to: number;
  /** Whether `to` was the head when read. */
  live: boolean;
  events: RecordedEvent[];
  partitions: number[];
}

/** @internal Reads the log once for the partitions of one consumer-group member; see the module comment. */
export class GroupReader {
  readonly #client: SqlClient;
  readonly #schema: string;
  readonly #filter: Omit<ReadAllFilter, 'partition'>;
  readonly #count: number;
  readonly #batchSize: number;
  readonly #maxEvents: number;
  #owners: ReadonlySet<number> = new Set();
  #window: Window | undefined;
  /** The last position each running partition asked after. */
  readonly #positions = new Map<number, number>();
  #extension: Promise<void> | undefined;
  /** Extensions begun, and the number of the last one that ended. */
  #begun = 0;
  #ended = 0;
  /** How many reads of the log it made (the window's and the partitions' own), for tests and the bench. */
  reads = 0;

  constructor(
    host: { client: SqlClient; schema: string },
    filter: Omit<ReadAllFilter, 'partition'>,
    options: { count: number; batchSize: number; maxEvents: number },
  ) {
    this.#client = host.client;
    this.#schema = host.schema;
    this.#filter = filter;
    this.#count = options.count;
    this.#batchSize = options.batchSize;
    this.#maxEvents = options.maxEvents;
  }

  /** The partitions the member runs from now on; the window starts over. */
  own(partitions: Iterable<number>): void {
    const owners = new Set(partitions);
    if (owners.size === this.#owners.size && [...owners].every((p) => this.#owners.has(p))) return;
    this.#owners = owners;
    this.#window = undefined;
    for (const p of [...this.#positions.keys()]) if (!owners.has(p)) this.#positions.delete(p);
  }

  /** The next page of partition `p` after `after`: at most `limit` events. */
  async read(p: number, after: number, limit: number): Promise<SubscriptionPage> {
    this.#positions.set(p, after);
    const arrived = this.#begun;
    for (;;) {
      const window = this.#window;
      if (!this.#owners.has(p) || (window?.owners.has(p) && after < window.from)) {
        return this.#readAlone(p, after, limit);
      }
      if (window?.owners.has(p) && after < window.to) return slice(window, p, after, limit);
      if (this.#extension) {
        await this.#extension.catch(() => {});
        continue;
      }
      const holds = window?.owners.has(p) === true;
      // An extension that began after this read arrived found nothing past `after`.
      if (window && holds && after === window.to && this.#ended > arrived) {
        return { events: [], upTo: after, live: window.live };
      }
      const extension = this.#extend(window && holds && this.#extends(window, p, after) ? window.to : after);
      this.#extension = extension;
      try {
        await extension;
      } finally {
        this.#extension = undefined;
      }
    }
  }

  /**
   * Whether `p`, at or past the window's end, extends it (else a window starts at `after`):
   * at its end, or ahead of it while another partition is still in it and needs what lies
   * between.
   */
  #extends(window: Window, p: number, after: number): boolean {
    if (after === window.to) return true;
    for (const [q, position] of this.#positions) {
      if (q !== p && window.owners.has(q) && position >= window.from && position < after) return true;
    }
    return false;
  }

  /** Reads the events after `start` for the partitions run now, into the window. */
  async #extend(start: number): Promise<void> {
    const owners = this.#owners;
    const number = ++this.#begun;
    this.reads++;
    const head = await readHeadPosition(this.#client, this.#schema);
    // A quarter of the window at most: partitions a little behind the others stay in it.
    const limit = Math.min(this.#batchSize * owners.size, Math.max(this.#batchSize, Math.floor(this.#maxEvents / 4)));
    const page = await readAllEventsOfPartitions(this.#client, this.#schema, start, limit, {
      ...this.#filter,
      partition: { count: this.#count, index: [...owners] },
    });
    if (owners !== this.#owners) return;
    const last = page.events.at(-1)?.position ?? start;
    const live = page.events.length < limit;
    const to = live ? Math.max(last, head) : last;
    const window = this.#window;
    this.#window =
      window && window.owners === owners && window.to === start
        ? {
            ...window,
            to,
            live,
            events: window.events.concat(page.events),
            partitions: window.partitions.concat(page.partitions),
          }
        : { owners, from: start, to, live, events: page.events, partitions: page.partitions };
    this.#trim();
    this.#ended = number;
  }

  /** Drops the events every running partition has passed, and any beyond `maxEvents`. */
  #trim(): void {
    const window = this.#window as Window;
    let passed = Number.POSITIVE_INFINITY;
    for (const p of window.owners) passed = Math.min(passed, this.#positions.get(p) ?? window.from);
    let drop = 0;
    const events = window.events;
    while (drop < events.length && (events[drop] as RecordedEvent).position <= passed) drop++;
    drop = Math.max(drop, events.length - this.#maxEvents);
    if (drop === 0) return;
    window.from = Math.max(window.from, (events[drop - 1] as RecordedEvent).position);
    window.events = events.slice(drop);
    window.partitions = window.partitions.slice(drop);
  }

  /** A page of `p` read for it alone, as a partition reads without a reader. */
  async #readAlone(p: number, after: number, limit: number): Promise<SubscriptionPage> {
    this.reads++;
    const head = await readHeadPosition(this.#client, this.#schema);
    const events = await readAllEvents(this.#client, this.#schema, after, limit, {
      ...this.#filter,
      partition: { count: this.#count, index: p },
    });
    const last = events.at(-1)?.position ?? after;
    const live = events.length < limit;
    return { events, upTo: live ? Math.max(last, head) : last, live };
  }
}

/** The page of `p` after `after` from `window`, which holds it. */
function slice(window: Window, p: number, after: number, limit: number): SubscriptionPage {
  const { events, partitions } = window;
  // The first event after `after`: a binary search, positions ascend.
  let low = 0;
  let high = events.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((events[middle] as RecordedEvent).position <= after) low = middle + 1;
    else high = middle;
  }
  const page: RecordedEvent[] = [];
  for (let i = low; i < events.length && page.length < limit; i++) {
    if (partitions[i] === p) page.push(events[i] as RecordedEvent);
  }
  if (page.length === limit) return { events: page, upTo: (page.at(-1) as RecordedEvent).position, live: false };
  return { events: page, upTo: window.to, live: window.live };
}
