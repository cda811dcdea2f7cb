/**
 * Bulk import: lines of the transfer format (ndjson.ts) into the log, a batch per transaction,
 * at COPY speed. The only way besides the append pipeline that events enter the log, and an
 * operation of the schema's owner: it writes `events` directly (COPY), which the application
 * role may not (sql/0007_least_privilege.sql).
 *
 * A batch, in one transaction:
 * 1. take the log lock, the row lock on log_head that append_events takes, and read the head
 *    under it: no append draws a position until the batch commits or rolls back;
 * 2. restore: lines at positions the log holds must be the very events stored there (a
 *    resumed restore: skipped), the next line must be at head + 1 (no gap);
 *    append: the lines get the positions head + 1, head + 2, ... in file order;
 * 3. check stream versions: each line's version must be the next one of its stream (the
 *    stream's version read under the lock, then the batch's own lines). Where one is not, the
 *    lines whose event ids are stored already (same stream, type and data) are skipped, which
 *    makes a re-run idempotent, and the rest checked again;
 * 4. COPY the rows, one NOTIFY, commit.
 * Positions are thus dense and in order, and every snapshot sees the log as a prefix, exactly
 * as with appends. Lines are parsed and checked before their batch's transaction, while the
 * previous batch is being written.
 */
import type { SqlClient, SqlQueryable } from '../db/sql-client.js';
import { ImportLineError, ImportRefusedError, sqlStateOf, toAnnalsError } from '../errors.js';
import { readInactiveStates } from '../queries/lifecycle.js';
import { isPartitioned } from '../queries/partitions.js';
import {
  copyStatement,
  findStoredIds,
  firstDifferentAtPosition,
  type ImportRow,
  insertImported,
  lockLogForImport,
  notifyImported,
  readStreamVersions,
} from '../queries/transfer.js';
import { copyText, type ImportLine, LineError, type LineLimits, parseLine, readLines } from './ndjson.js';

/** How an import places events; see {@link ImportOptions.mode}. */
export type ImportMode = 'restore' | 'append';

/** Where an import has got to, passed to {@link ImportOptions.onProgress} after each batch. */
export interface ImportProgress {
  /** Lines read so far (blank ones included). */
  lines: number;
  /** Events stored by this import so far. */
  imported: number;
  /** Events skipped because they were stored already (a re-run or a resumed import). */
  skipped: number;
  /** The log's head after the last batch. */
  position: number;
}

/** What an import did. */
export interface ImportResult extends ImportProgress {
  mode: ImportMode;
  /** Transactions committed. */
  batches: number;
  /** Events sealed after the import (0 with `seal: false`). */
  sealed: number;
}

/** @internal The resolved settings of one import. */
export interface ImportSettings {
  mode: ImportMode;
  batchSize: number;
  batchBytes: number;
  limits: LineLimits;
  channel: string;
  onProgress: ((progress: ImportProgress) => void) | undefined;
}

type Batch = ImportLine[];

