/**
 * The transfer format: NDJSON, one JSON object per event, one event per line, in log order
 * (docs/operations.md). Export writes every line with its keys in one order:
 *
 * ```
 * {"position":1,"id":"…","streamId":"account-1","streamVersion":1,"type":"Opened","data":{"owner": "a"},"metadata":{},"recordedAt":"2026-12-01T23:07:06.123456Z"}
 * ```
 *
 * Byte for byte: `data` and `metadata` are the jsonb text PostgreSQL prints (its canonical
 * form: keys ordered, numbers exactly as stored), written into the line without passing through
 * JavaScript values, and read back the same way: the import hands PostgreSQL the very text of
 * the line, so a number JavaScript cannot hold (`12345678901234567890`, `1.10`) survives.
 * `recordedAt` is UTC with all six digits of PostgreSQL's microseconds.
 */
import { InvalidInputError } from '../errors.js';
import type { ImportRow } from '../queries/transfer.js';
import { assertStreamId } from '../validation.js';

/** An event as a line of the transfer format names it, the JSON texts as stored. */
export interface TransferRow {
  /** Left out of the line when undefined (records for an append-mode import). */
  position: string | number | bigint | undefined;
  id: string;
  streamId: string;
  streamVersion: string | number | bigint;
  type: string;
  /** jsonb text of the data. */
  data: string;
  /** jsonb text of the metadata. */
  metadata: string;
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
  recordedAt: string;
}

/** One line of the transfer format, ending in a newline. */
export function formatLine(row: TransferRow): string {
  const position = row.position === undefined ? '' : `"position":${row.position},`;
  return `{${position}"id":${JSON.stringify(row.id)},"streamId":${JSON.stringify(row.streamId)},"streamVersion":${row.streamVersion},"type":${JSON.stringify(row.type)},"data":${row.data},"metadata":${row.metadata},"recordedAt":"${row.recordedAt}"}\n`;
}

/**
 * A line read and checked: everything an import stores (the JSON texts of data and metadata as
 * the line spells them; position 0 when the line has none, allowed in append mode), and its line
 * number in the source, from 1.
 */
export interface ImportLine extends ImportRow {
  line: number;
}

/** Limits a line is checked against (the store's own). */
export interface LineLimits {
  maxStreamIdLength: number;
  maxEventBytes: number;
  /** Whether `position` is required (restore) or may be left out (append). */
  requirePosition: boolean;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// An ISO-8601 time with a zone; PostgreSQL itself then checks the calendar.
const timePattern = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:?\d{2})?)$/;
const knownKeys = new Set(['position', 'id', 'streamId', 'streamVersion', 'type', 'data', 'metadata', 'recordedAt']);

/** A line that is not a valid event; `field` names the key at fault, when there is one. */
export class LineError extends Error {
  readonly field: string | undefined;
  /** Set where the reader itself knows the line (bytes that are not UTF-8). */
  readonly line: number | undefined;

  constructor(message: string, field?: string, line?: number) {
    super(message);
    this.field = field;
    this.line = line;
  }
}

/**
 * Parses and checks one line (without its newline). Throws {@link LineError} naming what is
 * wrong; the caller adds the line number.
 */
export function parseLine(text: string, line: number, limits: LineLimits): ImportLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LineError(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new LineError('must be a JSON object, one event per line');
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!knownKeys.has(key)) throw new LineError(`unknown key ${JSON.stringify(key)}`, key);
  }
  const { position, id, streamId, streamVersion, type, recordedAt } = record;
  let at = 0;
  if (position !== undefined || limits.requirePosition) {
    at = positiveInteger(position, 'position');
  }
  if (typeof id !== 'string' || !uuidPattern.test(id)) throw new LineError('must be a UUID', 'id');
  checkName(streamId, 'streamId', limits.maxStreamIdLength);
  checkName(type, 'type', 256);
  const version = positiveInteger(streamVersion, 'streamVersion');
  if (typeof record.data !== 'object' || record.data === null || Array.isArray(record.data)) {
    throw new LineError('must be a JSON object', 'data');
  }
  if (typeof record.metadata !== 'object' || record.metadata === null || Array.isArray(record.metadata)) {
    throw new LineError('must be a JSON object', 'metadata');
  }
  if (typeof recordedAt !== 'string' || !timePattern.test(recordedAt)) {
    throw new LineError('must be an ISO-8601 time with a zone, e.g. 2026-01-31T12:00:00.123456Z', 'recordedAt');
  }
  const spans = valueSpans(text);
  const data = text.slice(spans.dataStart, spans.dataEnd);
  const metadata = text.slice(spans.metadataStart, spans.metadataEnd);
  // UTF-8 takes at most 3 bytes per UTF-16 unit: count exactly only near the limit.
  if ((data.length + metadata.length) * 3 > limits.maxEventBytes) {
    const bytes = Buffer.byteLength(data) + Buffer.byteLength(metadata);
    if (bytes > limits.maxEventBytes) {
      throw new LineError(`data and metadata take ${bytes} bytes, over the limit of ${limits.maxEventBytes}`, 'data');
    }
  }
  return {
    line,
    position: at,
    id: id.toLowerCase(),
    streamId: streamId as string,
    streamVersion: version,
    type: type as string,
    data,
    metadata,
    recordedAt,
  };
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new LineError(value === undefined ? 'is missing' : 'must be a whole number >= 1', field);
  }
  return value;
}

