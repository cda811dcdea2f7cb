/**
 * Resuming an export file: cut it after its last complete line (NDJSON) or its last complete
 * gzip member (gzip.ts), and name the position of the last event it holds, so that an export
 * continued after that position, appended to the file, makes it whole.
 *
 * A gzip file is walked member by member from its start: each member's header is parsed, its
 * deflate data inflated (raw inflate stops at the end of the deflate stream and says how much
 * input it took) and its trailer checked (CRC-32 and length). The first member that is cut
 * off or damaged, and everything after it, is cut. Only the tail of a file written in order
 * can be cut off, so this finds exactly what a stopped export left complete.
 */
import { type FileHandle, open, stat } from 'node:fs/promises';
import zlib from 'node:zlib';
import { InvalidInputError } from '../errors.js';
import { isGzip } from './gzip.js';

/** Where an export file continues; see {@link prepareExportResume}. */
export interface ExportResumePoint {
  /** The position of the last event the file holds (0: none, export from the start). */
  position: number;
  /**
   * Whether the file is gzip (continue it with gzip members), even when none of its members
   * was complete; false for an NDJSON, empty or new file.
   */
  compressed: boolean;
  /** The file's size after the cut. */
  size: number;
}

/**
 * Prepares the export file at `path` to be continued: cuts off what a stopped export left
 * half written (a partial line, or a partial gzip member) and returns the position of its
 * last complete event. A missing or empty file is position 0.
 *
 * @example
 * ```ts
 * import { createWriteStream } from 'node:fs';
 * import { Readable } from 'node:stream';
 * import { pipeline } from 'node:stream/promises';
 * import { gzipLines, prepareExportResume, transfer } from '@annals/core';
 *
 * const { position } = await prepareExportResume('log.ndjson.gz');
 * await pipeline(Readable.from(gzipLines(transfer(store).export({ after: position }))), createWriteStream('log.ndjson.gz', { flags: 'a' }));
 * ```
 *
 * @throws {@link InvalidInputError} when the last complete line is not an exported event with a position.
 */
export async function prepareExportResume(path: string): Promise<ExportResumePoint> {
  const size = await stat(path).then(
    (s) => s.size,
    () => -1,
  );
  if (size <= 0) return { position: 0, compressed: false, size: 0 };
  const file = await open(path, 'r+');
  try {
    const magic = Buffer.alloc(2);
    await file.read(magic, 0, 2, 0);
    const compressed = isGzip(magic);
    const { end, lastLine } = compressed ? await lastGzipLine(file, size) : await lastPlainLine(file, size);
    if (end < size) await file.truncate(end);
    return { position: lastLine === undefined ? 0 : positionOf(lastLine, path), compressed, size: end };
  } finally {
    await file.close();
  }
}

function positionOf(line: string, path: string): number {
  let position: unknown;
  try {
    position = (JSON.parse(line) as { position?: unknown }).position;
  } catch {
    position = undefined;
  }
  if (typeof position !== 'number' || !Number.isSafeInteger(position)) {
    throw new InvalidInputError('path', `the last line of ${path} is not an exported event with a position`);
  }
  return position;
}

interface Tail {
  /** Where the complete part of the file ends. */
  end: number;
  lastLine: string | undefined;
}

/** Reads back from the end until the last complete line is in view. */
async function lastPlainLine(file: FileHandle, size: number): Promise<Tail> {
  for (let chunk = 64 * 1024; ; chunk *= 2) {
    const start = Math.max(0, size - chunk);
    const buffer = Buffer.alloc(size - start);
    await file.read(buffer, 0, buffer.length, start);
    const last = buffer.lastIndexOf(0x0a);
    const previous = last > 0 ? buffer.lastIndexOf(0x0a, last - 1) : -1;
    if (start > 0 && previous < 0) continue;
    if (last < 0) return { end: 0, lastLine: undefined };
    return { end: start + last + 1, lastLine: buffer.subarray(previous + 1, last).toString('utf8') };
  }
}

/** Bytes read at a time while walking the members. */
const readSize = 4 * 1024 * 1024;

/** Walks the gzip members from the start; the end of the last complete one and its last line. */
async function lastGzipLine(file: FileHandle, size: number): Promise<Tail> {
  let window = Buffer.alloc(0);
  let windowStart = 0;
  let end = 0;
  let lastMember: Buffer | undefined;
  while (end < size) {
    const member = readMember(window.subarray(end - windowStart));
    if (member === 'damaged') break;
    if (member === 'more') {
      const have = windowStart + window.length;
      if (have >= size) break; // cut off inside this member
      const more = Buffer.alloc(Math.min(readSize, size - have));
      const { bytesRead } = await file.read(more, 0, more.length, have);
      window = Buffer.concat([window.subarray(end - windowStart), more.subarray(0, bytesRead)]);
      windowStart = end;
      continue;
    }
    end += member.length;
    lastMember = member.content;
  }
  if (lastMember === undefined) return { end: 0, lastLine: undefined };
  // Members hold whole lines: the last one ends with a newline.
  if (lastMember.at(-1) !== 0x0a) {
    throw new InvalidInputError('path', 'the last complete gzip member does not end with a whole line');
  }
  const previous = lastMember.lastIndexOf(0x0a, lastMember.length - 2);
  return { end, lastLine: lastMember.subarray(previous + 1, lastMember.length - 1).toString('utf8') };
}

const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/**
 * The gzip member at the start of `bytes`: its length and content, `'more'` when `bytes`
 * ends inside it, `'damaged'` when it is not a valid member.
 */
function readMember(bytes: Buffer): { length: number; content: Buffer } | 'more' | 'damaged' {
  if (bytes.length < 10) return 'more';
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8) return 'damaged';
  const flags = bytes[3] as number;
  let at = 10;
  if (flags & 4) {
    if (bytes.length < at + 2) return 'more';
    at += 2 + bytes.readUInt16LE(at);
  }
  for (const flag of [8, 16]) {
    if (!(flags & flag)) continue;
    const zero = bytes.indexOf(0, at);
    if (zero < 0) return 'more';
    at = zero + 1;
  }
  if (flags & 2) at += 2;
  if (bytes.length < at) return 'more';
  let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
  try {
    inflated = zlib.inflateRawSync(bytes.subarray(at), { info: true }) as unknown as typeof inflated;
  } catch (error) {
    return (error as { code?: unknown }).code === 'Z_BUF_ERROR' ? 'more' : 'damaged';
  }
  const trailer = at + inflated.engine.bytesWritten;
  if (bytes.length < trailer + 8) return 'more';
  const content = inflated.buffer;
  if (bytes.readUInt32LE(trailer + 4) !== content.length % 2 ** 32) return 'damaged';
  if (crc32 && bytes.readUInt32LE(trailer) !== crc32(content)) return 'damaged';
  return { length: trailer + 8, content };
}
