/**
 * The transfer facet of a store: export the log as NDJSON lines, import such lines at COPY
 * speed. The line format is in ndjson.ts, how an import keeps the log gap-free in import.ts,
 * and both, with the guarantees and the measured rates, in docs/operations.md.
 */
import { notifyChannel } from '../db/migrate.js';
import { ImportRefusedError, InvalidInputError } from '../errors.js';
import { integrity } from '../integrity/integrity.js';
import { canWriteLog, readTransferPage, type TransferPageRow } from '../queries/transfer.js';
import type { EventStore } from '../store/event-store.js';
import { contextOf } from '../store/store-context.js';
import { assertInteger, assertStreamId, assertTime, readOptions } from '../validation.js';
import { decompressIfGzip } from './gzip.js';
import { type ImportMode, type ImportProgress, type ImportResult, runImport } from './import.js';
import { formatLine } from './ndjson.js';
import { restoreStreamStates } from './restore-states.js';

/** Options of {@link Transfer.export}. */
export interface ExportOptions {
  /** Export the events after this position. @defaultValue 0 (from the start) */
  after?: number;
  /**
   * The last event exported: a position, or a time (the last event recorded at or before it).
   * @defaultValue the head when the export starts (later appends are left out)
   */
  until?: number | Date;
  /** Only events of these stream categories (the stream id up to its first `-`). */
  categories?: readonly string[];
  /** Events read per query; memory holds at most two pages. @defaultValue 5000 */
  pageSize?: number;
}

/** Options of {@link Transfer.import}. */
export interface ImportOptions {
  /**
   * `restore` keeps positions, ids and times: into an empty log (or one holding exactly the
   * file's first events, as a resumed restore leaves it), else {@link ImportRefusedError}.
   * `append` gives the events new positions after the head, keeps ids, times and metadata, and
   * needs each line's stream version to be the next one of its stream.
   * @defaultValue 'restore'
   */
  mode?: ImportMode;
  /** Most events per transaction (each holds the log lock while it writes). @defaultValue 10000 */
  batchSize?: number;
  /** Seal the log afterwards, so that `integrity(store).verify()` covers the imported events. @defaultValue true */
  seal?: boolean;
  /** Called after each committed batch. */
  onProgress?: (progress: ImportProgress) => void;
}

/** The transfer facet of one store; see {@link transfer}. */
export interface Transfer {
  /**
   * The log in position order as lines of the transfer format (docs/operations.md): each item
   * is one event's JSON object followed by a newline, its `data` and `metadata` the jsonb text
   * as stored and `recordedAt` to the microsecond, so an export of a restored copy is the same
   * bytes. Reads keyset pages, so memory stays flat whatever the log's length. Events are
   * exported as stored: personal fields stay encrypted.
   *
   * @example
   * ```ts
   * import { createWriteStream } from 'node:fs';
   * import { Readable } from 'node:stream';
   * import { pipeline } from 'node:stream/promises';
   * import { transfer } from '@annals/core';
   *
   * await pipeline(Readable.from(transfer(store).export({ categories: ['account'] })), createWriteStream('log.ndjson'));
   * ```
   */
  export(options?: ExportOptions): AsyncIterable<string>;
  /**
   * Loads lines of the transfer format (strings or bytes, cut anywhere: a file stream will do;
   * bytes starting with gzip's magic number are decompressed, see {@link gzipLines})
   * a batch per transaction, by COPY, under the log lock: positions stay dense and in order
   * beside concurrent appends. Every line is checked; a bad one throws {@link ImportLineError}
   * naming it, and nothing of its batch is stored (batches before it are). Events stored
   * already are skipped, so running an import again, or after it stopped, finishes it.
   * Writes the events table directly: run it as the schema's owner (else
   * {@link ImportRefusedError} with reason `not-owner`). Inline projections do not run for
   * imported events (rebuild them afterwards); subscriptions and async projections read them
   * from the log as usual. A restore then sets each stream's lifecycle state (deleted,
   * tombstoned, archived, retention) from the `$lifecycle` records it copied, so the copy
   * answers reads as the original does.
   *
   * @example
   * ```ts
   * import { createReadStream } from 'node:fs';
   * import { transfer } from '@annals/core';
   *
   * const result = await transfer(store).import(createReadStream('log.ndjson'), { mode: 'restore' });
   * console.log(`${result.imported} imported, ${result.skipped} already there, head ${result.position}`);
   * ```
   *
   * @throws {@link ImportLineError} for a line that is not a valid event or does not fit its stream.
   * @throws {@link ImportRefusedError} when the log cannot take the import as asked.
   */
  import(
    source: string | Iterable<string | Uint8Array> | AsyncIterable<string | Uint8Array>,
    options?: ImportOptions,
  ): Promise<ImportResult>;
}

