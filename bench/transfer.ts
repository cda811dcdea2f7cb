/**
 * The `transfer` section of `npm run bench` (BENCH_ONLY=transfer): bulk import and export.
 *
 * The file: `events` lines of the transfer format (500k at scale 1), 10k streams written
 * round-robin, about 250 bytes a line, held in memory so that disk speed is out of the figure.
 * Its JSON is written in jsonb's canonical form, so a restored copy exports the very same bytes
 * (checked: a SHA-256 over both).
 *
 * - import: `transfer(store).import(file, { mode: 'restore', seal: false })` into a fresh schema,
 *   against raw COPY of the same rows (already in COPY text, nothing parsed) into a table made
 *   `like` the events table `including all`: the same columns, generated category, keys and
 *   indexes, no event-store logic. Each side runs twice, interleaved; the better run counts.
 * - export: `transfer(store).export()` read to the end, against keyset pages of 5000 rows of the
 *   same events table, every column as text (what an export must read), nothing formatted.
 * - compressed export: the same export through `gzipLines` (what `annals export --compress`
 *   writes: gzip members of about 1 MB of lines, level 6), against the NDJSON export of the
 *   same run, with the file's size against the NDJSON's (checked: it decompresses to the file);
 *   and a restore from that gzip, against the restore from NDJSON.
 * - sealing the imported log (what `import` does by default afterwards), on its own, and
 *   `verify` on the copy (it must pass: the bench stops otherwise).
 * - for scale, raw COPY of as many rows into the batch section's plainer table (raw.copyImport),
 *   as a ratio to raw COPY into the table like events.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { createPostgresClient, type EventStore, gzipLines, integrity, openEventStore, transfer } from '@annals/core';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type Measurement, type Row, row, timeIt } from './measure.js';
import * as raw from './raw.js';

const streams = 10_000;

interface File {
  /** NDJSON chunks of about 1000 lines. */
  ndjson: string[];
  /** The same rows in COPY text format. */
  copy: string[];
  bytes: number;
}

function makeFile(events: number): File {
  const versions = new Int32Array(streams);
  const start = Date.UTC(2025, 0, 1);
  const ndjson: string[] = [];
  const copy: string[] = [];
  let lines = '';
  let rows = '';
  let bytes = 0;
  for (let i = 0; i < events; i++) {
    const position = i + 1;
    const stream = i % streams;
    const version = ++(versions[stream] as number);
    const id = randomUUID();
    const micros = (start + i) * 1000 + (i % 1000);
    const at = `${new Date(Math.floor(micros / 1000)).toISOString().slice(0, 23)}${String(micros % 1000).padStart(3, '0')}Z`;
    // Keys in jsonb's order (shorter first, then bytewise), as PostgreSQL prints them.
    const data = `{"note": "bench deposit", "amount": ${i % 997}, "currency": "EUR"}`;
    const metadata = `{"actor": "user-${i % 500}", "correlationId": "${id}"}`;
    const line = `{"position":${position},"id":"${id}","streamId":"account-${stream}","streamVersion":${version},"type":"MoneyDeposited","data":${data},"metadata":${metadata},"recordedAt":"${at}"}\n`;
    lines += line;
    bytes += line.length;
    rows += `${position}\taccount-${stream}\t${version}\t${id}\tMoneyDeposited\t${data}\t${metadata}\t${at}\n`;
    if (i % 1000 === 999) {
      ndjson.push(lines);
      copy.push(rows);
      lines = '';
      rows = '';
    }
  }
  if (lines) {
    ndjson.push(lines);
    copy.push(rows);
  }
  return { ndjson, copy, bytes };
}

const sha256 = (chunks: Iterable<string>) => {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
};