/** Reads `chunks` into checked batches; a bad line throws {@link ImportLineError}. */
async function* readBatches(
  chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  settings: ImportSettings,
  counted: { lines: number },
): AsyncGenerator<Batch> {
  let batch: Batch = [];
  let bytes = 0;
  let ids = new Set<string>();
  let previous = 0;
  try {
    // A line holds at most maxEventBytes of data and metadata, plus its other fields.
    for await (const { text, line } of readLines(chunks, settings.limits.maxEventBytes + 64 * 1024)) {
      counted.lines = line;
      const parsed = parseLine(text, line, settings.limits);
      if (settings.mode === 'restore' && previous > 0 && parsed.position !== previous + 1) {
        throw new ImportLineError(
          line,
          `position ${parsed.position} does not follow ${previous}: a restore needs the log's positions in order, without a gap`,
          'position',
        );
      }
      previous = parsed.position;
      if (ids.has(parsed.id)) throw new ImportLineError(line, `event id ${parsed.id} appears twice in its batch`, 'id');
      ids.add(parsed.id);
      batch.push(parsed);
      bytes += text.length;
      // Let I/O run (the previous batch's COPY) while this one is parsed.
      if (batch.length % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (batch.length >= settings.batchSize || bytes >= settings.batchBytes) {
        yield batch;
        batch = [];
        bytes = 0;
        ids = new Set();
      }
    }
  } catch (error) {
    if (error instanceof LineError) {
      throw new ImportLineError(error.line ?? counted.lines, error.message, error.field);
    }
    throw error;
  }
  if (batch.length > 0) yield batch;
}

/** @internal Runs an import on `client` into `schema`; see the module comment. */
export async function runImport(
  client: SqlClient,
  schema: string,
  chunks: Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
  settings: ImportSettings,
): Promise<Omit<ImportResult, 'sealed'>> {
  const counted = { lines: 0 };
  const progress: ImportProgress = { lines: 0, imported: 0, skipped: 0, position: 0 };
  let batches = 0;
  /** The head this import left after its last batch (restore: nobody else may move it). */
  let leftAt: number | undefined;
  /**
   * A restore of a file from position 1 knows every stream's version without asking the
   * database: the log holds exactly the lines read so far. Dropped past `maxKnownStreams`
   * streams (memory), and in append mode, where other writers may append between batches.
   */
  let known: Map<string, number> | undefined;
  const source = readBatches(chunks, settings, counted);
  let next = source.next();
  // The next batch is read while this one is written; its error surfaces when it is awaited.
  next.catch(() => {});
  try {
    for (;;) {
      const read = await next;
      if (read.done) break;
      next = source.next();
      next.catch(() => {});
      const batch = read.value;
      if (batches === 0 && settings.mode === 'restore' && batch[0]?.position === 1) known = new Map();
      const outcome = await storeBatch(client, schema, batch, settings, leftAt, known);
      if (known) {
        for (const line of batch) known.set(line.streamId, line.streamVersion);
        if (known.size > maxKnownStreams) known = undefined;
      }
      batches++;
      leftAt = outcome.head;
      progress.imported += outcome.imported;
      progress.skipped += outcome.skipped;
      progress.position = outcome.head;
      progress.lines = (read.value.at(-1) as ImportLine).line;
      settings.onProgress?.({ ...progress });
    }
  } finally {
    // Not awaited: a read in flight (a slow stdin) ends when the caller closes its source.
    void source.return(undefined).catch(() => {});
  }
  progress.lines = counted.lines;
  if (leftAt === undefined) {
    const [row] = await client.query<{ head: string | number | bigint | null }>(
      `select max(position) as head from "${schema}".events`,
    );
    progress.position = Number(row?.head ?? 0);
  }
  return { mode: settings.mode, batches, ...progress };
}

/** Streams whose versions a restore keeps in memory, at most (about 100 bytes each). */
const maxKnownStreams = 1_000_000;

/** One batch in one transaction; retried once with the stored ids looked up first. */
async function storeBatch(
  client: SqlClient,
  schema: string,
  batch: Batch,
  settings: ImportSettings,
  leftAt: number | undefined,
  known: ReadonlyMap<string, number> | undefined,
): Promise<{ imported: number; skipped: number; head: number }> {
  try {
    return await client.transaction((tx) => writeBatch(tx, schema, batch, settings, leftAt, known, false));
  } catch (error) {
    if (!(error instanceof DuplicateEventId)) throw toAnnalsError(error);
    // Append mode: an id stored already (in another stream) passed the version check and met
    // the unique key; the retry looks the ids up first and names the line.
    if (settings.mode === 'append') {
      return client.transaction((tx) => writeBatch(tx, schema, batch, settings, leftAt, undefined, true));
    }
    // Restore: the log is the file up to here, so the file holds the id twice.
    const line = error.line;
    if (!line) throw toAnnalsError(error.cause);
    throw new ImportLineError(line.line, `event id ${line.id} appears earlier in the file`, 'id');
  }
}

async function writeBatch(
  tx: SqlQueryable,
  schema: string,
  batch: Batch,
  settings: ImportSettings,
  leftAt: number | undefined,
  known: ReadonlyMap<string, number> | undefined,
  idsFirst: boolean,
): Promise<{ imported: number; skipped: number; head: number }> {
  const head = await lockLogForImport(tx, schema);
  // A partitioned log keys event ids per partition only: look every id up, under the log lock.
  const lookUpIdsFirst = idsFirst || (await isPartitioned(tx, schema));
  let lines = batch;
  let skipped = 0;
  if (settings.mode === 'restore') {
    const first = batch[0] as ImportLine;
    if (leftAt !== undefined && head !== leftAt) {
      throw new ImportRefusedError(
        'concurrent-writer',
        `the log moved from ${leftAt} to ${head} during the restore: something else appends to it; stop it and run the restore again`,
        first.line,
      );
    }
    if (first.position > head + 1) {
      throw new ImportRefusedError(
        'gap',
        head === 0
          ? `line ${first.line} is at position ${first.position}: a restore starts at position 1 (export without --after)`
          : `line ${first.line} is at position ${first.position} but the log ends at ${head}: positions would leave a gap`,
        first.line,
      );
    }
    const held = batch.filter((line) => line.position <= head);
    if (held.length > 0) {
      const different = await firstDifferentAtPosition(tx, schema, held);
      if (different >= 0) {
        const line = held[different] as ImportLine;
        throw new ImportRefusedError(
          'not-empty',
          `a restore copies a log into an empty one (or resumes one), but position ${line.position} of this log holds another event than line ${line.line}`,
          line.line,
        );
      }
      skipped = held.length;
      lines = batch.slice(held.length);
    }
  }
  if (lines.length === 0) return { imported: 0, skipped, head };

  // A restore from position 1 knows the versions (the log is the file so far, as the head
  // check above holds); otherwise they are read under the lock.
  const streamIds = [...new Set(lines.map((line) => line.streamId))];
  let versions = known ?? (await readStreamVersions(tx, schema, streamIds));
  if (known && skipped > 0) {
    // The lines held already (a resumed restore) are the log too.
    const withHeld = new Map(known);
    for (const line of batch.slice(0, skipped)) withHeld.set(line.streamId, line.streamVersion);
    versions = withHeld;
  }
  // A stream that is deleted, tombstoned or archived takes no events, from an append-mode import
  // neither. A restore's states are its own file's (set after it, restore-states.ts): the
  // events it copies were appended before or after those changes, as they were in the original.
  if (!known && settings.mode === 'append') {
    const inactive = await readInactiveStates(tx, schema, streamIds);
    const closed = lines.find((line) => inactive.has(line.streamId));
    if (closed) {
      throw new ImportLineError(
        closed.line,
        `stream ${JSON.stringify(closed.streamId)} is ${inactive.get(closed.streamId)}: it takes no imported events`,
        'streamId',
      );
    }
  }
  let mismatch = lookUpIdsFirst ? undefined : firstVersionMismatch(lines, versions);
  if (lookUpIdsFirst || (mismatch && settings.mode === 'append')) {
    const stored = await findStoredIds(tx, schema, lines);
    for (const [index, found] of stored) {
      if (!found.same) {
        const line = lines[index] as ImportLine;
        throw new ImportLineError(
          line.line,
          `event id ${line.id} is already stored at position ${found.position} (stream ${JSON.stringify(found.streamId)}) with other content`,
          'id',
        );
      }
    }
    if (stored.size > 0) {
      skipped += stored.size;
      lines = lines.filter((_, index) => !stored.has(index));
    }
    mismatch = firstVersionMismatch(lines, versions);
  }
  if (mismatch) {
    const { line, current } = mismatch;
    throw new ImportLineError(
      line.line,
      `stream ${JSON.stringify(line.streamId)}: version ${line.streamVersion} is not the next one (the stream is at version ${current})`,
      'streamVersion',
    );
  }
  if (lines.length === 0) return { imported: 0, skipped, head };

  const rows: ImportRow[] =
    settings.mode === 'append' ? lines.map((line, i) => ({ ...line, position: head + 1 + i })) : lines;
  await copyRows(tx, schema, rows, lines);
  const last = (rows.at(-1) as ImportRow).position;
  await notifyImported(tx, settings.channel, last);
  return { imported: rows.length, skipped, head: last };
}

/** The first line whose version does not continue its stream (as stored, then as in the batch). */
function firstVersionMismatch(
  lines: readonly ImportLine[],
  versions: ReadonlyMap<string, number>,
): { line: ImportLine; current: number } | undefined {
  const at = new Map<string, number>();
  for (const line of lines) {
    const current = at.get(line.streamId) ?? versions.get(line.streamId) ?? 0;
    if (line.streamVersion !== current + 1) return { line, current };
    at.set(line.streamId, line.streamVersion);
  }
  return undefined;
}

/** COPY where the client has it, else one multi-row insert; errors name the source line. */
async function copyRows(
  tx: SqlQueryable,
  schema: string,
  rows: readonly ImportRow[],
  lines: readonly ImportLine[],
): Promise<void> {
  if (!tx.copyFrom) {
    await insertImported(tx, schema, rows);
    return;
  }
  try {
    await tx.copyFrom(copyStatement(schema), copyChunks(rows));
  } catch (error) {
    const row = copyLineOf(error);
    const line = row === undefined ? undefined : lines[row - 1];
    if (isDuplicateEventId(error)) throw new DuplicateEventId(line, error);
    // Only a refusal of the row's data is the line's fault; a lost connection, a cancel or an
    // administrator's shutdown is not (data exceptions, constraints, program limits are).
    const state = sqlStateOf(error) ?? '';
    if (!line || !['22', '23', '54'].includes(state.slice(0, 2))) throw error;
    const detail = (error as { detail?: string }).detail;
    throw new ImportLineError(
      line.line,
      `PostgreSQL refused it: ${(error as Error).message}${detail ? ` (${detail})` : ''}`,
    );
  }
}

/** The COPY met the unique key of event ids: an id of the batch is stored already. */
class DuplicateEventId extends Error {
  readonly line: ImportLine | undefined;

  constructor(line: ImportLine | undefined, cause: unknown) {
    super('duplicate event id', { cause });
    this.line = line;
  }
}

/** The rows in COPY text format, in chunks of about 1000 rows. */
function* copyChunks(rows: readonly ImportRow[]): Generator<string> {
  let chunk = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as ImportRow;
    chunk += `${r.position}\t${copyText(r.streamId)}\t${r.streamVersion}\t${r.id}\t${copyText(r.type)}\t${copyText(r.data)}\t${copyText(r.metadata)}\t${r.recordedAt}\n`;
    if (i % 1000 === 999) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** The row of the COPY data an error is about (PostgreSQL names it in the error's context). */
function copyLineOf(error: unknown): number | undefined {
  const where = typeof error === 'object' && error !== null ? (error as { where?: unknown }).where : undefined;
  const match = typeof where === 'string' ? /COPY \S+, line (\d+)/.exec(where) : null;
  return match ? Number(match[1]) : undefined;
}

/** A unique violation of an event id: `events_event_id_key`, or a partition's `events_p<n>_event_id_key`. */
function isDuplicateEventId(error: unknown): boolean {
  if (sqlStateOf(error) !== '23505') return false;
  const { constraint, message } = error as { constraint?: unknown; message?: unknown };
  return /\bevents_(p\d+_|default_)?event_id_key\b/.test(`${String(constraint ?? '')} ${String(message ?? '')}`);
}