/** The transfer facet of `store`: bulk export and import of its log. */
export function transfer(store: EventStore): Transfer {
  const context = contextOf(store);
  const { schema } = context;
  return {
    export(options) {
      context.assertOpen();
      const { after = 0, until, categories, pageSize = 5000 } = readOptions<ExportOptions>(options, 'options');
      assertInteger(after, 'after', 0);
      assertInteger(pageSize, 'pageSize', 1);
      if (until !== undefined && !(until instanceof Date)) assertInteger(until, 'until', 0);
      if (until instanceof Date) assertTime(until, 'until');
      if (categories !== undefined) {
        if (!Array.isArray(categories) || categories.length === 0) {
          throw new InvalidInputError('categories', 'must be a non-empty array of category names');
        }
        categories.forEach((c, i) => {
          assertStreamId(c, `categories[${i}]`, context.options.maxStreamIdLength);
        });
      }
      const names = categories === undefined ? undefined : [...new Set(categories as string[])];
      return {
        async *[Symbol.asyncIterator]() {
          const last =
            until === undefined
              ? await store.headPosition()
              : until instanceof Date
                ? await store.positionAt(until)
                : until;
          const read = (from: number) =>
            context.query((db) => readTransferPage(db, schema, from, last, pageSize, names));
          let page: Promise<TransferPageRow[]> = after < last ? read(after) : Promise.resolve([]);
          for (;;) {
            const rows = await page;
            if (rows.length === 0) return;
            // The next page is read while this one is handed out.
            page = rows.length < pageSize ? Promise.resolve([]) : read(Number(rows.at(-1)?.position));
            page.catch(() => {});
            for (const row of rows) yield formatLine(row);
          }
        },
      };
    },
    async import(source, options) {
      context.assertOpen();
      const {
        mode = 'restore',
        batchSize = 10_000,
        seal = true,
        onProgress,
      } = readOptions<ImportOptions>(options, 'options');
      if (mode !== 'restore' && mode !== 'append') {
        throw new InvalidInputError('mode', `must be "restore" or "append", got ${JSON.stringify(mode)}`);
      }
      assertInteger(batchSize, 'batchSize', 1);
      if (typeof seal !== 'boolean') throw new InvalidInputError('seal', 'must be a boolean');
      if (onProgress !== undefined && typeof onProgress !== 'function') {
        throw new InvalidInputError('onProgress', 'must be a function');
      }
      const chunks = typeof source === 'string' ? [source] : source;
      if (
        typeof chunks !== 'object' ||
        chunks === null ||
        !(Symbol.asyncIterator in chunks || Symbol.iterator in chunks)
      ) {
        throw new InvalidInputError('source', 'must be a string, or an iterable or async iterable of text or bytes');
      }
      if (!(await context.query((db) => canWriteLog(db, schema)))) {
        throw new ImportRefusedError(
          'not-owner',
          `this role may not write "${schema}".events directly: import is an operation of the schema's owner (connect as the role that migrates)`,
        );
      }
      const result = await context.query((client) =>
        runImport(client, schema, decompressIfGzip(chunks), {
          mode,
          batchSize,
          batchBytes: Math.min(64 * 1024 * 1024, context.options.maxAppendBytes),
          limits: {
            maxEventBytes: context.options.maxEventBytes,
            maxStreamIdLength: context.options.maxStreamIdLength,
            requirePosition: mode === 'restore',
          },
          channel: notifyChannel(schema),
          onProgress,
        }),
      );
      // A restore copies the log; the streams' lifecycle states follow from its `$lifecycle` records.
      if (mode === 'restore') {
        await context.query((client) => client.transaction((tx) => restoreStreamStates(tx, schema)));
      }
      const sealed = seal ? await integrity(store).seal({ batchSize: 5000 }) : 0;
      return { ...result, sealed };
    },
  };
}