export async function transferSection(url: string, n: (count: number) => number): Promise<Row[]> {
  const events = n(500_000);
  const file = makeFile(events);
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const open = async (schema: string): Promise<EventStore> => {
    await admin.query(`drop schema if exists ${schema} cascade`);
    return openEventStore({ client: createPostgresClient({ connectionString: url }), schema });
  };

  // The raw table: the events table's columns, keys and indexes (a template schema gives them).
  const template = await open('bench_transfer_template');
  await template.close();
  const rawCopy = async (round: number): Promise<Measurement> => {
    const table = `raw_import_${round}`;
    await admin.query(`drop table if exists ${table}`);
    await admin.query(`create table ${table} (like bench_transfer_template.events including all)`);
    const client = await admin.connect();
    try {
      return await timeIt(events, async () => {
        await client.query('begin');
        await pipeline(
          Readable.from(file.copy),
          client.query(
            copyFrom(
              `copy ${table} (position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at) from stdin`,
            ),
          ),
        );
        await client.query('commit');
      });
    } finally {
      client.release();
      await admin.query(`drop table if exists ${table}`);
    }
  };
  const annalsImport = async (round: number): Promise<{ m: Measurement; store: EventStore }> => {
    const store = await open(`bench_transfer_${round}`);
    const m = await timeIt(events, async () => {
      const result = await transfer(store).import(file.ndjson, { mode: 'restore', seal: false });
      if (result.imported !== events) throw new Error(`imported ${result.imported} of ${events}`);
    });
    return { m, store };
  };

  const raws: Measurement[] = [];
  const imports: Measurement[] = [];
  let copyStore: EventStore | undefined;
  for (const round of [1, 2]) {
    raws.push(await rawCopy(round));
    const { m, store } = await annalsImport(round);
    imports.push(m);
    if (copyStore) await copyStore.close();
    copyStore = store;
  }
  const best = (ms: Measurement[]) => ms.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a));
  const store = copyStore as EventStore;
  await admin.query('vacuum analyze bench_transfer_2.events');

  // Export, and the byte-for-byte check: the copy exports exactly the file.
  const exported = createHash('sha256');
  let exportedBytes = 0;
  const exportRun = await timeIt(events, async () => {
    await pipeline(
      Readable.from(transfer(store).export()),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          exported.update(chunk);
          exportedBytes += chunk.length;
          done();
        },
      }),
    );
  });
  const same = exported.digest('hex') === sha256(file.ndjson);
  if (!same) throw new Error(`the export of the restored copy differs from the file (${exportedBytes} bytes)`);

  const members: Buffer[] = [];
  const gzipRun = await timeIt(events, async () => {
    await pipeline(
      Readable.from(gzipLines(transfer(store).export())),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          members.push(chunk);
          done();
        },
      }),
    );
  });
  const gzipBytes = members.reduce((sum, member) => sum + member.length, 0);
  if (sha256([gunzipSync(Buffer.concat(members)).toString()]) !== sha256(file.ndjson)) {
    throw new Error('the gzip export does not decompress to the file');
  }
  // Twice, as the NDJSON import, the better run counts.
  const gzipImports: Measurement[] = [];
  for (const round of [1, 2]) {
    const fromGzip = await open(`bench_transfer_gzip_${round}`);
    gzipImports.push(
      await timeIt(events, async () => {
        const result = await transfer(fromGzip).import(members, { mode: 'restore', seal: false });
        if (result.imported !== events) throw new Error(`imported ${result.imported} of ${events} from gzip`);
      }),
    );
    await fromGzip.close();
    await admin.query(`drop schema if exists bench_transfer_gzip_${round} cascade`);
  }

  const rawRead = await timeIt(events, async () => {
    const client = await admin.connect();
    try {
      let after = 0;
      let count = 0;
      for (;;) {
        const { rows } = await client.query({
          name: 'raw_export_page',
          text: `select position, event_id::text, stream_id, stream_version, event_type, data::text, metadata::text,
                        recorded_at::text from bench_transfer_2.events where position > $1 order by position limit 5000`,
          values: [after],
        });
        count += rows.length;
        if (rows.length < 5000) break;
        after = Number(rows.at(-1).position);
      }
      if (count !== events) throw new Error(`raw read ${count} of ${events}`);
    } finally {
      client.release();
    }
  });

  const sealing = await timeIt(events, async () => {
    await integrity(store).seal({ batchSize: 5000 });
  });
  // And the copy verifies: every seal recomputed from the events as imported.
  const verifying = await timeIt(events, async () => {
    const report = await integrity(store).verify();
    if (!report.ok || report.checked !== events) throw new Error(`verify of the copy: ${JSON.stringify(report)}`);
  });
  await store.close();
  // For scale: the batch section's COPY ceiling, into a plainer table (three keys, no
  // generated column, identity positions), the same number of rows.
  const plain = await raw.copyImport(url, { events });
  await admin.query('drop table if exists raw_copy');
  await admin.query('drop schema if exists bench_transfer_1 cascade');
  await admin.query('drop schema if exists bench_transfer_2 cascade');
  await admin.query('drop schema if exists bench_transfer_template cascade');
  await admin.end();

  const mb = (file.bytes / 1024 / 1024).toFixed(0);
  const rawImport = { name: 'COPY into a table like events', ...best(raws) };
  return [
    row(`import (restore), ${events} events, ${mb} MB of NDJSON`, rawImport, best(imports), '>= 120k/s, >= 0.8x'),
    row(
      'export to NDJSON (byte-identical to the file)',
      { name: 'keyset pages, columns as text', ...rawRead },
      exportRun,
      '',
    ),
    row(
      `  export to gzip (${(gzipBytes / 1024 / 1024).toFixed(1)} MB, ${((100 * gzipBytes) / exportedBytes).toFixed(1)}% of the NDJSON)`,
      { name: 'export to NDJSON', ...exportRun },
      gzipRun,
      '',
    ),
    row('  import (restore) from that gzip', { name: 'import from NDJSON', ...best(imports) }, best(gzipImports), ''),
    row('  sealing the imported log afterwards', { name: 'keyset pages, columns as text', ...rawRead }, sealing, ''),
    row('  verify of the copy (passes)', { name: 'keyset pages, columns as text', ...rawRead }, verifying, ''),
    row('  (raw COPY into the plainer table of the batch section)', rawImport, { ...plain }, ''),
  ];
}
