/**
 * The coordinator's listening side: accepts processes that present the token, takes their
 * batches, and hands every append to `submit` (the holder's shared batcher), answering each
 * with its own outcomes. See wire.ts for the messages and docs/ordering.md for the design.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { WriteOutcome } from '../queries/append-events.js';
import type { PreparedWrite } from '../validation.js';
import { FrameReader, frame, fromWire, outcomeToWire, ProtocolError, type WireOutcome } from './wire.js';

/** Runs one append; rejects when it was not stored (the sender then appends it itself). */
export type Submit = (writes: PreparedWrite[]) => Promise<WriteOutcome[]>;

/** How long a new connection has to present the token. */
const helloTimeoutMs = 2000;

export class CoordinatorServer {
  readonly #server: Server;
  readonly #token: Buffer;
  readonly #submit: Submit;
  readonly #maxFrameBytes: number;
  readonly #sockets = new Set<Socket>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #stopping = false;

  constructor(token: string, submit: Submit, maxFrameBytes: number) {
    this.#token = Buffer.from(token, 'utf8');
    this.#submit = submit;
    this.#maxFrameBytes = maxFrameBytes;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** Listens; resolves with the port bound. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /**
   * Stops: new batches are answered "not stored" (their senders append them themselves), the
   * ones already taken are answered, then every connection closes.
   */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#server.close();
    await Promise.allSettled([...this.#inFlight]);
    for (const socket of this.#sockets) socket.destroy();
  }

  #accept(socket: Socket): void {
    if (this.#stopping) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    const reader = new FrameReader(this.#maxFrameBytes);
    let authenticated = false;
    const hello = setTimeout(() => socket.destroy(), helloTimeoutMs);
    socket.on('close', () => {
      clearTimeout(hello);
      this.#sockets.delete(socket);
    });
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const message of reader.push(chunk)) {
          if (!authenticated) {
            this.#checkHello(message);
            authenticated = true;
            clearTimeout(hello);
            socket.write(frame({ t: 'welcome' }));
          } else {
            this.#take(socket, message);
          }
        }
      } catch {
        // A wrong token or a malformed frame: whatever the peer is, it is not one of ours.
        socket.destroy();
      }
    });
  }

  #checkHello(message: unknown): void {
    const { t, token } = (message ?? {}) as { t?: unknown; token?: unknown };
    const given = Buffer.from(typeof token === 'string' ? token : '', 'utf8');
    if (t !== 'hello' || given.length !== this.#token.length || !timingSafeEqual(given, this.#token)) {
      throw new ProtocolError('not a hello with the token');
    }
  }

  #take(socket: Socket, message: unknown): void {
    const { t, id, appends } = (message ?? {}) as { t?: unknown; id?: unknown; appends?: unknown };
    if (t !== 'append' || !Number.isSafeInteger(id) || !Array.isArray(appends)) {
      throw new ProtocolError('expected an append');
    }
    // Shapes first, all of them: a malformed batch is refused before any of it runs.
    const prepared = appends.map(fromWire);
    const answer = (outcomes: (WireOutcome[] | null)[]) => {
      if (!socket.destroyed) socket.write(frame({ t: 'result', id: id as number, outcomes }));
    };
    if (this.#stopping) {
      answer(prepared.map(() => null));
      return;
    }
    const work = Promise.all(
      prepared.map((writes) =>
        this.#submit(writes).then(
          (outcomes) => outcomes.map(outcomeToWire),
          () => null,
        ),
      ),
    ).then(answer);
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
  }
}
