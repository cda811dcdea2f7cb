/**
 * `annals relay nats` and `annals serve --relay-nats`, as an operator runs them: the real bin in
 * a child process, a NATS server of the test's own, this run's PostgreSQL database.
 */
import type { ChildProcess } from 'node:child_process';
import { createPostgresClient, openEventStore } from '@annals/core';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema, waitUntil } from '../../core/test/support/backends.js';
import { natsServerAvailable, startNatsServer, type TestNatsServer } from '../../nats/test/support/nats-server.js';
import { readJetStream } from '../../nats/test/support/stream-reader.js';
import { annals, httpUrlIn, spawnAnnals } from './support/bin.js';

async function deleteStream(name: string): Promise<void> {
  const connection = await connect({ servers: nats.url });
  await (await jetstreamManager(connection)).streams.delete(name).catch(() => {});
  await connection.close();
}

const stopped = (child: { exitCode: number | null; once: (e: 'exit', f: (code: number) => void) => void }) =>
  new Promise<number>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', resolve)));

let nats: TestNatsServer;
/** Every child started, killed after the file whatever happened to its test. */
const children: ChildProcess[] = [];

describe.skipIf(!databaseUrl || !natsServerAvailable)('annals relay nats', () => {
  const schema = freshSchema('relay');
  /** The serve test's own: its relay must start from the start, not from the first test's checkpoint. */
  const serveSchema = freshSchema('relay');
  const client = createPostgresClient({ connectionString: databaseUrl as string });
  beforeAll(async () => {
    nats = await startNatsServer();
    for (const name of [schema, serveSchema]) {
      await (await openEventStore({ client, schema: name, closeClient: false })).close();
    }
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await nats?.cleanup();
    for (const name of [schema, serveSchema]) await client.exec(`drop schema if exists "${name}" cascade`);
    await client.close();
  });

  it('relays the log until SIGTERM, printing its status, and stops cleanly', async () => {
    const store = await openEventStore({ client, schema, closeClient: false, migrate: false });
    try {
      for (let i = 0; i < 5; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { i } }]);
      const relay = await spawnAnnals(
        ['relay', 'nats', '--schema', schema, '--nats-url', nats.url, '--stream', 'CLI', '--status-every', '100'],
        (output) => (/live {2}checkpoint #5 of #5/.test(output) ? 'live' : undefined),
      );
      children.push(relay.child);
      await store.append('account-9', [{ type: 'Closed', data: {} }]);
      await waitUntil(() => /checkpoint #6 of #6/.test(relay.output()));
      relay.child.kill('SIGTERM');
      expect(await stopped(relay.child)).toBe(0);
      expect(relay.output()).toMatch(/stopped: stopped {2}checkpoint #6 of #6/);
      const messages = await readJetStream(nats.url, 'CLI');
      expect(messages.map((m) => [m.subject, m.headers['Annals-Position']])).toEqual([
        ['annals.account.Opened', '1'],
        ['annals.account.Opened', '2'],
        ['annals.account.Opened', '3'],
        ['annals.account.Opened', '4'],
        ['annals.account.Opened', '5'],
        ['annals.account.Closed', '6'],
      ]);
    } finally {
      await store.close();
      // Streams may not share subjects: serve's stream ANNALS takes annals.*.* too.
      await deleteStream('CLI');
    }
  });

  it('refuses bad flags with an error naming them, and publishes nothing', async () => {
    for (const [flags, message] of [
      [['--subject', 'annals.>'], /subject/],
      [['--subject', 'annals.{nope}'], /unknown placeholder/],
      [['--stream', 'a.b'], /stream/],
      [['--batch-size', '0'], /batchSize/],
      [['--from', 'middle'], /--from/],
    ] as const) {
      const result = await annals(['relay', 'nats', '--schema', schema, '--nats-url', nats.url, ...flags]);
      expect(result.code, flags.join(' ')).toBe(1);
      expect(result.stderr, flags.join(' ')).toMatch(message);
    }
    expect(await readJetStream(nats.url, 'ANNALS')).toEqual([]);
    const serve = await annals([
      'serve',
      '--schema',
      schema,
      '--port',
      '0',
      '--auth',
      'off',
      '--relay-nats',
      'not a url',
    ]);
    expect(serve.code).toBe(1);
    expect(serve.stderr).toMatch(/--relay-nats: must be a NATS URL/);
  });

  it('relays from annals serve --relay-nats, lists the relay in /checkpoints, and drains on SIGTERM', async () => {
    const server = await spawnAnnals(
      ['serve', '--schema', serveSchema, '--port', '0', '--auth', 'off', '--relay-nats', nats.url],
      (output) => (output.includes('relaying the log to NATS') ? httpUrlIn(output) : undefined),
    );
    children.push(server.child);
    const answer = await fetch(`${server.found}/streams/order-1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ type: 'Placed', data: { total: 3 } }] }),
    });
    expect(answer.status).toBe(201);
    await waitUntil(async () => (await readJetStream(nats.url, 'ANNALS')).length === 1, {
      message: `1 message in ANNALS; the server printed:\n${server.output()}`,
    });
    await waitUntil(async () => {
      const { checkpoints } = (await (await fetch(`${server.found}/checkpoints`)).json()) as {
        checkpoints: { name: string; position: number }[];
      };
      return checkpoints.some((c) => c.name === 'nats-relay.default#0' && c.position === 1);
    });
    server.child.kill('SIGTERM');
    expect(await stopped(server.child)).toBe(0);
    const messages = await readJetStream(nats.url, 'ANNALS');
    expect(messages.map((m) => m.headers)).toMatchObject([{ 'Annals-Stream': 'order-1', 'Annals-Position': '1' }]);
  });
});
