/**
 * One application process of the many-processes bench: started with `fork`, it opens its own
 * connections (a store, or a plain `pg` pool for the raw comparator), then on `go` runs
 * single-event appends from `callers` concurrent callers over random streams with expected
 * version `any` until the time `go` names (wall clock, ms), and reports how many it made and
 * their latencies.
 *
 * Messages: in `{ start: Job }`, `{ go: until }`; out `{ ready: true }`, then
 * `{ result: { appends, latencies } }` (latencies in ms, sorted, sampled) and it exits.
 */
import { randomUUID } from 'node:crypto';
import { appendCoordinatorStatus, createPostgresClient, openEventStore } from '@annals/core';
import pg from 'pg';
import { eventData } from './events.js';

interface Job {
  url: string;
  /**
   * `annals`: store.append; `coordinated`: the same with the append coordinator on (one of the
   * processes runs every process's appends); `raw`: one INSERT per transaction into `table`.
   */
  mode: 'annals' | 'coordinated' | 'raw';
  schema: string;
  table: string;
  callers: number;
  streams: number;
  /** Metadata and data of realistic size (as the command handler writes them), or tiny. */
  realistic: boolean;
}

async function run(job: Job): Promise<{ appends: number; latencies: number[] }> {
  const latencies: number[] = [];
  let appends = 0;
  let append: (stream: string, i: number) => Promise<void>;
  let close: () => Promise<void>;
  if (job.mode !== 'raw') {
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: job.url, maxConnections: Math.min(10, job.callers + 1) }),
      schema: job.schema,
      appendCoordinator: job.mode === 'coordinated' ? { leaseRetryMs: 200 } : false,
    });
    // With the coordinator, start once this process holds the role or is linked to its holder.
    while (job.mode === 'coordinated' && appendCoordinatorStatus(store)?.role === 'direct') {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    append = async (stream, i) => {
      const { data, metadata } = eventData(i, job.realistic ? 'realistic' : 'tiny');
      await store.append(stream, [{ type: 'Deposited', data, metadata }]);
    };
    close = () => store.close();
  } else {
    const pool = new pg.Pool({ connectionString: job.url, max: job.callers });
    append = async (stream, i) => {
      const { data, metadata } = eventData(i, job.realistic ? 'realistic' : 'tiny');
      // The raw writer tracks no versions: a random version keeps the unique key from refusing.
      await pool.query(
        `insert into ${job.table} (stream_id, stream_version, event_id, event_type, data, metadata)
         values ($1, $2, $3, 'Deposited', $4, $5)`,
        [stream, Math.floor(Math.random() * 2 ** 40), randomUUID(), JSON.stringify(data), JSON.stringify(metadata)],
      );
    };
    close = () => pool.end();
  }
  process.send?.({ ready: true });
  const until = await new Promise<number>((resolve) =>
    process.once('message', (message: { go: number }) => resolve(message.go)),
  );
  await Promise.all(
    Array.from({ length: job.callers }, async () => {
      while (Date.now() < until) {
        const i = Math.floor(Math.random() * 1e9);
        const t0 = performance.now();
        await append(`account-${i % job.streams}`, i);
        latencies.push(performance.now() - t0);
        appends++;
      }
    }),
  );
  await close();
  latencies.sort((a, b) => a - b);
  const step = Math.max(1, Math.floor(latencies.length / 20_000));
  return { appends, latencies: latencies.filter((_, i) => i % step === 0) };
}

process.once('message', (message: { start: Job }) => {
  void run(message.start).then(
    (result) => process.send?.({ result }, () => process.exit(0)),
    (error) => process.send?.({ error: String(error) }, () => process.exit(1)),
  );
});
