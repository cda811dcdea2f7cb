/**
 * A persistent subscription group survives the server process serving it being SIGKILLed:
 * `annals serve --grpc-port 0` in a child process, two consumers of the official KurrentDB
 * client acknowledging while a writer appends through the library, the server killed mid-run
 * and a new one started on the same store. Every event is acknowledged, none is lost; what
 * comes again is at most the page that was in hand; nothing is parked.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createPostgresClient, openEventStore } from '@annals/core';
import type { KurrentDBClient, PersistentSubscriptionToStream } from '@kurrent/kurrentdb-client';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema } from '../../core/test/support/backends.js';
import { spawnAnnals } from './support/bin.js';

/** `annals serve` with the KurrentDB protocol; resolves with its connection string once it listens. */
async function serve(schema: string): Promise<{ endpoint: string; child: ChildProcessWithoutNullStreams }> {
  const { child, found } = await spawnAnnals(
    ['serve', '--schema', schema, '--port', '0', '--grpc-port', '0', '--auth', 'off'],
    (output) => /kurrentdb:\/\/127\.0\.0\.1:\d+\?tls=false/.exec(output)?.[0],
  );
  return { endpoint: found, child };
}

const until = async (check: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe.skipIf(!databaseUrl)('persistent subscriptions across a killed server', () => {
  const schema = freshSchema('pskill');
  const children: ChildProcessWithoutNullStreams[] = [];
  const clients: KurrentDBClient[] = [];
  const sql = createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 4 });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await sql.exec(`drop schema if exists "${schema}" cascade`);
    await sql.close();
  });

  it('acknowledges every event once the group is served again, losing none', async () => {
    const { KurrentDBClient, persistentSubscriptionToStreamSettingsFromDefaults, START } = await import(
      '@kurrent/kurrentdb-client'
    );
    const first = await serve(schema);
    children.push(first.child);
    const connect = (endpoint: string) => {
      const client = KurrentDBClient.connectionString`${endpoint}`;
      clients.push(client);
      return client;
    };
    const one = connect(first.endpoint);
    await one.createPersistentSubscriptionToStream(
      'kill-ps',
      'g',
      persistentSubscriptionToStreamSettingsFromDefaults({ startFrom: START, liveBufferSize: 50 }),
    );

    const total = 400;
    const store = await openEventStore({ client: sql, schema, closeClient: false });
    const writer = (async () => {
      for (let i = 0; i < total; i += 4) {
        await store.append(
          'kill-ps',
          [0, 1, 2, 3].map((k) => ({ type: 'Deposited', data: { n: i + k } })),
        );
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();

    const acked = new Map<number, number>();
    const consumeWith = (client: KurrentDBClient) => {
      const subscription: PersistentSubscriptionToStream = client.subscribeToPersistentSubscriptionToStream(
        'kill-ps',
        'g',
        { bufferSize: 8 },
      );
      subscription.on('error', () => {});
      const done = (async () => {
        try {
          for await (const event of subscription) {
            const n = (event.event?.data as { n: number } | undefined)?.n ?? -1;
            await subscription.ack(event);
            acked.set(n, (acked.get(n) ?? 0) + 1);
          }
        } catch {
          // The server went away.
        }
      })();
      return { subscription, done };
    };
    const before = [consumeWith(one), consumeWith(one)];
    await until(() => acked.size >= total / 4, 30_000, 'a quarter acknowledged');
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    first.child.kill('SIGKILL');
    await exited;
    await Promise.all(before.map((consumer) => consumer.done));
    const ackedBeforeKill = acked.size;

    const second = await serve(schema);
    children.push(second.child);
    const two = connect(second.endpoint);
    const after = [consumeWith(two), consumeWith(two)];
    await writer;
    await until(() => acked.size === total, 60_000, 'every event acknowledged');
    expect(ackedBeforeKill).toBeLessThan(total);
    // Acknowledged twice only within the page in hand at the kill (liveBufferSize 50).
    const twice = [...acked.values()].filter((count) => count > 1).length;
    expect(twice).toBeLessThanOrEqual(50);
    console.log(
      `[persistent-kill] ${ackedBeforeKill} of ${total} acknowledged before the kill; ${twice} again after it`,
    );
    const info = await two.getPersistentSubscriptionToStreamInfo('kill-ps', 'g');
    expect(info.stats.parkedMessageCount).toBe(0n);
    for (const consumer of after) await consumer.subscription.unsubscribe();
    await Promise.all(after.map((consumer) => consumer.done));
    await store.close();
    const exitedToo = new Promise((resolve) => second.child.once('exit', resolve));
    second.child.kill('SIGTERM');
    await exitedToo;
  }, 120_000);
});
