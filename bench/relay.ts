/**
 * The `relay` section of `npm run bench`: the NATS relay (`@annals/nats`) against the NATS
 * server on NATS_URL (default 127.0.0.1:4222), in one run:
 *
 * - catch-up: a relay started on a log of realistic events publishes all of them, against a
 *   relay by hand (read the log in pages, publish each event with 5000 acknowledgements
 *   outstanding; no checkpoint, lease or ordering guard), and against the official client's
 *   `publish` of the same bodies with no log behind them (a request per message), and
 *   against the relay's own messages built beforehand and published as it does (what the
 *   NATS server takes, with nothing of the relay's read, checkpoint or lease around it);
 * - latency at a steady 5,000 single-event appends a second: from the append's call to the
 *   message arriving at a JetStream consumer, against the same appends reaching an in-process
 *   subscription (the library's own delivery, without the hop through NATS).
 *
 * Each measurement uses streams of its own, deleted after.
 */
import { randomUUID } from 'node:crypto';
import { createPostgresClient, type EventStore, openEventStore, subscriptions } from '@annals/core';
import { AsyncPublisher, startNatsRelay } from '@annals/nats';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers } from '@nats-io/transport-node';
import { header, messageOf } from '../packages/nats/src/messages.js';
import { eventData } from './events.js';
import { type Measurement, percentiles, type Row, row, timeIt } from './measure.js';

