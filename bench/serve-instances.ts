/**
 * The `instances` section of `npm run bench`: several `annals serve` instances on one database,
 * as a team runs them behind a load balancer, each taking its share of 32 keep-alive HTTP
 * clients appending single events (expected version `any`, random streams of 10,000).
 * Side by side in one run: one instance with all 32 clients; 4 instances each committing its
 * own appends; 4 instances with `--append-coordinator`, handing their appends to the holder.
 *
 * Loopback only; every load runs for a fixed time and every child is stopped at the end.
 */
import { createPostgresClient, openEventStore } from '@annals/core';
import { Pool } from 'undici';
import { type ServeChild, startServe } from './children.js';
import { type Measurement, type Row, row } from './measure.js';

const at = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** `instances` servers on `schema` (with `flags`), `clients` in all, appending for `seconds`. */
async function layout(
  url: string,
  o: { schema: string; instances: number; clients: number; seconds: number; flags: string[] },
): Promise<Measurement> {
  const store = await openEventStore({ client: createPostgresClient({ connectionString: url }), schema: o.schema });
  await store.close();
  const children: ServeChild[] = [];
  const pools: Pool[] = [];
  try {
    children.push(
      ...(await Promise.all(
        Array.from({ length: o.instances }, () => startServe(url, o.schema, 10, ['--auth', 'off', ...o.flags])),
      )),
    );
    const perInstance = Math.ceil(o.clients / o.instances);
    for (const child of children) {
      pools.push(new Pool(child.url, { connections: perInstance, pipelining: 1, keepAliveTimeout: 30_000 }));
    }
    // With the coordinator, the others find the holder within its lease retry (1 s).
    if (o.flags.includes('--append-coordinator')) await new Promise((resolve) => setTimeout(resolve, 2_500));
    const latencies: number[] = [];
    const started = performance.now();
    const until = started + o.seconds * 1000;
    await Promise.all(
      Array.from({ length: o.clients }, async (_, client) => {
        const pool = pools[client % pools.length] as Pool;
        for (let i = 0; performance.now() < until; i++) {
          const stream = `account-${Math.floor(Math.random() * 10_000)}`;
          const sent = performance.now();
          const response = await pool.request({
            method: 'POST',
            path: `/streams/${stream}/events`,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              events: [
                {
                  type: 'Deposited',
                  data: { amount: 100, currency: 'EUR', reference: `invoice-${client}-${i}`, note: 'x'.repeat(120) },
                  metadata: { actor: `user-${client}@example.com`, correlationId: crypto.randomUUID() },
                },
              ],
            }),
          });
          await response.body.dump();
          if (response.statusCode !== 201) throw new Error(`append answered ${response.statusCode}`);
          latencies.push(performance.now() - sent);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      eventsPerSecond: latencies.length / seconds,
      p50Ms: at(latencies, 0.5),
      p99Ms: at(latencies, 0.99),
      seconds,
    };
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    await Promise.all(children.map((child) => child.stop()));
  }
}

export async function instancesSection(url: string, scale: number): Promise<Row[]> {
  const seconds = Math.max(2, Math.round(8 * scale));
  const clients = 32;
  const one = await layout(url, { schema: 'bench_instances_one', instances: 1, clients, seconds, flags: [] });
  const alone = await layout(url, { schema: 'bench_instances_alone', instances: 4, clients, seconds, flags: [] });
  const shared = await layout(url, {
    schema: 'bench_instances_coordinated',
    instances: 4,
    clients,
    seconds,
    flags: ['--append-coordinator'],
  });
  return [
    row(`annals serve x 4, 8 HTTP clients each, committing alone (vs 1 x 32)`, { ...one, name: '1 x 32' }, alone, ''),
    row('  same, --append-coordinator (vs committing alone)', { ...alone, name: '4 x 8 alone' }, shared, '>= 1.0x'),
    row('  same, --append-coordinator (vs 1 x 32)', { ...one, name: '1 x 32' }, shared, '>= 0.6x'),
  ];
}
