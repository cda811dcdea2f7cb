/**
 * Publishing to JetStream with many acknowledgements outstanding, on one reply subscription.
 *
 * `jetstream(nc).publish` is a request per message: on this 2-core machine the client spent
 * its whole core on it and reached 9,600-13,900 messages/s, whatever the number in flight
 * (docs/nats-relay.md). The JetStream wire contract is simpler than that: a message published
 * with a reply subject is answered on it with a `PubAck` (`{stream, seq, duplicate}`, or
 * `{error}`). So each message goes out as a core publish with the reply `<inbox>.<n>`, one
 * wildcard subscription takes every answer, and one timer sweeps the late ones: 71,000-78,000
 * messages/s with the relay's headers, as other clients' "async publish" does.
 */
import { createInbox, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** JetStream's answer to one stored (or deduplicated) message. */
export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

/** JetStream refused a message; `code` is its `err_code` (10071: wrong last sequence). */
export class PublishRefusedError extends Error {
  override readonly name = 'PublishRefusedError';
  constructor(
    message: string,
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

interface Waiting {
  resolve(ack: PubAck): void;
  reject(error: Error): void;
  deadline: number;
}

/** JetStream's error code for a message whose `Nats-Expected-Last-Sequence` did not hold. */
export const wrongLastSequence = 10071;

export class AsyncPublisher {
  readonly #connection: NatsConnection;
  readonly #inbox = createInbox();
  readonly #subscription: Subscription;
  readonly #waiting = new Map<number, Waiting>();
  readonly #sweep: NodeJS.Timeout;
  readonly #ackTimeoutMs: number;
  #next = 0;

  constructor(connection: NatsConnection, ackTimeoutMs: number) {
    this.#connection = connection;
    this.#ackTimeoutMs = ackTimeoutMs;
    this.#subscription = connection.subscribe(`${this.#inbox}.*`, {
      callback: (error, message) => {
        if (error) return;
        const id = Number(message.subject.slice(this.#inbox.length + 1));
        const waiting = this.#waiting.get(id);
        if (!waiting) return; // Answered after its deadline: it was rejected already.
        this.#waiting.delete(id);
        if (message.headers?.code === 503) {
          waiting.reject(new PublishRefusedError('no JetStream stream takes this subject', undefined));
          return;
        }
        try {
          const answer = message.json<{
            stream?: string;
            seq?: number;
            duplicate?: boolean;
            error?: { err_code?: number; description?: string };
          }>();
          if (answer.error || typeof answer.seq !== 'number') {
            const description = answer.error?.description ?? 'no sequence in the acknowledgement';
            waiting.reject(new PublishRefusedError(description, answer.error?.err_code));
          } else {
            waiting.resolve({ stream: answer.stream ?? '', seq: answer.seq, duplicate: answer.duplicate === true });
          }
        } catch (parse) {
          waiting.reject(new PublishRefusedError(`unreadable acknowledgement: ${String(parse)}`, undefined));
        }
      },
    });
    this.#sweep = setInterval(() => this.#expire(), Math.min(250, ackTimeoutMs)).unref();
  }

  /** Publishes one message; resolves with JetStream's acknowledgement. */
  publish(subject: string, body: Uint8Array, headers: MsgHdrs): Promise<PubAck> {
    const id = this.#next++;
    return new Promise<PubAck>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject, deadline: Date.now() + this.#ackTimeoutMs });
      try {
        this.#connection.publish(subject, body, { reply: `${this.#inbox}.${id}`, headers });
      } catch (error) {
        this.#waiting.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Rejects every message still waiting, and stops listening. */
  close(): void {
    clearInterval(this.#sweep);
    this.#subscription.unsubscribe();
    this.#fail(() => true, 'the publisher closed');
  }

  #expire(): void {
    const now = Date.now();
    this.#fail((waiting) => waiting.deadline <= now, `no acknowledgement within ${this.#ackTimeoutMs} ms`);
  }

  #fail(which: (waiting: Waiting) => boolean, reason: string): void {
    for (const [id, waiting] of this.#waiting) {
      if (!which(waiting)) continue;
      this.#waiting.delete(id);
      waiting.reject(new Error(reason));
    }
  }
}