function checkName(value: unknown, field: string, maxLength: number): void {
  if (value === undefined) throw new LineError('is missing', field);
  try {
    assertStreamId(value, field, maxLength);
  } catch (error) {
    if (error instanceof InvalidInputError) throw new LineError(error.message.slice(field.length + 2), field);
    throw error;
  }
}

/** Where the values of `data` and `metadata` start and end in a line. */
export interface ValueSpans {
  dataStart: number;
  dataEnd: number;
  metadataStart: number;
  metadataEnd: number;
}

/**
 * Where the values of `data` and `metadata` start and end in `text`, a JSON object that
 * `JSON.parse` already accepted with both keys present (so only the boundaries need finding:
 * strings with their escapes, nested brackets, and scalars up to the next comma or brace). Of
 * a key given twice the last one counts, as in `JSON.parse`.
 */
export function valueSpans(text: string): ValueSpans {
  const spans: ValueSpans = { dataStart: 0, dataEnd: 0, metadataStart: 0, metadataEnd: 0 };
  let i = skipSpace(text, 0) + 1; // past '{'
  for (;;) {
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== 0x22) return spans; // '}'
    const keyEnd = endOfString(text, i);
    let key = text.slice(i + 1, keyEnd - 1);
    if (key.includes('\\')) key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipSpace(text, keyEnd) + 1; // past ':'
    const start = skipSpace(text, i);
    const end = endOfValue(text, start);
    if (key === 'data') {
      spans.dataStart = start;
      spans.dataEnd = end;
    } else if (key === 'metadata') {
      spans.metadataStart = start;
      spans.metadataEnd = end;
    }
    i = skipSpace(text, end);
    if (text.charCodeAt(i) === 0x2c) i++;
  }
}

function skipSpace(text: string, i: number): number {
  let at = i;
  for (;;) {
    const c = text.charCodeAt(at);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) at++;
    else return at;
  }
}

/** `text[i]` is a quote: the index just past the closing one. */
function endOfString(text: string, i: number): number {
  let at = i + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    let backslashes = 0;
    for (let k = quote - 1; text.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

function endOfValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return endOfString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    let at = i;
    for (;;) {
      const ch = text[at];
      if (ch === '"') {
        at = endOfString(text, at);
        continue;
      }
      if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return at + 1;
      }
      at++;
    }
  }
  let at = i;
  while (at < text.length && !',}] \t\r\n'.includes(text[at] as string)) at++;
  return at;
}

/**
 * Splits text chunks (strings or UTF-8 bytes, cut anywhere) into lines, without their newline
 * (`\n` or `\r\n`), numbered from 1. Empty lines are skipped but counted.
 */
export async function* readLines(
  chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  maxLineLength = Number.POSITIVE_INFINITY,
): AsyncGenerator<{ text: string; line: number }> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let rest = '';
  let line = 0;
  const lines = function* (text: string) {
    let start = 0;
    for (;;) {
      const newline = text.indexOf('\n', start);
      if (newline < 0) {
        rest = text.slice(start);
        return;
      }
      line++;
      const end = newline > start && text.charCodeAt(newline - 1) === 0x0d ? newline - 1 : newline;
      if (end > start) yield { text: text.slice(start, end), line };
      start = newline + 1;
    }
  };
  for await (const chunk of chunks) {
    let text: string;
    if (typeof chunk === 'string') text = chunk;
    else if (chunk instanceof Uint8Array) {
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new LineError('not valid UTF-8', undefined, line + 1);
      }
    } else {
      throw new InvalidInputError('source', 'must yield strings or bytes (Uint8Array, Buffer)');
    }
    yield* lines(rest + text);
    if (rest.length > maxLineLength) {
      throw new LineError(`longer than ${maxLineLength} characters without a line end`, undefined, line + 1);
    }
  }
  const last = rest + decoder.decode();
  rest = '';
  if (last.trim().length > 0) {
    line++;
    yield { text: last.endsWith('\r') ? last.slice(0, -1) : last, line };
  }
}

/** Escapes a value for PostgreSQL's COPY text format. */
export function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'))
    : value;
}
