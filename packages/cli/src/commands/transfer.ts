/**
 * `annals export` and `annals import`: the log as NDJSON (the transfer format of
 * docs/operations.md), plain or gzip, out to a file or stdout and back in at COPY speed.
 *
 * Exit codes: 0 done; 1 any other failure (connection, file, bad arguments); 2 the import
 * stopped at a line it names or was refused (nothing of that batch was stored; run it again
 * once fixed, what is stored already is skipped).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  createPostgresClient,
  type ExportOptions,
  emmettSource,
  gzipLines,
  ImportLineError,
  type ImportMode,
  ImportRefusedError,
  type ImportResult,
  InvalidInputError,
  prepareExportResume,
  transfer,
} from '@annals/core';
import { type ConnectionFlags, openStore, withStore } from '../config.js';

type Flags = ConnectionFlags & { json?: boolean };

/** A progress line on stderr, redrawn in place: only for a person watching a terminal. */
function progressLine(enabled: boolean) {
  let last = 0;
  return {
    show(text: string) {
      if (!enabled) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      process.stderr.write(`\r${text}\u001b[K`);
    },
    done() {
      if (enabled && last > 0) process.stderr.write('\r\u001b[K');
    },
  };
}

/** `--until`: a position (digits) or an ISO-8601 time. */
function parseUntil(text: string | undefined): number | Date | undefined {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text)) return Number(text);
  const time = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(time.getTime())) {
    throw new InvalidInputError('--until', `must be a position or an ISO-8601 time, got ${JSON.stringify(text)}`);
  }
  return time;
}

/**
 * `annals export`: the log (or part of it) as NDJSON on stdout or into a file; gzip with
 * `--compress` or a file name ending in `.gz` (one gzip member per megabyte of lines, so that
 * `--resume` continues it after its last complete member).
 */
export async function exportCommand(
  flags: Flags & {
    after?: number;
    until?: string;
    category?: string[];
    out?: string;
    resume?: string;
    compress?: boolean;
  },
): Promise<void> {
  if (flags.out && flags.resume)
    throw new InvalidInputError('--resume', 'names the output file itself: not with --out');
  const until = parseUntil(flags.until);
  const target = flags.resume ?? flags.out;
  let compress = flags.compress === true || (target?.endsWith('.gz') ?? false);
  let after = flags.after ?? 0;
  if (flags.resume) {
    const point = await prepareExportResume(flags.resume).catch((error: unknown) => {
      throw error instanceof InvalidInputError ? new InvalidInputError('--resume', error.message) : error;
    });
    // A file continues in its own format.
    if (point.compressed) compress = true;
    else if (point.size > 0 && compress) {
      throw new InvalidInputError('--resume', `${flags.resume} holds NDJSON, not gzip: resume it without --compress`);
    }
    after = Math.max(after, point.position);
  }
  await withStore(flags, async (store) => {
    const options: ExportOptions = { after, until, categories: flags.category };
    const head = until === undefined ? await store.headPosition() : undefined;
    const lines = transfer(store).export(options);
    // On a terminal's stderr, unless the lines themselves go to that terminal.
    const progress = progressLine(
      process.stderr.isTTY === true && !flags.json && (target !== undefined || process.stdout.isTTY !== true),
    );
    let events = 0;
    let position = after;
    const counting = new Transform({
      writableObjectMode: true,
      readableObjectMode: compress,
      transform(line: string, _encoding, done) {
        events++;
        position = Number(/^\{"position":(\d+)/.exec(line)?.[1] ?? position);
        const total = head === undefined ? '' : ` of ${head}`;
        progress.show(`exporting: ${events} events, position ${position}${total}`);
        done(null, line);
      },
    });
    const out = target ? createWriteStream(target, { flags: flags.resume ? 'a' : 'w' }) : process.stdout;
    try {
      if (compress) {
        await pipeline(Readable.from(lines), counting, (source) => gzipLines(source), out, {
          end: target !== undefined,
        });
      } else {
        await pipeline(Readable.from(lines), counting, out, { end: target !== undefined });
      }
    } finally {
      progress.done();
    }
    if (target) {
      const summary = { events, after, lastPosition: position, file: target, compressed: compress };
      console.log(
        flags.json
          ? JSON.stringify(summary)
          : `exported ${events} events after position ${after} to ${target}${compress ? ' (gzip)' : ''}; the last is at position ${position}`,
      );
    }
  });
}

/**
 * `annals import <file>`: loads an NDJSON export (`-` for stdin; gzip is detected by its first
 * bytes and decompressed), or with `--emmett <url>` the
 * events of an Emmett PostgreSQL store (append mode); exit status 2 at a bad line.
 */
export async function importCommand(
  file: string | undefined,
  flags: Flags & {
    mode?: string;
    batchSize?: number;
    seal?: boolean;
    emmett?: string;
    emmettSchema?: string;
    emmettPartition?: string;
  },
): Promise<void> {
  if ((file === undefined) === (flags.emmett === undefined)) {
    throw new InvalidInputError('file', 'give a file to import (- for stdin), or --emmett <url>, not both');
  }
  const mode = (flags.mode ?? (flags.emmett ? 'append' : 'restore')) as ImportMode;
  if (mode !== 'restore' && mode !== 'append') {
    throw new InvalidInputError('--mode', `must be restore or append, got ${JSON.stringify(flags.mode)}`);
  }
  if (flags.emmett && mode !== 'append') {
    throw new InvalidInputError('--mode', "an Emmett store's positions are not Annals positions: use --mode append");
  }
  const size = file === undefined || file === '-' ? undefined : (await stat(file)).size;
  const emmett = flags.emmett
    ? createPostgresClient({ connectionString: flags.emmett, maxConnections: 1, applicationName: 'annals-cli' })
    : undefined;
  const { store } = await openStore(flags, true);
  const progress = progressLine(process.stderr.isTTY === true && !flags.json);
  let read = 0;
  const stream = file === undefined ? undefined : file === '-' ? process.stdin : createReadStream(file);
  const source = emmett
    ? emmettSource(emmett, { schema: flags.emmettSchema, partition: flags.emmettPartition })
    : (async function* () {
        for await (const chunk of stream as NodeJS.ReadableStream) {
          read += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })();
  let result: ImportResult;
  try {
    result = await transfer(store).import(source, {
      mode,
      batchSize: flags.batchSize,
      seal: flags.seal !== false,
      onProgress: (p) => {
        const share = size ? ` (${Math.floor((100 * read) / size)}% of the file)` : '';
        progress.show(`importing: ${p.imported} imported, ${p.skipped} already there, line ${p.lines}${share}`);
      },
    });
  } catch (error) {
    progress.done();
    if (error instanceof ImportLineError || error instanceof ImportRefusedError) {
      if (flags.json) {
        const { code, message } = error;
        const line = error.line ?? null;
        const reason = error instanceof ImportRefusedError ? error.reason : undefined;
        console.log(JSON.stringify({ ok: false, code, message, line, reason }));
      }
      console.error(`annals: ${error.code}: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  } finally {
    if (stream && 'destroy' in stream) stream.destroy();
    await emmett?.close();
    await store.close();
  }
  progress.done();
  console.log(
    flags.json
      ? JSON.stringify({ ok: true, ...result })
      : `imported ${result.imported} events (${result.skipped} already there) from ${result.lines} lines in ${result.batches} batches (${result.mode}); the log ends at position ${result.position}; ${result.sealed} sealed`,
  );
}
