/**
 * Bulk export and import (`transfer(store)`): a round trip reproduces the log byte for byte and
 * its seals; append mode places events after the head and checks stream versions; a bad line
 * is named and its batch stores nothing; re-runs are idempotent; a restore refuses a log it
 * would mix with; an append-mode import beside concurrent appends leaves the log gap-free.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  ImportLineError,
  ImportRefusedError,
  InvalidInputError,
  integrity,
  openEventStore,
  type SqlQueryable,
  toArray,
  transfer,
} from '../src/index.js';
import {
  backends,
  capabilities,
  databaseUrl,
  openTestStore,
  postgresBackend,
  rawConnection,
  useTestStore,
} from './support/backends.js';

const exportText = async (
  store: Parameters<typeof transfer>[0],
  options?: Parameters<ReturnType<typeof transfer>['export']>[0],
) => (await toArray(transfer(store).export(options))).join('');

/** A hash over every column of a log as PostgreSQL prints it, independent of the export code. */
async function logHash(db: SqlQueryable, schema: string): Promise<string> {
  const [row] = await db.query<{ hash: string | null; count: string | number | bigint }>(
    `select md5(string_agg(concat_ws('|', position, stream_id, stream_version, event_id, event_type,
                data::text, metadata::text, (extract(epoch from recorded_at) * 1000000)::int8), E'\\n' order by position)) as hash,
            count(*) as count
       from "${schema}".events`,
  );
  return `${Number(row?.count)}:${row?.hash}`;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Lines of the transfer format for `count` events over `streams` streams, positions from `from`. */
function lines(count: number, { streams = 3, from = 1, prefix = 'acct' } = {}): string[] {
  const versions = new Map<number, number>();
  return Array.from({ length: count }, (_, i) => {
    const s = i % streams;
    const version = (versions.get(s) ?? 0) + 1;
    versions.set(s, version);
    const id = `00000000-0000-4000-8000-${(from + i).toString(16).padStart(12, '0')}`;
    return `{"position":${from + i},"id":"${id}","streamId":"${prefix}-${s}","streamVersion":${version},"type":"Deposited","data":{"amount": ${i}, "note": "tab\\there"},"metadata":{"actor": "loader"},"recordedAt":"2025-01-0${1 + (i % 9)}T10:00:00.${String(i % 1_000_000).padStart(6, '0')}Z"}`;
  }).sort((a, b) => Number(/"position":(\d+)/.exec(a)?.[1]) - Number(/"position":(\d+)/.exec(b)?.[1]));
}

describe.each(backends)('transfer on $name', (backend) => {
  const t = useTestStore(backend);

  async function seed() {
    // Numbers JavaScript cannot hold, written by an import so that they reach jsonb as spelled.
    await transfer(t.store).import(
      `{"id":"0b9e3c4e-0000-4000-8000-000000000001","streamId":"account-2","streamVersion":1,"type":"Opened","data":{"big": 12345678901234567890, "scale": 1.10, "tiny": 1e-7},"metadata":{},"recordedAt":"2024-02-29T23:59:59.123456+02:00"}\n`,
      { mode: 'append', seal: false },
    );
    await t.store.append('account-1', [
      { type: 'Opened', data: { owner: 'Zoë', tags: ['a', 'b'], nested: { deep: [1, { x: null }] } } },
      {
        type: 'Deposited',
        data: { amount: 100, text: 'line\nbreak\ttab\\slash "quote" \u2028' },
        metadata: { actor: 'teller' },
      },
    ]);
    await t.store.append('order-7', [{ type: 'Placed', data: { items: [] } }]);
    await t.store.append('account-1', [{ type: 'Withdrawn', data: { amount: 30 } }]);
  }

  it('exports the log as stored, byte for byte, and a restore reproduces it with its seals', async () => {
    await seed();
    await integrity(t.store).seal();
    const source = await integrity(t.store).verify();
    const text = await exportText(t.store);
    const exported = text.trimEnd().split('\n');
    expect(exported).toHaveLength(5);
    expect(exported[0]).toContain('"data":{"big": 12345678901234567890, "tiny": 0.0000001, "scale": 1.10}');
    expect(exported[0]).toContain('"recordedAt":"2024-02-29T21:59:59.123456Z"');
    expect(JSON.parse(exported[1] as string)).toMatchObject({ position: 2, streamId: 'account-1', streamVersion: 1 });

    const copy = await openTestStore(backend);
    try {
      // Cut into small chunks, in bytes, as a file stream delivers them.
      const bytes = new TextEncoder().encode(text);
      const chunks = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.slice(i * 7, i * 7 + 7));
      const result = await transfer(copy.store).import(chunks, { mode: 'restore', batchSize: 2 });
      expect(result).toMatchObject({ mode: 'restore', imported: 5, skipped: 0, position: 5, batches: 3, sealed: 5 });
      expect(sha256(await exportText(copy.store))).toBe(sha256(text));
      expect(await logHash(copy.client, copy.schema)).toBe(await logHash(t.client, t.schema));
      const verified = await integrity(copy.store).verify({
        anchor: { position: source.sealedUpTo, hash: source.headHash as string },
      });
      expect(verified).toMatchObject({ ok: true, checked: 5, headHash: source.headHash });
      // The copy reads like the original.
      const [original, restored] = [await toArray(t.store.readAll()), await toArray(copy.store.readAll())];
      expect(restored).toEqual(original);
    } finally {
      await copy.cleanup();
    }
  });

  it('exports after a position, until a position or a time, and by category', async () => {
    await seed();
    const positions = async (options: Parameters<ReturnType<typeof transfer>['export']>[0]) =>
      (await exportText(t.store, options))
        .trimEnd()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).position);
    expect(await positions({ after: 2 })).toEqual([3, 4, 5]);
    expect(await positions({ after: 1, until: 3 })).toEqual([2, 3]);
    expect(await positions({ categories: ['order'] })).toEqual([4]);
    expect(await positions({ categories: ['account', 'order'], after: 1, pageSize: 1 })).toEqual([2, 3, 4, 5]);
    expect(await positions({ categories: ['account'], pageSize: 2 })).toEqual([1, 2, 3, 5]);
    // The first event was recorded at 21:59:59.123456 UTC, the others now; a time covers its
    // whole millisecond (positionAt).
    expect(await positions({ until: new Date('2024-02-29T21:59:59.122Z') })).toEqual([]);
    expect(await positions({ until: new Date('2024-02-29T21:59:59.123Z') })).toEqual([1]);
    expect(await positions({ after: 5 })).toEqual([]);
    expect(() => transfer(t.store).export({ after: -1 })).toThrow(InvalidInputError);
    expect(() => transfer(t.store).export({ categories: [] })).toThrow(InvalidInputError);
  });

  it('appends after the head, keeping ids, times and metadata, and checks stream versions', async () => {
    await seed();
    const file = lines(12).join('\n');
    const result = await transfer(t.store).import(file, { mode: 'append', batchSize: 5 });
    expect(result).toMatchObject({ imported: 12, skipped: 0, position: 17, batches: 3 });
    const imported = await toArray(t.store.readAll({ after: 5 }));
    expect(imported.map((e) => e.position)).toEqual(Array.from({ length: 12 }, (_, i) => 6 + i));
    expect(imported[0]).toMatchObject({
      id: '00000000-0000-4000-8000-000000000001',
      streamId: 'acct-0',
      streamVersion: 1,
      metadata: { actor: 'loader' },
      recordedAt: new Date('2025-01-01T10:00:00.000Z'),
    });
    expect((await integrity(t.store).verify()).ok).toBe(true);

    // acct-0 is at version 4 now: a file that starts it again at version 1 is refused, by line.
    const other = lines(2, { from: 100 }).join('\n');
    const error = await transfer(t.store)
      .import(other, { mode: 'append' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportLineError);
    expect(error).toMatchObject({ line: 1, key: 'streamVersion', code: 'INVALID_INPUT' });
    expect((error as Error).message).toMatch(
      /line 1.streamVersion: stream "acct-0": version 1 is not the next one \(the stream is at version 4\)/,
    );
    expect(await t.store.headPosition()).toBe(17);
  });

  it('names a bad line, stores nothing of its batch, and a re-run after the fix finishes the import', async () => {
    const good = lines(30);
    const cases: [number, string, RegExp][] = [
      [15, '{"position":15,', /line 15: not JSON/],
      [17, good[16]?.replace('"streamId":"acct-1",', '') as string, /line 17\.streamId: is missing/],
      [
        18,
        good[17]?.replace(/"recordedAt":"[^"]+"/, '"recordedAt":"2025-02-30T10:00:00Z"') as string,
        /line 18: PostgreSQL refused it/,
      ],
      [
        19,
        good[18]?.replace('"streamVersion":7', '"streamVersion":9') as string,
        /line 19\.streamVersion: stream "acct-0": version 9 is not the next one/,
      ],
      [
        20,
        good[19]?.replace('"position":20', '"position":21') as string,
        /line 20\.position: position 21 does not follow 19/,
      ],
    ];
    for (const [line, text, message] of cases) {
      const head = await t.store.headPosition();
      const file = good.map((l, i) => (i === line - 1 ? text : l)).join('\n');
      const error = await transfer(t.store)
        .import(file, { mode: 'restore', batchSize: 10 })
        .catch((e: unknown) => e);
      expect(error, `line ${line}`).toBeInstanceOf(ImportLineError);
      expect((error as ImportLineError).line).toBe(line);
      expect((error as Error).message).toMatch(message);
      // Batches before the bad line's are stored (1-10), nothing of its own (11-20).
      expect(Math.max(head, 10)).toBe(await t.store.headPosition());
    }
    const resumed = await transfer(t.store).import(good.join('\n'), { mode: 'restore', batchSize: 10 });
    expect(resumed).toMatchObject({ imported: 20, skipped: 10, position: 30 });
    expect(await logHash(t.client, t.schema)).toMatch(/^30:/);
    expect((await integrity(t.store).verify()).ok).toBe(true);
  });

  it('is idempotent: running an import again stores nothing twice', async () => {
    const file = `${lines(25).join('\r\n')}\r\n`;
    const first = await transfer(t.store).import(file, { mode: 'append', batchSize: 10 });
    expect(first).toMatchObject({ imported: 25, skipped: 0, position: 25 });
    const hash = await logHash(t.client, t.schema);
    const again = await transfer(t.store).import(file, { mode: 'append', batchSize: 7 });
    expect(again).toMatchObject({ imported: 0, skipped: 25, position: 25 });
    const restoredAgain = await transfer(t.store).import(file, { mode: 'restore' });
    expect(restoredAgain).toMatchObject({ imported: 0, skipped: 25, position: 25 });
    expect(await logHash(t.client, t.schema)).toBe(hash);
    // The same id with other content is not a duplicate.
    const changed = lines(25)[3]?.replace('"amount": 3', '"amount": 4') as string;
    const error = await transfer(t.store)
      .import(changed, { mode: 'append' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportLineError);
    expect((error as Error).message).toMatch(
      /event id 00000000-0000-4000-8000-000000000004 is already stored at position 4/,
    );
  });

  it('refuses a restore into a log it would mix with, and one that leaves a gap', async () => {
    await t.store.append('account-9', [{ type: 'Opened', data: {} }]);
    const before = await logHash(t.client, t.schema);
    const error = await transfer(t.store)
      .import(lines(5).join('\n'), { mode: 'restore' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImportRefusedError);
    expect(error).toMatchObject({ reason: 'not-empty', line: 1 });
    // A file that continues the log exactly is a resumed restore; one past it leaves a gap.
    const gap = await transfer(t.store)
      .import(lines(3, { from: 3 }).join('\n'), { mode: 'restore' })
      .catch((e: unknown) => e);
    expect(gap).toMatchObject({ reason: 'gap', line: 1 });
    expect(await logHash(t.client, t.schema)).toBe(before);
    const continued = await transfer(t.store).import(lines(3, { from: 2, prefix: 'more' }).join('\n'));
    expect(continued).toMatchObject({ imported: 3, position: 4 });
    await expect(transfer(t.store).import(42 as never)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(transfer(t.store).import([1, 2] as never)).rejects.toBeInstanceOf(InvalidInputError);
    // A line without end, longer than any event may be, stops at once with its line number.
    const endless = (function* () {
      yield `${lines(1, { from: 5 })[0]}\n`;
      for (;;) yield 'x'.repeat(64 * 1024);
    })();
    const tooLong = await transfer(t.store)
      .import(endless, { mode: 'append' })
      .catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(ImportLineError);
    expect(tooLong).toMatchObject({ line: 2 });
    await expect(transfer(t.store).import('', { mode: 'merge' as never })).rejects.toBeInstanceOf(InvalidInputError);
  });

  it('moves personal data as stored: encrypted in the file, readable in the copy once its keys come along', async () => {
    const policy = { CustomerRegistered: { subject: 'customerId', fields: ['name'] } };
    const source = await openTestStore(backend, { personalData: policy } as never);
    const copy = await openTestStore(backend, { personalData: policy } as never);
    try {
      await source.store.append('customer-1', [
        { type: 'CustomerRegistered', data: { customerId: 'c-1', name: 'Ada Lovelace', plan: 'gold' } },
      ]);
      const text = await exportText(source.store);
      expect(text).not.toContain('Ada Lovelace');
      expect(text).toContain('"plan": "gold"');
      await transfer(copy.store).import(text);
      const read = async () => (await toArray(copy.store.readAll()))[0]?.data;
      // The key stays in the source's subject_keys: the copy reads the field as forgotten.
      expect(await read()).toMatchObject({ name: null, plan: 'gold' });
      await copy.client.exec(`insert into "${copy.schema}".subject_keys select * from "${source.schema}".subject_keys`);
      expect(await read()).toMatchObject({ name: 'Ada Lovelace', plan: 'gold' });
    } finally {
      await source.cleanup();
      await copy.cleanup();
    }
  });

  it.runIf(capabilities(backend).concurrentConnections)(
    'an append-mode import beside concurrent appends leaves the log gap-free and in order',
    async () => {
      const writer = await openEventStore({
        client: (await import('../src/index.js')).createPostgresClient({ connectionString: databaseUrl as string }),
        schema: t.schema,
        migrate: false,
      });
      try {
        let stop = false;
        let appended = 0;
        const appending = (async () => {
          for (let i = 0; !stop; i++) {
            await writer.append(`live-${i % 7}`, [{ type: 'Ping', data: { i } }]);
            appended++;
          }
        })();
        const count = 6000;
        const result = await transfer(t.store).import(lines(count, { streams: 50 }).join('\n'), {
          mode: 'append',
          batchSize: 500,
        });
        stop = true;
        await appending;
        expect(result.imported).toBe(count);
        expect(appended).toBeGreaterThan(0);
        const raw = await rawConnection();
        try {
          const { rows } = await raw.query(
            `select count(*)::int as n, min(position)::int as lo, max(position)::int as hi,
                    count(*) filter (where stream_id like 'acct-%')::int as imported,
                    bool_and(ordered) filter (where stream_id like 'acct-%') as ordered
               from (select position, stream_id,
                            -- The file's ids increase line by line: so must their positions.
                            coalesce(lag(event_id::text) over (partition by stream_id like 'acct-%' order by position)
                                     < event_id::text, true) as ordered
                       from "${t.schema}".events) e`,
          );
          expect(rows[0]).toEqual({ n: count + appended, lo: 1, hi: count + appended, imported: count, ordered: true });
          // The appends really ran beside the import: some landed between two of its batches.
          const { rows: between } = await raw.query(
            `select count(*)::int as n from "${t.schema}".events
              where stream_id like 'live-%'
                and position > (select min(position) from "${t.schema}".events where stream_id like 'acct-%')
                and position < (select max(position) from "${t.schema}".events where stream_id like 'acct-%')`,
          );
          expect(between[0].n).toBeGreaterThan(0);
          const { rows: versions } = await raw.query(
            `select stream_id from "${t.schema}".events group by stream_id
              having max(stream_version) <> count(*) or bool_or(stream_version < 1)`,
          );
          expect(versions).toEqual([]);
        } finally {
          await raw.end();
        }
        expect((await integrity(t.store).verify()).ok).toBe(true);
      } finally {
        await writer.close();
      }
    },
  );
});

describe.runIf(databaseUrl)('transfer on postgres, as the application role', () => {
  it('refuses an import: it writes the events table, which only the owner may', async () => {
    const { store, schema, client, cleanup } = await openTestStore(postgresBackend);
    const role = `app_${schema}`;
    const raw = await rawConnection();
    try {
      await raw.query(`create role ${role} login`);
      await raw.query(
        `grant usage on schema "${schema}" to ${role}; grant select on all tables in schema "${schema}" to ${role}`,
      );
      const url = new URL(databaseUrl as string);
      url.username = role;
      const { createPostgresClient } = await import('../src/index.js');
      const asApp = await openEventStore({
        client: createPostgresClient({ connectionString: url.toString() }),
        schema,
        migrate: false,
      });
      try {
        const error = await transfer(asApp)
          .import(lines(1).join('\n'))
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ImportRefusedError);
        expect(error).toMatchObject({ reason: 'not-owner' });
        // Export only reads.
        expect(await toArray(transfer(asApp).export())).toEqual([]);
      } finally {
        await asApp.close();
      }
      expect(await store.headPosition()).toBe(0);
      void client;
    } finally {
      await cleanup();
      await raw.query(`drop owned by ${role}; drop role ${role}`).catch(() => {});
      await raw.end();
    }
  });
});
