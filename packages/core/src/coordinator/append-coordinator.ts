/**
 * The append coordinator (docs/ordering.md, "Appends from many processes"): one process per
 * log, chosen by a lease, runs the plain appends of every process that opened its store with
 * `appendCoordinator`, so that appends from many processes share transactions as appends from
 * one process do. Correctness never depends on it: `append_events` decides everything under
 * the log lock, and a process that cannot use the coordinator appends directly.
 *
 * One loop per store, every `leaseRetryMs`: if this process does not hold the role, try the
 * lease; got it: listen, record the address and a new token, serve until the lease's
 * connection is lost or the store closes. Else look up the holder and keep a link to it.
 */
import { randomBytes } from 'node:crypto';
import { appendCoordinatorLease, tryLockForSession, unlockForSession } from '../db/locks.js';
import type { SqlClient, SqlSession } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import { findCoordinator, recordCoordinator } from '../queries/append-coordinator.js';
import type { WriteOutcome } from '../queries/append-events.js';
import { AppendBatcher } from '../store/append-batcher.js';
import { contextOf } from '../store/store-context.js';
import type { PreparedWrite } from '../validation.js';
import { describe } from '../validation.js';
import { CoordinatorLink, parseAddress } from './coordinator-link.js';
import { CoordinatorServer } from './coordinator-server.js';

/** Options of the append coordinator; see `appendCoordinator` of `openEventStore`. */
export interface AppendCoordinatorOptions {
  /** The interface this process listens on while it holds the role. @defaultValue `'127.0.0.1'` */
  host?: string;
  /** The port it listens on (0: any free one). @defaultValue `0` */
  port?: number;
  /**
   * The `host:port` other processes connect to, when it is not `host` and the bound port
   * (behind NAT, or `host` is `0.0.0.0`). @defaultValue `host:port`
   */
  advertise?: string;
  /** How often a process that does not hold the role tries to take it and looks up who does. @defaultValue 1000 */
  leaseRetryMs?: number;
  /** Longest wait for the coordinator's answer; past it, the process appends directly. @defaultValue 5000 */
  forwardTimeoutMs?: number;
}

/** What the coordinator of a store is doing; see `appendCoordinatorStatus`. */
export interface AppendCoordinatorStatus {
  /** `holder`: runs the appends of other processes; `linked`: forwards to the holder; `direct`: neither, for now. */
  role: 'holder' | 'linked' | 'direct';
  /** The holder's address, when known. */
  address: string | undefined;
  /** Batches sent to the holder, and appends of them it stored. */
  forwardedBatches: number;
  /** Appends run directly because the holder could not be used or did not store them. */
  directAppends: number;
  /** Appends of other processes this process stored while holding the role. */
  servedAppends: number;
}

/** @internal {@link AppendCoordinatorOptions} checked, with defaults. */
export type ResolvedCoordinatorOptions = Required<Omit<AppendCoordinatorOptions, 'advertise'>> & {
  advertise: string | undefined;
};

/** Checks and completes the options; throws InvalidInputError. */
export function resolveCoordinatorOptions(given: unknown): ResolvedCoordinatorOptions {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new InvalidInputError('appendCoordinator', `must be an object of options, got ${describe(given)}`);
  }
  const o = given as AppendCoordinatorOptions;
  const resolved: ResolvedCoordinatorOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    advertise: o.advertise,
    leaseRetryMs: o.leaseRetryMs ?? 1000,
    forwardTimeoutMs: o.forwardTimeoutMs ?? 5000,
  };
  if (typeof resolved.host !== 'string' || resolved.host.length === 0 || resolved.host.length > 255) {
    throw new InvalidInputError('appendCoordinator.host', `must be a host name or address, got ${describe(o.host)}`);
  }
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    throw new InvalidInputError('appendCoordinator.port', `must be an integer 0-65535, got ${describe(o.port)}`);
  }
  if (resolved.advertise !== undefined) {
    try {
      parseAddress(resolved.advertise);
    } catch {
      throw new InvalidInputError('appendCoordinator.advertise', `must be host:port, got ${describe(o.advertise)}`);
    }
  }
  for (const field of ['leaseRetryMs', 'forwardTimeoutMs'] as const) {
    const value = resolved[field];
    if (!Number.isInteger(value) || value < 10 || value > 600_000) {
      throw new InvalidInputError(
        `appendCoordinator.${field}`,
        `must be an integer 10-600000 (ms), got ${describe(o[field])}`,
      );
    }
  }
  return resolved;
}

/** @internal The coordinator of one store; the append pipeline calls {@link route}. */
export class AppendCoordinator {
  readonly #client: SqlClient;
  readonly #schema: string;
  readonly #options: ResolvedCoordinatorOptions;
  readonly #shared: AppendBatcher<WriteOutcome[]>;
  readonly #maxFrameBytes: number;
  #holding: { address: string; token: string } | undefined;
  #link: CoordinatorLink | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  readonly #done: Promise<void>;
  readonly #status = { forwardedBatches: 0, directAppends: 0, servedAppends: 0 };

