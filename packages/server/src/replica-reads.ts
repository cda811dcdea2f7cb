/**
 * Reads served from a streaming replica (`readReplica`). docs/scaling.md has the design; in
 * short, a read route asks {@link ReplicaReads.readerOf} for its store:
 *
 * - The replica, when it answers. Its log is a gap-free prefix of the primary's (commits
 *   replay in commit order), so a read there is a read of the primary a moment ago.
 * - Read-your-writes on request: `Annals-Min-Position: N` (the position an append answered)
 *   waits up to `waitMs` for the replica to hold position N, and reads the primary when it
 *   does not by then. A request without it reads the replica as it is.
 * - The primary when the replica cannot be reached: reads go on while it is down.
 *
 * The answer says which it read (`Annals-Read-From: replica | primary`), and the replica's
 * head (`Annals-Replica-Head`) when it answered.
 */
import type { EventStore } from '@annals/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem, problem } from './problems.js';

/** The request header that names the position a read must see. */
export const minPositionHeader = 'annals-min-position';

/** Options of reads from a replica. */
export interface ReplicaReadOptions {
  /** A store opened on a hot standby of the served store's database, same schema (`migrate: false`). */
  store: EventStore;
  /** How long a read with `Annals-Min-Position` waits for the replica before it reads the primary. @defaultValue 500 */
  waitMs?: number;
}

export class ReplicaReads {
  readonly #replica: EventStore | undefined;
  readonly #waitMs: number;

  constructor(options: ReplicaReadOptions | undefined) {
    this.#replica = options?.store;
    this.#waitMs = options?.waitMs ?? 500;
  }

  /** Whether reads may go to a replica. */
  get enabled(): boolean {
    return this.#replica !== undefined;
  }

  /** The replica's store, when there is one (for the live hub). */
  get replica(): EventStore | undefined {
    return this.#replica;
  }

  /** The store a read request is served from: `primary`, or the replica (see the module comment). */
  async readerOf(request: FastifyRequest, reply: FastifyReply, primary: EventStore): Promise<EventStore> {
    const wanted = minPositionOf(request);
    const replica = this.#replica;
    if (!replica) return primary;
    const deadline = Date.now() + this.#waitMs;
    for (;;) {
      let head: number;
      try {
        head = await replica.headPosition();
      } catch {
        // Down or restarting: the primary serves until it is back.
        reply.header('annals-read-from', 'primary');
        return primary;
      }
      if (head >= wanted) {
        reply.header('annals-read-from', 'replica').header('annals-replica-head', String(head));
        return replica;
      }
      if (Date.now() >= deadline) {
        reply.header('annals-read-from', 'primary').header('annals-replica-head', String(head));
        return primary;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

/** The position the request must see (0: any), from `Annals-Min-Position`. */
function minPositionOf(request: FastifyRequest): number {
  const given = request.headers[minPositionHeader];
  if (given === undefined) return 0;
  const value = Array.isArray(given) ? given[0] : given;
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) {
    throw new HttpProblem(
      problem(400, 'INVALID_INPUT', 'the Annals-Min-Position header must be a log position (an integer >= 0)', {
        field: 'Annals-Min-Position',
      }),
    );
  }
  return Number(value.trim());
}
