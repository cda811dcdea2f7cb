/**
 * A process's connection to the append coordinator. `forward` never fails: it resolves with
 * each append's outcomes, or `undefined` for an append the caller must run itself — the link
 * is down, the coordinator did not store it, or no answer came in time. Running it directly
 * with the same event ids is then exactly once (docs/ordering.md).
 */
import { connect, type Socket } from 'node:net';
import type { WriteOutcome } from '../queries/append-events.js';
import type { PreparedWrite } from '../validation.js';
import { FrameReader, frame, outcomesFromWire, toWire } from './wire.js';

interface Waiting {
  writes: number[];
  resolve(outcomes: (WriteOutcome[] | undefined)[]): void;
  timer: NodeJS.Timeout;
}

/** Most bytes of one answer frame: outcomes are small, 64 bytes a write is generous. */
const maxAnswerBytes = 16 * 1024 * 1024;

export class CoordinatorLink {
  readonly address: string;
  readonly token: string;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<number, Waiting>();
  #socket: Socket | undefined;
  #nextId = 1;
  #open = false;

  constructor(address: string, token: string, timeoutMs: number) {
    this.address = address;
    this.token = token;
    this.#timeoutMs = timeoutMs;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Connects and presents the token; resolves false if that fails within `timeoutMs`. */
  connect(timeoutMs: number): Promise<boolean> {
    const { host, port } = parseAddress(this.address);
    return new Promise((resolve) => {
      const socket = connect({ host, port });
      this.#socket = socket;
      socket.setNoDelay(true);
      const reader = new FrameReader(maxAnswerBytes);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, timeoutMs);
      socket.on('connect', () => socket.write(frame({ t: 'hello', token: this.token })));
      socket.on('data', (chunk: Buffer) => {
        try {
          for (const message of reader.push(chunk)) {
            const m = message as { t?: unknown; id?: unknown; outcomes?: unknown };
            if (!this.#open) {
              if (m.t !== 'welcome') throw new Error('expected welcome');
              this.#open = true;
              clearTimeout(timer);
              resolve(true);
            } else {
              this.#answer(m);
            }
          }
        } catch {
          socket.destroy();
        }
      });
      socket.on('error', () => socket.destroy());
      socket.on('close', () => {
        clearTimeout(timer);
        this.#open = false;
        resolve(false);
        this.#failAll();
      });
    });
  }

  /** Sends one batch; see the module comment. */
  forward(appends: readonly (readonly PreparedWrite[])[]): Promise<(WriteOutcome[] | undefined)[]> {
    const none = () => appends.map(() => undefined);
    const socket = this.#socket;
    if (!this.#open || !socket) return Promise.resolve(none());
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve(none());
      }, this.#timeoutMs);
      this.#waiting.set(id, { writes: appends.map((writes) => writes.length), resolve, timer });
      socket.write(frame({ t: 'append', id, appends: toWire(appends) }));
    });
  }

  close(): void {
    this.#open = false;
    this.#socket?.destroy();
    this.#failAll();
  }

  #answer(m: { t?: unknown; id?: unknown; outcomes?: unknown }): void {
    if (m.t !== 'result' || typeof m.id !== 'number' || !Array.isArray(m.outcomes))
      throw new Error('expected a result');
    const waiting = this.#waiting.get(m.id);
    if (!waiting) return; // answered after its timeout: the caller has run it itself
    this.#waiting.delete(m.id);
    clearTimeout(waiting.timer);
    const outcomes = m.outcomes;
    let results: (WriteOutcome[] | undefined)[];
    try {
      if (outcomes.length !== waiting.writes.length) throw new Error('wrong number of outcomes');
      results = waiting.writes.map((writes, i) =>
        outcomes[i] === null ? undefined : outcomesFromWire(outcomes[i], writes),
      );
    } catch (error) {
      waiting.resolve(waiting.writes.map(() => undefined));
      throw error;
    }
    waiting.resolve(results);
  }

  #failAll(): void {
    for (const [id, waiting] of this.#waiting) {
      this.#waiting.delete(id);
      clearTimeout(waiting.timer);
      waiting.resolve(waiting.writes.map(() => undefined));
    }
  }
}

/** `host:port`, the host possibly an IPv6 address in brackets. */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) throw new Error(`not a host:port address: ${JSON.stringify(address)}`);
  return { host: (match[1] ?? match[2]) as string, port };
}
