/**
 * The compressed transfer format: `gzipLines` writes independent gzip members that any gzip
 * reader takes as one text; an import detects gzip by its magic number; `prepareExportResume`
 * cuts a file stopped anywhere (mid-member included) to its complete members, and continuing
 * the export makes it decompress to exactly a full export. NDJSON files resume likewise.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipLines, ImportLineError, InvalidInputError, prepareExportResume, toArray, transfer } from '../src/index.js';
import { backends, openTestStore, useTestStore } from './support/backends.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'annals-gzip-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const gzipped = async (lines: AsyncIterable<string> | Iterable<string>, memberSize?: number) =>
  Buffer.concat(await toArray(gzipLines(lines, { memberSize })));

/** Offsets where each gzip member of `bytes` starts (members written by gzipLines). */
function memberStarts(bytes: Buffer): number[] {
  const starts: number[] = [];
  for (let at = bytes.indexOf('1f8b0800', 0, 'hex'); at >= 0; at = bytes.indexOf('1f8b0800', at + 1, 'hex')) {
    starts.push(at);
  }
  return starts;
}

describe('gzipLines', () => {
  it('writes one member per memberSize of whole lines, read by any gzip reader as the text', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => `{"position":${i + 1},"n":"${'x'.repeat(i % 50)}"}\n`);
    const bytes = await gzipped(lines, 2000);
    expect(gunzipSync(bytes).toString()).toBe(lines.join(''));
    // Each member decompresses alone to whole lines.
    const starts = memberStarts(bytes);
    expect(starts.length).toBeGreaterThan(5);
    const first = gunzipSync(bytes.subarray(0, starts[1])).toString();
    expect(first.endsWith('\n')).toBe(true);
    expect(first.length).toBeGreaterThanOrEqual(2000);
    expect(await gzipped([])).toHaveLength(0);
    await expect(gzipped(lines, 0)).rejects.toThrow(InvalidInputError);
  });
});

describe('prepareExportResume', () => {
  const lines = Array.from(
    { length: 300 },
    (_, i) => `{"position":${i + 1},"streamId":"s-${i % 7}","data":{"text":"${'abc'.repeat(i % 40)}"}}\n`,
  );
  const full = lines.join('');

  it('cuts a gzip file at any offset to its complete members and names the last position', async () => {
    const bytes = await gzipped(lines, 1500);
    const starts = memberStarts(bytes);
    const offsets = new Set<number>([0, 1, 2, 9, 10, 11, bytes.length - 1, bytes.length]);
    for (const start of starts) for (const d of [-9, -8, -1, 0, 1, 10, 40]) offsets.add(start + d);
    for (let i = 0; i < 60; i++) offsets.add(Math.floor((i * 7919) % bytes.length));
    const file = join(dir, 'cut.ndjson.gz');
    for (const offset of [...offsets].filter((o) => o >= 0 && o <= bytes.length)) {
      await writeFile(file, bytes.subarray(0, offset));
      const point = await prepareExportResume(file);
      const kept = await readFile(file);
      // Cut exactly at a member's end, with the members before it intact.
      const complete = [...starts, bytes.length].filter((s) => s <= offset).at(-1) as number;
      expect(kept.length, `offset ${offset}`).toBe(complete);
      const text = kept.length === 0 ? '' : gunzipSync(kept).toString();
      expect(full.startsWith(text)).toBe(true);
      expect(point).toEqual({ position: text.split('\n').length - 1, compressed: offset >= 2, size: complete });
      // Continuing after that position gives the whole text.
      await appendFile(file, await gzipped(lines.slice(point.position), 1500));
      expect(gunzipSync(await readFile(file)).toString(), `offset ${offset}`).toBe(full);
    }
  });

  it('cuts a damaged member and what follows it', async () => {
    const bytes = Buffer.from(await gzipped(lines, 1500));
    const starts = memberStarts(bytes);
    const damaged = Buffer.from(bytes);
    const at = (starts[3] as number) + 30;
    damaged[at] = (damaged[at] as number) ^ 0xff;
    const file = join(dir, 'damaged.gz');
    await writeFile(file, damaged);
    const point = await prepareExportResume(file);
    expect(point.size).toBe(starts[3]);
    expect(
      gunzipSync(await readFile(file))
        .toString()
        .split('\n'),
    ).toHaveLength(point.position + 1);
  });

  it('cuts an NDJSON file after its last complete line; a missing file starts from 0', async () => {
    const file = join(dir, 'cut.ndjson');
    for (const offset of [0, 1, 50, full.indexOf('\n') + 1, full.length - 1, full.length]) {
      await writeFile(file, full.slice(0, offset));
      const point = await prepareExportResume(file);
      const kept = (await readFile(file)).toString();
      expect(kept).toBe(full.slice(0, full.lastIndexOf('\n', offset - 1) + 1));
      expect(point).toMatchObject({ position: kept.split('\n').length - 1, compressed: false });
    }
    expect(await prepareExportResume(join(dir, 'none'))).toEqual({ position: 0, compressed: false, size: 0 });
    await writeFile(file, 'not an event\n');
    await expect(prepareExportResume(file)).rejects.toThrow(InvalidInputError);
  });
});

describe.each(backends)('gzip transfer on $name', (backend) => {
  const t = useTestStore(backend);

  it('a restore from gzip, in chunks cut anywhere, reproduces the log; a bad line names its decompressed line', async () => {
    for (let i = 0; i < 40; i++) {
      await t.store.append(`acct-${i % 4}`, [{ type: 'Deposited', data: { i, note: 'é\n"x"' } }]);
    }
    const text = (await toArray(transfer(t.store).export())).join('');
    const bytes = await gzipped(transfer(t.store).export(), 500);
    expect(memberStarts(bytes).length).toBeGreaterThan(3);
    const chunks = Array.from({ length: Math.ceil(bytes.length / 13) }, (_, i) => bytes.subarray(i * 13, i * 13 + 13));
    const copy = await openTestStore(backend);
    try {
      const result = await transfer(copy.store).import(chunks, { batchSize: 16 });
      expect(result).toMatchObject({ imported: 40, position: 40 });
      expect((await toArray(transfer(copy.store).export())).join('')).toBe(text);
    } finally {
      await copy.cleanup();
    }

    const lines = text.split('\n');
    lines[24] = (lines[24] as string).replace('"Deposited"', '""');
    const bad = await openTestStore(backend);
    try {
      const error = await transfer(bad.store)
        .import([gzipSync(lines.join('\n'))], { batchSize: 10 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ImportLineError);
      expect(error).toMatchObject({ line: 25, field: 'line 25.type' });
      // A cut-off gzip stream is an error, not a shorter log.
      const cut = gzipSync(text).subarray(0, 200);
      await expect(transfer(bad.store).import([cut])).rejects.toThrow(/gzip data is damaged or cut off/);
    } finally {
      await bad.cleanup();
    }
  });
});
