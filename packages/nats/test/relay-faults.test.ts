/**
 * The relay's proof under faults: 200,000 events relayed while writers append, with the relay
 * process SIGKILLed mid-batch and restarted, NATS restarted, and PostgreSQL restarted (as
 * after a crash) mid-run. The JetStream stream must end with every event of the log exactly
 * once, in log order: message n carries position n and the id of the log's event n.
 *
 * PostgreSQL and NATS are private to this file (a cluster made with initdb, a nats-server on
 * its own port): restarting the shared ones would break the other test files.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createPostgresClient, type EventStore, type NewEvent, openEventStore } from '@annals/core';
import { describe, expect, it } from 'vitest';
import { sleep, waitUntil } from '../../core/test/support/backends.js';
import { privateClusterUnavailable, startPrivateCluster } from '../../core/test/support/pg-cluster.js';
import type { NatsRelayStatus } from '../src/index.js';
import { natsServerAvailable, startNatsServer } from './support/nats-server.js';
import { readJetStream } from './support/stream-reader.js';

const total = 200_000;
const perAppend = 100;
const writers = 4;
/** The writers' pace, all together: slower than the relay, so that every fault falls mid-writing. */
const eventsPerSecond = 6000;

interface RelayProcess {
  child: ChildProcess;
  last: NatsRelayStatus | undefined;
}

function startRelayProcess(args: string[]): RelayProcess {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@annals/source',
      '--import',
      'tsx',
      new URL('./support/relay-child.ts', import.meta.url).pathname,
      ...args,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const relay: RelayProcess = { child, last: undefined };
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line) relay.last = JSON.parse(line) as NatsRelayStatus;
  });
  return relay;
}

async function kill(relay: RelayProcess): Promise<void> {
  if (relay.child.exitCode !== null) return;
  const exited = new Promise((resolve) => relay.child.once('exit', resolve));
  relay.child.kill('SIGKILL');
  await exited;
}

/** Appends `count` events in appends of `perAppend`, retrying each with its own ids until stored. */
async function write(store: EventStore, count: number, failures: string[]): Promise<void> {
  const start = Date.now();
  const interval = (perAppend * writers * 1000) / eventsPerSecond;
  for (let done = 0; done < count; done += perAppend) {
    const due = start + (done / perAppend) * interval - Date.now();
    if (due > 0) await sleep(due);
    const events: NewEvent[] = Array.from({ length: perAppend }, (_, i) => ({
      id: randomUUID(),
      type: 'Deposited',
      data: { amount: done + i, note: 'x'.repeat(100) },
      metadata: { actor: 'writer', correlationId: randomUUID() },
    }));
    const stream = `account-${Math.floor(Math.random() * 1000)}`;
    for (;;) {
      try {
        // Same ids on a retry: an append whose answer was lost comes back as a duplicate.
        await store.append(stream, events);
        break;
      } catch (error) {
        failures.push(String(error));
        await sleep(100);
      }
    }
  }
}

const unavailable = !natsServerAvailable ? 'nats-server is not installed' : privateClusterUnavailable;

describe.skipIf(unavailable !== undefined)('NATS relay under faults', () => {
  it(`relays ${total.toLocaleString('en')} events exactly once, in log order, through a relay SIGKILL, a NATS restart and a PostgreSQL restart`, async () => {
    const cluster = await startPrivateCluster();
    const nats = await startNatsServer();
    const schema = 'annals';
    const stream = 'FAULTS';
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: cluster.url, maxConnections: 8 }),
      schema,
    });
    const args = [cluster.url, schema, nats.url, stream];
    let relay = startRelayProcess(args);
    const failures: string[] = [];
    const faults: string[] = [];
    const head = async () => store.headPosition().catch(() => 0);
    const startedAt = async () => {
      const client = createPostgresClient({ connectionString: cluster.url });
      try {
        const [row] = await client.query<{ at: Date }>('select pg_postmaster_start_time() as at');
        return row?.at.getTime();
      } finally {
        await client.close();
      }
    };
    const firstStart = await startedAt();
    try {
      const writing = Promise.all(Array.from({ length: writers }, () => write(store, total / writers, failures)));
      const relayedPast = async (position: number) =>
        waitUntil(async () => (relay.last?.position ?? 0) >= position, {
          timeoutMs: 120_000,
          intervalMs: 20,
          message: `the relay passes ${position}`,
        });

      await relayedPast(40_000);
      await kill(relay);
      faults.push(`relay SIGKILLed at checkpoint ${relay.last?.position}, head ${await head()}`);
      relay = startRelayProcess(args);

      await relayedPast(80_000);
      await nats.stop('SIGTERM');
      faults.push(`NATS stopped at checkpoint ${relay.last?.position}`);
      await sleep(1000);
      await nats.start();

      await relayedPast(120_000);
      cluster.restart('immediate');
      faults.push(`PostgreSQL restarted (immediate) at checkpoint ${relay.last?.position}, head ${await head()}`);

      await relayedPast(150_000);
      await kill(relay);
      faults.push(`relay SIGKILLed again at checkpoint ${relay.last?.position}`);
      relay = startRelayProcess(args);

      await writing;
      const end = await store.headPosition();
      expect(end).toBe(total);
      await relayedPast(end);
    } finally {
      relay.child.stdin?.end();
      await sleep(200);
      await kill(relay);
    }
    try {
      expect(faults).toHaveLength(4);
      const messages = await readJetStream(nats.url, stream);
      const ids: string[] = [];
      for await (const event of store.readAll({ pageSize: 5000 })) ids.push(event.id);
      expect(ids).toHaveLength(total);
      expect(messages).toHaveLength(total);
      let wrong = 0;
      messages.forEach((message, i) => {
        const position = i + 1;
        if (
          message.seq !== position ||
          message.headers['Annals-Position'] !== String(position) ||
          message.headers['Nats-Msg-Id'] !== ids[i]
        ) {
          wrong++;
        }
      });
      expect(wrong).toBe(0);
      // PostgreSQL did restart under the relay and the writers (their appends ride it out).
      expect(await startedAt()).not.toEqual(firstStart);
    } finally {
      await store.close().catch(() => {});
      await nats.cleanup();
      cluster.cleanup();
    }
  }, 300_000);
});
