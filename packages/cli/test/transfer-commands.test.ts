/**
 * `annals export` and `annals import` as an operator runs them: the real bin (its TypeScript
 * entry point, through tsx) in a child process, on this test file's PostgreSQL database, with
 * its stdout, stderr and exit status.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createPostgresClient, openEventStore } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema } from '../../core/test/support/backends.js';
import { annals, binArgs, repo } from './support/bin.js';

/** Runs `annals <args>` with bytes for stdout (and a file as stdin, when given). */
function annalsBytes(args: string[], stdin?: string): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...binArgs, ...args], {
      cwd: repo,
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: [stdin === undefined ? 'ignore' : openSync(stdin, 'r'), 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
  });
}

describe.runIf(databaseUrl)('annals export and import (PostgreSQL)', () => {
  const source = freshSchema('cli_src');
  const copy = freshSchema('cli_copy');
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'annals-transfer-'));
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string }),
      schema: source,
    });
    for (let i = 0; i < 30; i++) {
      await store.append(i % 3 === 0 ? `order-${i}` : `account-${i % 4}`, [
        { type: 'Happened', data: { i, text: 'tab\there, "quoted", \\ slash' }, metadata: { actor: `user-${i}` } },
      ]);
    }
    await store.close();
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('exports to a file and to stdout, by category, and resumes a cut-off file', async () => {
    const file = join(dir, 'log.ndjson');
    const out = await annals(['export', '--schema', source, '--out', file, '--json']);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ events: 30, after: 0, lastPosition: 30, file, compressed: false });
    const text = await readFile(file, 'utf8');
    expect(text.split('\n')).toHaveLength(31);

    const orders = await annals(['export', '--schema', source, '--category', 'order', '--after', '3']);
    expect(orders.code).toBe(0);
    const lines = orders.stdout.trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).streamId)).toEqual([
      'order-3',
      'order-6',
      'order-9',
      'order-12',
      'order-15',
      'order-18',
      'order-21',
      'order-24',
      'order-27',
    ]);
    expect(orders.stderr).toBe('');

    // A file cut in the middle of line 12: resume drops the half line and continues after 11.
    const cut = join(dir, 'cut.ndjson');
    const cutAt = text.split('\n').slice(0, 11).join('\n').length + 1 + 40;
    await writeFile(cut, text.slice(0, cutAt));
    const resumed = await annals(['export', '--schema', source, '--resume', cut, '--json']);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ events: 19, after: 11, lastPosition: 30 });
    expect(await readFile(cut, 'utf8')).toBe(text);
  });

  it('exports gzip (by --compress or a .gz name), resumes it after its last complete member, imports it', async () => {
    const plain = (await annals(['export', '--schema', source])).stdout;
    const file = join(dir, 'log.ndjson.gz');
    const out = await annals(['export', '--schema', source, '--out', file, '--json']);
    expect(JSON.parse(out.stdout)).toEqual({ events: 30, after: 0, lastPosition: 30, file, compressed: true });
    expect(gunzipSync(await readFile(file)).toString()).toBe(plain);
    const piped = await annalsBytes(['export', '--schema', source, '--compress']);
    expect(piped.code).toBe(0);
    expect(gunzipSync(piped.stdout).toString()).toBe(plain);

    // A complete member (events 1-11), then half of the next one: resume continues after 11.
    const cut = join(dir, 'cut.gz');
    expect((await annals(['export', '--schema', source, '--until', '11', '--out', cut])).code).toBe(0);
    const next = gzipSync(plain.split('\n').slice(11, 20).join('\n'));
    await appendFile(cut, next.subarray(0, next.length >> 1));
    const resumed = await annals(['export', '--schema', source, '--resume', cut, '--json']);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ events: 19, after: 11, lastPosition: 30, compressed: true });
    expect(gunzipSync(await readFile(cut)).toString()).toBe(plain);
    // An NDJSON file is not continued as gzip.
    const text = join(dir, 'plain.ndjson');
    await writeFile(text, plain.split('\n').slice(0, 3).join('\n'));
    const mixed = await annals(['export', '--schema', source, '--resume', text, '--compress']);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toMatch(/holds NDJSON, not gzip/);

    // Import detects gzip, from a file and from stdin.
    const fromFile = freshSchema('cli_gz');
    const imported = await annals(['import', cut, '--schema', fromFile, '--json']);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ ok: true, imported: 30, position: 30 });
    expect((await annals(['export', '--schema', fromFile])).stdout).toBe(plain);
    const fromStdin = freshSchema('cli_gz_stdin');
    const stdin = await annalsBytes(['import', '-', '--schema', fromStdin, '--json'], file);
    expect(stdin.code).toBe(0);
    expect(JSON.parse(stdin.stdout.toString())).toMatchObject({ ok: true, imported: 30 });
    // A bad line names its line in the decompressed text.
    const lines = plain.split('\n');
    lines[4] = (lines[4] as string).replace('"id":"', '"id":"x');
    const broken = join(dir, 'broken.gz');
    await writeFile(broken, gzipSync(lines.join('\n')));
    const bad = await annals(['import', broken, '--schema', freshSchema('cli_gz_bad'), '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, line: 5 });
  });

  it('imports a file into an empty schema byte for byte; a bad line exits 2 naming it', async () => {
    const file = join(dir, 'all.ndjson');
    expect((await annals(['export', '--schema', source, '--out', file])).code).toBe(0);
    const text = await readFile(file, 'utf8');

    const broken = join(dir, 'broken.ndjson');
    const lines = text.split('\n');
    lines[2] = (lines[2] as string).replace('"streamVersion":', '"streamVersion":"one","x":');
    await writeFile(broken, lines.join('\n'));
    const bad = await annals(['import', broken, '--schema', copy, '--batch-size', '2', '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, code: 'INVALID_INPUT', line: 3 });
    expect(bad.stderr).toMatch(/line 3/);

    const good = await annals(['import', file, '--schema', copy, '--batch-size', '2', '--json']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout)).toMatchObject({
      ok: true,
      mode: 'restore',
      imported: 28,
      skipped: 2,
      position: 30,
      sealed: 30,
    });
    const again = await annals(['export', '--schema', copy]);
    expect(again.stdout).toBe(text);

    const verify = await annals(['verify', '--schema', copy, '--json']);
    expect(verify.code).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true, checked: 30 });

    const appendAgain = await annals(['import', file, '--schema', source, '--mode', 'append']);
    expect(appendAgain.code).toBe(0);
    expect(appendAgain.stdout).toMatch(/imported 0 events \(30 already there\)/);
    const wrongMode = await annals(['import', file, '--schema', copy, '--mode', 'merge']);
    expect(wrongMode.code).toBe(1);
  });

  it('imports the events of an Emmett store, written by Emmett itself', async () => {
    // Loaded here, last: Emmett sets node-postgres type parsers for the whole process.
    const { getPostgreSQLEventStore } = await import('@event-driven-io/emmett-postgresql');
    const emmett = getPostgreSQLEventStore(databaseUrl as string);
    try {
      await emmett.appendToStream('shop-1', [
        { type: 'ShopOpened', data: { name: 'Corner' }, metadata: { actor: 'owner' } },
        { type: 'ItemListed', data: { sku: 'a-1', price: 2.5 } },
      ]);
      await emmett.appendToStream('shop-2', [{ type: 'ShopOpened', data: { name: 'Mall' } }]);
    } finally {
      await emmett.close();
    }
    const target = freshSchema('cli_emmett');
    const imported = await annals(['import', '--emmett', databaseUrl as string, '--schema', target, '--json']);
    expect(imported.code).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ ok: true, mode: 'append', imported: 3, position: 3 });
    const lines = (await annals(['export', '--schema', target])).stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((e) => [e.streamId, e.streamVersion, e.type])).toEqual([
      ['shop-1', 1, 'ShopOpened'],
      ['shop-1', 2, 'ItemListed'],
      ['shop-2', 1, 'ShopOpened'],
    ]);
    expect(lines[0]).toMatchObject({ data: { name: 'Corner' }, metadata: { actor: 'owner' } });
    const again = await annals(['import', '--emmett', databaseUrl as string, '--schema', target, '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ imported: 0, skipped: 3, position: 3 });
    const both = await annals(['import', 'x.ndjson', '--emmett', databaseUrl as string, '--schema', target]);
    expect(both.code).toBe(1);
  });
});
