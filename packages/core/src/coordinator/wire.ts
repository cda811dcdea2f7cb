/**
 * What travels between a process and the append coordinator (docs/ordering.md): frames of a
 * 4-byte big-endian length and that many bytes of UTF-8 JSON, one message each.
 *
 * - `hello` (process → coordinator, first): the token read from `append_coordinator`;
 *   answered by `welcome`, or the connection is closed.
 * - `append`: one coalesced batch, appends in order, each its writes; answered by `result`
 *   with the same id: per append its write outcomes, or `null` when the coordinator did not
 *   store it (its call failed, or the coordinator is stopping): the process then appends it
 *   itself, which gives it its own typed error or result.
 *
 * Appends travel prepared (ids made, data as JSON text), so the coordinator only runs them.
 * Every frame a peer sends is checked here before anything else reads it.
 */
import type { WriteOutcome } from '../queries/append-events.js';
import type { PreparedWrite } from '../validation.js';

/** A write: stream id, expected-version code, payload bytes, events as [id, type, data, metadata]. */
export type WireWrite = [string, number, number, [string, string, string, string][]];

/** An outcome: outcome, actual version, stream version, first and last position, recorded at (ms). */
export type WireOutcome = [WriteOutcome['outcome'], number, number | null, number | null, number | null, number | null];

export type ToCoordinator = { t: 'hello'; token: string } | { t: 'append'; id: number; appends: WireWrite[][] };

export type FromCoordinator = { t: 'welcome' } | { t: 'result'; id: number; outcomes: (WireOutcome[] | null)[] };

/** One frame of `message`. */
export function frame(message: ToCoordinator | FromCoordinator): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

/** Thrown for a frame that breaks the protocol; the connection is then closed. */
export class ProtocolError extends Error {}

/**
 * Cuts a byte stream into messages. `push` returns every complete message so far; a frame
 * longer than `maxBytes` or one that is not JSON is a {@link ProtocolError}.
 */
export class FrameReader {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: Buffer): unknown[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const messages: unknown[] = [];
    while (this.#buffered >= 4) {
      // Join chunks only once a whole frame is here: a large frame arrives in many chunks.
      if ((this.#chunks[0] as Buffer).length < 4) this.#chunks = [Buffer.concat(this.#chunks)];
      const length = (this.#chunks[0] as Buffer).readUInt32BE(0);
      if (length > this.#maxBytes) throw new ProtocolError(`frame of ${length} bytes is over ${this.#maxBytes}`);
      if (this.#buffered < 4 + length) return messages;
      const buffer = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
      const body = buffer.subarray(4, 4 + length).toString('utf8');
      const rest = buffer.subarray(4 + length);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#buffered = rest.length;
      try {
        messages.push(JSON.parse(body));
      } catch {
        throw new ProtocolError('frame is not JSON');
      }
    }
    return messages;
  }
}

export function toWire(appends: readonly (readonly PreparedWrite[])[]): WireWrite[][] {
  return appends.map((writes) =>
    writes.map(
      (w): WireWrite => [
        w.streamId,
        w.expectedCode,
        w.bytes ?? 0,
        w.events.map((e): [string, string, string, string] => [e.id, e.type, e.data, e.metadata]),
      ],
    ),
  );
}

const isString = (value: unknown): value is string => typeof value === 'string';
const isInteger = (value: unknown): value is number => Number.isSafeInteger(value);

/**
 * The prepared writes of a peer's append, or a {@link ProtocolError}. Only shapes are checked
 * here: `append_events` checks everything else, as it does for any caller. `expected` is not
 * sent (only the process that made the append builds its errors), so it stays `any` here.
 */
export function fromWire(append: unknown): PreparedWrite[] {
  if (!Array.isArray(append) || append.length === 0) throw new ProtocolError('an append must be a non-empty array');
  return append.map((write: unknown): PreparedWrite => {
    if (!Array.isArray(write) || write.length !== 4) throw new ProtocolError('a write must be an array of four');
    const [streamId, expectedCode, bytes, events] = write as unknown[];
    if (!isString(streamId) || !isInteger(expectedCode) || !isInteger(bytes) || !Array.isArray(events)) {
      throw new ProtocolError('a write must be [stream id, expected code, bytes, events]');
    }
    if (events.length === 0) throw new ProtocolError('a write must have events');
    return {
      streamId,
      expected: 'any',
      expectedCode,
      bytes,
      events: events.map((event: unknown) => {
        if (!Array.isArray(event) || event.length !== 4 || !event.every(isString)) {
          throw new ProtocolError('an event must be [id, type, data, metadata], all strings');
        }
        const [id, type, data, metadata] = event as [string, string, string, string];
        return { id, type, data, metadata };
      }),
    };
  });
}

export function outcomeToWire(o: WriteOutcome): WireOutcome {
  return [
    o.outcome,
    o.actualVersion,
    o.streamVersion,
    o.firstPosition,
    o.lastPosition,
    o.recordedAt ? o.recordedAt.getTime() : null,
  ];
}

const outcomes = new Set<unknown>([
  'ok',
  'duplicate',
  'conflict',
  'id_reused',
  'refused',
  'deleted',
  'tombstoned',
  'archived',
]);
const isNumberOrNull = (value: unknown) => value === null || isInteger(value);

/** The write outcomes of one append as the coordinator sent them, or a {@link ProtocolError}. */
export function outcomesFromWire(wire: unknown, writes: number): WriteOutcome[] {
  if (!Array.isArray(wire) || wire.length !== writes) throw new ProtocolError('wrong number of write outcomes');
  return wire.map((o: unknown): WriteOutcome => {
    if (
      !Array.isArray(o) ||
      o.length !== 6 ||
      !outcomes.has(o[0]) ||
      !isInteger(o[1]) ||
      !o.slice(2).every(isNumberOrNull)
    ) {
      throw new ProtocolError('malformed write outcome');
    }
    const [outcome, actualVersion, streamVersion, firstPosition, lastPosition, at] = o as WireOutcome;
    return {
      outcome,
      actualVersion,
      streamVersion,
      firstPosition,
      lastPosition,
      recordedAt: at === null ? null : new Date(at),
    };
  });
}
