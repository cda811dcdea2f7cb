/**
 * `annals tail`, `annals stats` and `annals rebuild` as an operator runs them: the real bin (its
 * TypeScript entry point, through tsx) in a child process, on this test file's PostgreSQL
 * database — `tail` follows appends another process makes, so it needs a server database.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPostgresClient, type EventStore, openEventStore } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema, waitUntil } from '../../core/test/support/backends.js';
import { annals, binArgs, repo } from './support/bin.js';

describe.runIf(databaseUrl)('annals tail, stats and rebuild (PostgreSQL)', () => {
  const schema = freshSchema('cli_ops');
  let store: EventStore;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'annals-ops-'));
    store = await openEventStore({ client: createPostgresClient({ connectionString: databaseUrl as string }), schema });
    for (let i = 0; i < 5; i++) await store.append(`order-${i}`, [{ type: 'Placed', data: { i } }]);
  });
  afterAll(async () => {
    await store?.close();
    const admin = createPostgresClient({ connectionString: databaseUrl as string });
    await admin.exec(`drop schema if exists "${schema}" cascade`);
    await admin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('tail follows what is appended from now on, filtered, once each in order, and stops on SIGINT', async () => {
    const child = spawn(process.execPath, [...binArgs, 'tail', '--schema', schema, '--category', 'order', '--json'], {
      cwd: repo,
      env: { ...process.env, DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // It starts at the head: wait until it follows (its LISTEN is up once its first read ran).
      await waitUntil(() => listening(schema), { timeoutMs: 30_000, intervalMs: 100, message: 'tail to listen' });
      const appended: number[] = [];
      for (let i = 0; i < 20; i++) {
        const [result] = await store.appendMulti([
          { streamId: `order-${i % 3}`, events: [{ type: 'Placed', data: { i } }] },
          { streamId: `invoice-${i}`, events: [{ type: 'Issued', data: { i } }] },
        ]);
        appended.push(...(result?.positions ?? []));
      }
      await waitUntil(() => stdout.trim().split('\n').filter(Boolean).length >= appended.length, {
        timeoutMs: 30_000,
        message: 'tail to print every order event',
      });
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      const printed = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { position: number; streamId: string });
      expect(printed.map((event) => event.position)).toEqual(appended);
      expect(printed.every((event) => event.streamId.startsWith('order-'))).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(stderr).not.toMatch(/error/i);
  });

  it('stats reports the head, the recent rate, seal lag and every runner', async () => {
    const { code, stdout } = await annals(['stats', '--schema', schema, '--json']);
    expect(code).toBe(0);
    const stats = JSON.parse(stdout) as {
      head: number;
      rates: { minutes: number; events: number }[];
      unsealed: number;
      runners: unknown[];
    };
    const head = await store.headPosition();
    expect(stats.head).toBe(head);
    // Everything here was appended within the last minute.
    expect(stats.rates.map((rate) => [rate.minutes, rate.events])).toEqual([
      [1, head],
      [5, head],
      [15, head],
    ]);
    expect(stats.unsealed).toBe(head);
    // order-0 got the most events: one in the set-up and seven while tail ran.
    const largest = stats as unknown as { streams: number; largest: { streamId: string; version: number }[] };
    expect(largest.largest[0]).toEqual({ streamId: 'order-0', version: 8 });
    expect(largest.streams).toBe(5 + 20);
  });

  it('streams lists the streams page by page, and one category', async () => {
    const first = await annals(['streams', '--schema', schema, '--category', 'order', '--limit', '3', '--json']);
    expect(first.code).toBe(0);
    const page = JSON.parse(first.stdout) as { streams: { streamId: string; version: number }[]; next: string };
    expect(page.streams.map((s) => [s.streamId, s.version])).toEqual([
      ['order-0', 8],
      ['order-1', 8],
      ['order-2', 7],
    ]);
    expect(page.next).toBe('order-2');
    const rest = await annals(['streams', '--schema', schema, '--category', 'order', '--after', page.next]);
    expect(rest.code).toBe(0);
    expect(
      rest.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ')[0]),
    ).toEqual(['order-3', 'order-4']);
    const bad = await annals(['streams', '--schema', schema, '--limit', '0']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('options.limit');
  });

  it('rebuild runs an app module’s projection over the whole log and reports where it got', async () => {
    const app = join(dir, 'app.mjs');
    await writeFile(
      app,
      `export const projections = [{
        name: 'order_counts',
        categories: ['order'],
        setup: (tx) => tx.query('create table if not exists "${schema}".order_counts (stream text primary key, n int not null)'),
        handleBatch: async (events, tx) => {
          for (const event of events) {
            await tx.query(
              'insert into "${schema}".order_counts values ($1, 1) on conflict (stream) do update set n = order_counts.n + 1',
              [event.streamId],
            );
          }
        },
      }];\n`,
    );
    const { code, stdout, stderr } = await annals([
      'rebuild',
      'order_counts',
      '--app',
      app,
      '--schema',
      schema,
      '--json',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const status = JSON.parse(stdout) as { name: string; position: number; head: number; servingVersion: number };
    expect(status.name).toBe('order_counts');
    expect(status.servingVersion).toBe(1);
    expect(status.position).toBe(await store.headPosition());
    const admin = createPostgresClient({ connectionString: databaseUrl as string });
    const rows = await admin.query<{ n: number }>(`select sum(n)::int as n from "${schema}".order_counts`);
    await admin.close();
    let orders = 0;
    for await (const _ of store.readAll({ categories: ['order'] })) orders++;
    expect(rows[0]?.n).toBe(orders);

    const unknown = await annals(['rebuild', 'nothing_here', '--app', app, '--schema', schema]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no projection nothing_here');
  });
});

/** Whether a backend of the CLI (application_name annals-cli) listens on the schema's channel. */
async function listening(schema: string): Promise<boolean> {
  const admin = createPostgresClient({ connectionString: databaseUrl as string });
  try {
    const rows = await admin.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where application_name = 'annals-cli' and query ilike $1`,
      [`%listen%${schema}%`],
    );
    return (rows[0]?.n ?? 0) > 0;
  } finally {
    await admin.close();
  }
}