  constructor(
    client: SqlClient,
    schema: string,
    options: ResolvedCoordinatorOptions,
    run: (appends: readonly (readonly PreparedWrite[])[]) => Promise<WriteOutcome[][]>,
    batching: { maxEvents: number; maxBytes: number; concurrency: number },
  ) {
    this.#client = client;
    this.#schema = schema;
    this.#options = options;
    this.#maxFrameBytes = Math.min(2 ** 31, 3 * batching.maxBytes + 1024 * 1024);
    // The holder's one batcher for its own appends and every other process's.
    this.#shared = new AppendBatcher(
      async (appends) => (await run(appends)).map((value) => ({ ok: true as const, value })),
      batching,
    );
    this.#done = this.#loop();
  }

  status(): AppendCoordinatorStatus {
    const role = this.#holding ? 'holder' : this.#link?.open ? 'linked' : 'direct';
    return { role, address: this.#holding?.address ?? this.#link?.address, ...this.#status };
  }

  /**
   * Runs a batch of plain appends through the coordinator: per append its outcomes, or
   * `undefined` for one the caller must run itself (see coordinator-link.ts).
   */
  async route(appends: readonly (readonly PreparedWrite[])[]): Promise<(WriteOutcome[] | undefined)[]> {
    let outcomes: (WriteOutcome[] | undefined)[];
    if (this.#holding) {
      outcomes = await Promise.all(appends.map((writes) => this.#shared.append(writes).catch(() => undefined)));
    } else if (this.#link?.open) {
      this.#status.forwardedBatches++;
      outcomes = await this.#link.forward(appends);
    } else {
      outcomes = appends.map(() => undefined);
    }
    for (const o of outcomes) if (o === undefined) this.#status.directAppends++;
    return outcomes;
  }

  /** Gives up the role (answering what it took) and closes the link. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#done;
  }

  async #loop(): Promise<void> {
    let session: SqlSession | undefined;
    while (!this.#stopped) {
      try {
        session ??= await this.#client.session();
        if (await tryLockForSession(session, appendCoordinatorLease(this.#schema))) {
          this.#link?.close();
          this.#link = undefined;
          const lost = await this.#hold(session);
          if (lost) {
            await session.release(true);
          } else {
            await unlockForSession(session, appendCoordinatorLease(this.#schema)).catch(() => {});
            await session.release();
          }
          session = undefined;
          continue;
        }
        await this.#follow(session);
      } catch {
        // The database may be down or restarting: append directly, and try again next round.
        this.#link?.close();
        this.#link = undefined;
        await session?.release(true).catch(() => {});
        session = undefined;
      }
      await this.#idle(this.#options.leaseRetryMs);
    }
    this.#link?.close();
    if (session) await session.release().catch(() => {});
  }

  /** Serves while the lease holds; resolves true when its connection was lost. */
  async #hold(session: SqlSession): Promise<boolean> {
    const token = randomBytes(32).toString('hex');
    const server = new CoordinatorServer(
      token,
      (writes) => {
        this.#status.servedAppends++;
        return this.#shared.append(writes);
      },
      this.#maxFrameBytes,
    );
    const port = await server.listen(this.#options.host, this.#options.port);
    const address =
      this.#options.advertise ??
      `${this.#options.host.includes(':') ? `[${this.#options.host}]` : this.#options.host}:${port}`;
    try {
      await recordCoordinator(session, this.#schema, { address, token });
      this.#holding = { address, token };
      const lost = await Promise.race([
        session.lost.then(() => true),
        new Promise<false>((resolve) => {
          this.#wake = () => resolve(false);
          if (this.#stopped) resolve(false);
        }),
      ]);
      return lost;
    } finally {
      this.#holding = undefined;
      this.#wake = undefined;
      await server.close();
      await this.#shared.drain();
    }
  }

  /** Keeps a link to the holder the database names, if any. */
  async #follow(session: SqlSession): Promise<void> {
    const found = await findCoordinator(session, this.#schema);
    const link = this.#link;
    if (link?.open && found && link.address === found.address && link.token === found.token) return;
    link?.close();
    this.#link = undefined;
    if (!found) return;
    const next = new CoordinatorLink(found.address, found.token, this.#options.forwardTimeoutMs);
    if (await next.connect(Math.min(2000, this.#options.forwardTimeoutMs))) this.#link = next;
  }

  #idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/**
 * What the append coordinator of `store` is doing: whether this process holds the role, is
 * linked to the holder, or appends directly for now, and how many appends went which way.
 * `undefined` for a store opened without `appendCoordinator`.
 */
export function appendCoordinatorStatus(store: object): AppendCoordinatorStatus | undefined {
  return contextOf(store).pipeline.coordinatorStatus();
}