const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export async function relaySection(url: string, n: (count: number) => number): Promise<Row[]> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const created: string[] = [];
  const stream = async (prefix: string) => {
    const name = `BENCH_${prefix}_${randomUUID().slice(0, 8)}`;
    await jsm.streams.add({ name, subjects: [`${name}.>`] });
    created.push(name);
    return name;
  };
  const open = (schema: string): Promise<EventStore> =>
    openEventStore({ client: createPostgresClient({ connectionString: url, maxConnections: 10 }), schema });
  const rows: Row[] = [];
  try {
    // Catch-up throughput.
    const events = n(100_000);
    const store = await open('bench_relay');
    for (let first = 0; first < events; first += 1000) {
      await store.append(
        `account-${first / 1000}`,
        Array.from({ length: Math.min(1000, events - first) }, (_, k) => ({
          type: 'Deposited',
          ...eventData(first + k, 'realistic'),
        })),
      );
    }
    const encoder = new TextEncoder();
    // A relay by hand: read the log, publish each event, no checkpoint, lease or ordering guard.
    const handStream = await stream('HAND');
    const handPublisher = new AsyncPublisher(nc, 30_000);
    const byHand = await timeIt(events, async () => {
      const inFlight: Promise<unknown>[] = [];
      for await (const event of store.readAll({ pageSize: 2000 })) {
        const h = headers();
        h.set('Annals-Position', String(event.position));
        h.set('Nats-Msg-Id', event.id);
        inFlight.push(
          handPublisher.publish(`${handStream}.account.Deposited`, encoder.encode(JSON.stringify(event.data)), h),
        );
        if (inFlight.length >= 5000) await inFlight.shift();
      }
      await Promise.all(inFlight);
    });
    handPublisher.close();
    // The official client's publish (a request per message) of the same bodies, no log read.
    const bodies: Uint8Array[] = [];
    for await (const event of store.readAll()) bodies.push(encoder.encode(JSON.stringify(event.data)));
    const clientStream = await stream('CLIENT');
    const clientPublish = await timeIt(events, async () => {
      const inFlight: Promise<unknown>[] = [];
      for (const [i, body] of bodies.entries()) {
        const h = headers();
        h.set('Annals-Position', String(i + 1));
        inFlight.push(js.publish(`${clientStream}.account.Deposited`, body, { headers: h, msgID: randomUUID() }));
        if (inFlight.length >= 5000) await inFlight.shift();
      }
      await Promise.all(inFlight);
    });
    // What this NATS server takes: the relay's own messages (headers, expected-sequence
    // chain), built beforehand and published as the relay does, with no log behind them.
    const ceilingStream = await stream('CEILING');
    const ceilingMessages: ReturnType<typeof messageOf>[] = [];
    for await (const event of store.readAll({ pageSize: 2000 })) {
      ceilingMessages.push(
        messageOf(event, 'redact', {
          [header.relay]: 'bench',
          'Nats-Msg-Id': event.id,
          'Nats-Expected-Stream': ceilingStream,
          'Nats-Expected-Last-Sequence': String(event.position - 1),
        }),
      );
    }
    const ceilingPublisher = new AsyncPublisher(nc, 30_000);
    const ceiling = await timeIt(events, async () => {
      const inFlight: Promise<unknown>[] = [];
      for (const message of ceilingMessages) {
        inFlight.push(ceilingPublisher.publish(`${ceilingStream}.account.Deposited`, message.body, message.headers));
        if (inFlight.length >= 5000) await inFlight.shift();
      }
      await Promise.all(inFlight);
    });
    ceilingPublisher.close();
    ceilingMessages.length = 0;
    const relayStream = await stream('RELAY');
    const head = await store.headPosition();
    const relay = startNatsRelay(store, {
      connection: nc,
      stream: relayStream,
      subject: `${relayStream}.{category}.{type}`,
      createStream: false,
    });
    const relayed = await timeIt(events, async () => {
      for (;;) {
        const status = await relay.status();
        if (status.position >= head) return;
        if (status.lastError) throw new Error(`relay: ${status.lastError}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
    await relay.stop();
    rows.push(
      row(
        `NATS relay catch-up, ${events.toLocaleString('en-US')} realistic events`,
        { name: 'read the log and publish by hand, 5000 in flight', ...byHand },
        relayed,
        '>= 50k/s',
      ),
      row(
        '  the same, against its messages built beforehand (no log read)',
        { name: "the relay's messages published, 5000 in flight, no log read", ...ceiling },
        relayed,
        '-',
      ),
      row(
        '  the same, against the official js.publish (no log read)',
        { name: 'jetstream(nc).publish, 5000 in flight', ...clientPublish },
        relayed,
        '-',
      ),
    );
    await store.close();

    // Latency at a steady rate.
    const latencyStore = await open('bench_relay_latency');
    const rate = 5000;
    const total = n(20_000);
    const latencyStream = await stream('LATENCY');
    const sent = new Map<string, number>();
    const viaSubscription: number[] = [];
    const viaNats: number[] = [];
    const subscription = subscriptions(latencyStore).subscribe({
      from: 'end',
      batchSize: 500,
      handler: (page) => {
        const now = performance.now();
        for (const event of page) {
          const at = sent.get(event.id);
          if (at !== undefined) viaSubscription.push(now - at);
        }
      },
    });
    const latencyRelay = startNatsRelay(latencyStore, {
      connection: nc,
      stream: latencyStream,
      subject: `${latencyStream}.{category}.{type}`,
      createStream: false,
      from: 'end',
    });
    const consumer = await js.consumers.get(latencyStream, { deliver_policy: DeliverPolicy.New });
    const messages = await consumer.consume();
    const received = (async () => {
      for await (const message of messages) {
        const at = sent.get(message.headers?.get('Nats-Msg-Id') ?? '');
        if (at !== undefined) viaNats.push(performance.now() - at);
        if (viaNats.length >= total) break;
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (;;) {
          const k = next++;
          if (k >= total) return;
          const due = started + (k * 1000) / rate - performance.now();
          if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
          const id = randomUUID();
          sent.set(id, performance.now());
          await latencyStore.append(`account-${k % 1000}`, [{ id, type: 'Deposited', ...eventData(k, 'realistic') }]);
        }
      }),
    );
    const deadline = Date.now() + 30_000;
    while ((viaNats.length < total || viaSubscription.length < total) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    await messages.close();
    await received;
    await latencyRelay.stop();
    await subscription.stop();
    await latencyStore.close();
    rows.push(
      row(
        `append to JetStream consumer at ${rate.toLocaleString('en-US')} events/s (p50)`,
        { name: 'append to in-process subscription', ...latencyOf(viaSubscription, seconds) },
        latencyOf(viaNats, seconds),
        'p50/p99 reported',
        'p50',
      ),
    );
  } finally {
    for (const name of created) await jsm.streams.delete(name).catch(() => {});
    await nc.close();
  }
  return rows;
}

function latencyOf(latencies: number[], seconds: number): Measurement {
  return { eventsPerSecond: latencies.length / seconds, ...percentiles([...latencies]), seconds };
}
