/**
 * Consumer groups: several processes share one subscription, each stream handled in order by
 * one member at a time.
 *
 * The streams are split into a fixed number of partitions by a hash of the stream id; each
 * partition is a subscription of its own (`<group>#<partition>`, with its own checkpoint and
 * parked events). Members join by starting and leave by stopping (or by going silent). Every
 * `heartbeatMs` a member renews its row in `group_members`, removes members silent for
 * `sessionTimeoutMs`, and takes the partitions p with p mod (live members) = its rank among
 * them. It holds a session advisory lock per partition it runs, on a connection of its own,
 * so that a partition it was assigned only starts once its previous owner let go (or died,
 * which releases the lock). Rebalancing never skips an event: a partition resumes from its
 * stored checkpoint, so at worst the last page is delivered twice (at-least-once, as for any
 * subscription). The partitions a member runs take their pages from one read of the log for
 * all of them (group-reader.ts): P partitions cost one walk of the log per member, not P.
 */
import { randomUUID } from 'node:crypto';
import { groupPartitionLock, tryLockForSession, unlockForSession } from '../db/locks.js';
import type { SqlSession } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import { heartbeat, leaveGroup } from '../queries/group-members.js';
import { assertDuration, readOptions } from '../validation.js';
import { describeError, type WorkerHost, WorkerLoop } from '../workers/worker-loop.js';
import { GroupReader } from './group-reader.js';
import { checkSubscriptionOptions, Subscription, type SubscriptionOptions } from './subscription.js';

/** Options of `subscriptions(store).joinGroup`. */
export interface ConsumerGroupOptions extends Omit<SubscriptionOptions, 'name' | 'partition' | 'readFrom'> {
  /** The group's name: every member of one group uses the same. */
  group: string;
  /** Partitions of the streams; fixed for the group's lifetime. @defaultValue 16 */
  partitions?: number;
  /** @defaultValue 1000 */
  heartbeatMs?: number;
  /** A member silent this long is taken as gone. @defaultValue 5000 */
  sessionTimeoutMs?: number;
}

/** One member of a consumer group; see the module comment. */
export class ConsumerGroupMember {
  readonly memberId = randomUUID();
  readonly #host: WorkerHost;
  readonly #options: ConsumerGroupOptions & { partitions: number; heartbeatMs: number; sessionTimeoutMs: number };
  readonly #running = new Map<number, Subscription>();
  readonly #loop = new WorkerLoop();
  /** The member's one read of the log for all its partitions. */
  readonly #reader: GroupReader;

