/**
 * The compressed transfer format: the NDJSON lines as gzip, written as a sequence of
 * independent gzip members of whole lines (about a megabyte of lines each). A sequence of
 * members is plain gzip (RFC 1952, `gunzip` and `zcat` read it as one text), and it makes an
 * export resumable: a member either decompresses to its end, with its length and CRC checked,
 * or was cut off, so the file's complete prefix is found by walking the members (resume.ts).
 */
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { InvalidInputError } from '../errors.js';
import { LineError } from './ndjson.js';

const gzip = promisify(zlib.gzip);

/** Options of {@link gzipLines}. */
export interface GzipLinesOptions {
  /** Characters of lines per gzip member (a member ends after the line that reaches it). @defaultValue 1048576 */
  memberSize?: number;
  /** zlib's compression level, 1 (fastest) to 9 (smallest). @defaultValue 6 */
  level?: number;
}

/**
 * Compresses lines of an export (`transfer(store).export()`) to gzip, in constant memory: one
 * independent gzip member per `memberSize` characters of whole lines, compressed off the main
 * thread while the next member's lines are read. The result is valid gzip for any reader
 * (and for `transfer(store).import`, which detects it), and `annals export --resume` can
 * continue such a file after its last complete member.
 *
 * @example
 * ```ts
 * import { createWriteStream } from 'node:fs';
 * import { Readable } from 'node:stream';
 * import { pipeline } from 'node:stream/promises';
 * import { gzipLines, transfer } from '@annals/core';
 *
 * await pipeline(Readable.from(gzipLines(transfer(store).export())), createWriteStream('log.ndjson.gz'));
 * ```
 */
export async function* gzipLines(
  lines: Iterable<string> | AsyncIterable<string>,
  options: GzipLinesOptions = {},
): AsyncGenerator<Uint8Array> {
  const { memberSize = 1024 * 1024, level = 6 } = options;
  if (!Number.isSafeInteger(memberSize) || memberSize < 1) {
    throw new InvalidInputError('memberSize', 'must be a whole number >= 1');
  }
  if (!Number.isSafeInteger(level) || level < 1 || level > 9) {
    throw new InvalidInputError('level', 'must be a whole number from 1 to 9');
  }
  let parts: string[] = [];
  let size = 0;
  // At most one member is being compressed while the next one's lines are gathered.
  let pending: Promise<Buffer> | undefined;
  for await (const line of lines) {
    parts.push(line);
    size += line.length;
    if (size < memberSize) continue;
    const member = gzip(parts.join(''), { level });
    member.catch(() => {});
    parts = [];
    size = 0;
    if (pending) yield await pending;
    pending = member;
  }
  if (pending) yield await pending;
  if (parts.length > 0) yield await gzip(parts.join(''), { level });
}

/** Whether bytes start with gzip's magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * The chunks of an import source, decompressed when they are gzip (detected by the magic
 * number of the first bytes; text chunks are never gzip). A damaged or cut-off gzip stream
 * throws {@link LineError}, which the import names after the last line it read.
 */
export async function* decompressIfGzip(
  chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
): AsyncGenerator<string | Uint8Array> {
  const iterator =
    Symbol.asyncIterator in chunks
      ? (chunks as AsyncIterable<string | Uint8Array>)[Symbol.asyncIterator]()
      : (chunks as Iterable<string | Uint8Array>)[Symbol.iterator]();
  const head: (string | Uint8Array)[] = [];
  let bytes = 0;
  let compressed = false;
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(next.value);
    if (!(next.value instanceof Uint8Array)) break;
    bytes += next.value.length;
    if (bytes >= 2) {
      compressed = isGzip(head.length === 1 ? next.value : Buffer.concat(head as Uint8Array[]));
      break;
    }
  }
  async function* all() {
    yield* head;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  if (!compressed) {
    yield* all();
    return;
  }
  const gunzip = zlib.createGunzip();
  const input = Readable.from(all(), { objectMode: false });
  input.on('error', (error) => gunzip.destroy(error));
  input.pipe(gunzip);
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (error) {
    if ((error as { code?: unknown }).code?.toString().startsWith('Z_')) {
      throw new LineError(`the gzip data is damaged or cut off after this line (${(error as Error).message})`);
    }
    throw error;
  } finally {
    input.destroy();
    gunzip.destroy();
    await iterator.return?.();
  }
}