  /** @internal Use `subscriptions(store).joinGroup`. */
  constructor(host: WorkerHost, given: ConsumerGroupOptions) {
    if (typeof given !== 'object' || given === null) throw new InvalidInputError('options', 'must be an object');
    const options = readOptions<ConsumerGroupOptions>(given, 'options') as ConsumerGroupOptions;
    const partitions = options.partitions ?? 16;
    const heartbeatMs = options.heartbeatMs ?? 1000;
    const sessionTimeoutMs = options.sessionTimeoutMs ?? 5000;
    if (typeof options.group !== 'string' || !/^[\w.:-]{1,200}$/.test(options.group)) {
      throw new InvalidInputError('group', 'must be 1-200 letters, digits or _ . : -');
    }
    for (const [field, value] of Object.entries({ partitions, heartbeatMs, sessionTimeoutMs })) {
      if (!Number.isSafeInteger(value) || value < 1) throw new InvalidInputError(field, 'must be a positive integer');
    }
    if (partitions > 1024) throw new InvalidInputError('partitions', 'must be at most 1024');
    assertDuration(heartbeatMs, 'heartbeatMs');
    assertDuration(sessionTimeoutMs, 'sessionTimeoutMs');
    if (sessionTimeoutMs <= heartbeatMs) throw new InvalidInputError('sessionTimeoutMs', 'must exceed heartbeatMs');
    // The partitions' options, checked now so that a mistake is an error here, not at every heartbeat.
    const { batchSize } = checkSubscriptionOptions(
      { ...options, name: `${options.group}#0` },
      host.options?.maxStreamIdLength,
    );
    this.#host = host;
    this.#options = { ...options, partitions, heartbeatMs, sessionTimeoutMs };
    const { categories, eventTypes, streamIds } = options;
    this.#reader = new GroupReader(
      host,
      { categories, eventTypes, streamIds },
      { count: partitions, batchSize, maxEvents: Math.max(20_000, 4 * batchSize) },
    );
    this.#loop.start(
      () => this.#run(),
      () => 'consumer group member left',
    );
  }

  /** Resolves when the member has left. */
  get done(): Promise<void> {
    return this.#loop.done;
  }

  /** The partitions this member runs now. */
  get partitions(): number[] {
    return [...this.#running.keys()].sort((a, b) => a - b);
  }

  get lastError(): string | undefined {
    return this.#loop.lastError;
  }

  /** Leaves the group: stops its partitions, lets go of them and removes itself. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(): Promise<void> {
    const { client, schema } = this.#host;
    const { group, heartbeatMs } = this.#options;
    let session: SqlSession | undefined;
    let lost = false;
    try {
      while (!this.#loop.stopped) {
        try {
          if (lost) throw new Error('the partition locks were lost with their connection');
          if (!session) {
            session = await client.session();
            const mine = session;
            void mine.lost.then(() => {
              if (session !== mine) return;
              lost = true;
              this.#loop.wake();
            });
          }
          const members = await heartbeat(client, schema, group, this.memberId, this.#options.sessionTimeoutMs);
          await this.#rebalance(session, members);
        } catch (error) {
          this.#loop.lastError = describeError(error);
          // The locks died (or may have) with the session: stop every partition before another
          // member can take it, give the broken connection back, and start over.
          await this.#releaseAll(undefined);
          await session?.release(true).catch(() => {});
          session = undefined;
          lost = false;
        }
        await this.#loop.idle(heartbeatMs);
      }
    } finally {
      await this.#releaseAll(session).catch(() => {});
      await session?.release(lost).catch(() => {});
      await leaveGroup(client, schema, group, this.memberId).catch(() => {});
    }
  }

  async #rebalance(session: SqlSession, members: string[]): Promise<void> {
    const { partitions } = this.#options;
    const rank = members.indexOf(this.memberId);
    const count = Math.max(1, members.length);
    const assigned = new Set<number>();
    for (let p = 0; p < partitions; p++) if (rank >= 0 && p % count === rank) assigned.add(p);
    for (const [p, subscription] of [...this.#running]) {
      // A partition whose subscription stopped (faulted) is let go and started again.
      if (!assigned.has(p) || subscription.ended) await this.#release(session, p);
    }
    const taken: number[] = [];
    for (const p of assigned) {
      if (this.#running.has(p) || this.#loop.stopped) continue;
      // Not yet let go by its previous owner: the next heartbeat tries again.
      if (await tryLockForSession(session, this.#lockKey(p))) taken.push(p);
    }
    if (taken.length === 0) return;
    // Owned before their first reads, all at once: the reader starts its window over once.
    this.#reader.own([...this.#running.keys(), ...taken]);
    const { group, partitions: _p, heartbeatMs: _h, sessionTimeoutMs: _s, ...subscription } = this.#options;
    for (const p of taken) {
      this.#running.set(
        p,
        new Subscription(
          this.#host,
          { ...subscription, name: `${group}#${p}`, partition: { count: partitions, index: p } },
          (after, limit) => this.#reader.read(p, after, limit),
        ),
      );
    }
  }

  #lockKey(partition: number) {
    return groupPartitionLock(this.#host.schema, this.#options.group, partition);
  }

  async #release(session: SqlSession | undefined, p: number): Promise<void> {
    const subscription = this.#running.get(p);
    this.#running.delete(p);
    await subscription?.stop().catch(() => {});
    this.#reader.own(this.#running.keys());
    if (session) await unlockForSession(session, this.#lockKey(p)).catch(() => {});
  }

  async #releaseAll(session: SqlSession | undefined): Promise<void> {
    for (const p of [...this.#running.keys()]) await this.#release(session, p);
  }
}
