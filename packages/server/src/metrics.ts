/**
 * Prometheus metrics of a server: the process's own (prom-client's defaults), its HTTP traffic, the store's appends (through the store's
 * own instrumentation hooks), and gauges read at scrape time — the log's head, the lag of
 * every subscription and projection, the sealer's lag, the connection pool, SSE clients.
 */
import {
  appendCoordinatorStatus,
  type CheckpointStatus,
  type EventStore,
  integrity,
  type PoolStats,
  type RecordedEvent,
  type StoreInstrumentation,
  subscriptions,
} from '@annals/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The metrics of one server. */
export interface ServerMetrics {
  registry: Registry;
  /** Hooks to pass to `openEventStore({ instrumentation })`. */
  instrumentation: StoreInstrumentation;
  /** Observes one HTTP request. */
  request(route: string, method: string, status: number, seconds: number): void;
  /** Observes one page the live hub handed out (see `LiveHubOptions.onPublish`). */
  published(page: { events: readonly RecordedEvent[]; clients: number }): void;
  /** Connects the scrape-time gauges to a store, its pool and the SSE hub. */
  attach(sources: {
    store: EventStore | undefined;
    sseClients: () => number;
    poolStats: () => PoolStats | undefined;
  }): void;
}

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  // The process's own: memory, heap, CPU, event-loop delay, open handles (prom-client's names).
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'annals_http_requests_total',
    help: 'HTTP requests by route, method and status.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const requestSeconds = new Histogram({
    name: 'annals_http_request_duration_seconds',
    help: 'HTTP request latency by route and method.',
    labelNames: ['route', 'method'],
    buckets: latencyBuckets,
    registers: [registry],
  });
  const appends = new Counter({
    name: 'annals_appends_total',
    help: 'Appends by outcome (ok, duplicate, conflict, error).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const events = new Counter({
    name: 'annals_events_appended_total',
    help: 'Events appended (not counting duplicates).',
    registers: [registry],
  });
  const appendSeconds = new Histogram({
    name: 'annals_append_duration_seconds',
    help: 'Append latency, from the call to its answer.',
    buckets: latencyBuckets,
    registers: [registry],
  });
  const batchAppends = new Histogram({
    name: 'annals_append_batch_appends',
    help: 'Appends coalesced into one database call.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [registry],
  });
  const batchSeconds = new Histogram({
    name: 'annals_append_batch_duration_seconds',
    help: 'Duration of one coalesced database call of appends.',
    buckets: latencyBuckets,
    registers: [registry],
  });

  const requestChildren = new Map<
    string,
    { count: ReturnType<typeof requests.labels>; seconds: ReturnType<typeof requestSeconds.labels> }
  >();

  const liveLag = new Histogram({
    name: 'annals_sse_publish_lag_seconds',
    help: 'From an event being stored (its recordedAt) to the live hub handing it to its SSE clients.',
    buckets: latencyBuckets,
    registers: [registry],
  });
  const liveWrites = new Counter({
    name: 'annals_sse_writes_total',
    help: 'Writes to SSE clients by the live hub (one per client per page it wanted).',
    registers: [registry],
  });

  let store: EventStore | undefined;
  let sseClients: () => number = () => 0;
  let poolStats: () => PoolStats | undefined = () => undefined;
  new Gauge({
    name: 'annals_log_head_position',
    help: 'Position of the last event in the log.',
    registers: [registry],
    async collect() {
      if (store) this.set(await store.headPosition().catch(() => 0));
    },
  });
  // Both lag gauges read the checkpoints once per scrape, from one query.
  const lagGauge = (name: string, help: string, value: (row: CheckpointStatus) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['name'],
      registers: [registry],
      async collect() {
        if (!store) return;
        this.reset();
        const rows = await subscriptions(store)
          .checkpoints()
          .catch((): CheckpointStatus[] => []);
        for (const row of rows) this.set({ name: row.name }, value(row));
      },
    });
  lagGauge(
    'annals_checkpoint_lag_events',
    'Events between each subscription or projection checkpoint and the log head.',
    (row) => row.lag,
  );
  lagGauge(
    'annals_checkpoint_lag_seconds',
    'Age of the oldest event each subscription or projection has not handled.',
    (row) => row.lagSeconds,
  );
  new Gauge({
    name: 'annals_sealer_lag_events',
    help: 'Events not sealed yet.',
    registers: [registry],
    async collect() {
      if (store)
        this.set(
          (
            await integrity(store)
              .status()
              .catch(() => ({ unsealed: 0 }))
          ).unsealed,
        );
    },
  });
  new Gauge({
    name: 'annals_db_pool_connections',
    help: 'Database connections of the pool by state (total, idle, waiting callers).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const stats = poolStats();
      if (!stats) return;
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
  // The append coordinator's state, for a store opened with one (else absent). A synchronous
  // read of the pipeline's counters, so each gauge reads it as it is collected.
  const coordinator = () => (store ? appendCoordinatorStatus(store) : undefined);
  new Gauge({
    name: 'annals_append_coordinator_role',
    help: 'The append coordinator role of this process: 1 for the one it has (holder, linked or direct).',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const status = coordinator();
      if (!status) return;
      for (const role of ['holder', 'linked', 'direct'] as const) this.set({ role }, status.role === role ? 1 : 0);
    },
  });
  new Gauge({
    name: 'annals_append_coordinator_appends',
    help: 'Appends by way, since start: batches forwarded to the holder, appends run directly, appends of other processes served.',
    labelNames: ['way'],
    registers: [registry],
    collect() {
      const status = coordinator();
      if (!status) return;
      this.set({ way: 'forwarded_batches' }, status.forwardedBatches);
      this.set({ way: 'direct' }, status.directAppends);
      this.set({ way: 'served' }, status.servedAppends);
    },
  });
  new Gauge({
    name: 'annals_sse_clients',
    help: 'Server-Sent Events clients connected.',
    registers: [registry],
    collect() {
      this.set(sseClients());
    },
  });

  return {
    registry,
    instrumentation: {
      onAppend({ outcome, events: count, durationMs }) {
        appends.inc({ outcome });
        if (outcome === 'ok') events.inc(count);
        appendSeconds.observe(durationMs / 1000);
      },
      onAppendBatch({ appends: count, durationMs }) {
        batchAppends.observe(count);
        batchSeconds.observe(durationMs / 1000);
      },
    },
    request(route, method, status, seconds) {
      // The labelled children are looked up once per route, method and status, not per request.
      const key = `${method} ${route} ${status}`;
      let child = requestChildren.get(key);
      if (!child) {
        child = {
          count: requests.labels({ route, method, status: String(status) }),
          seconds: requestSeconds.labels({ route, method }),
        };
        requestChildren.set(key, child);
      }
      child.count.inc();
      child.seconds.observe(seconds);
    },
    published({ events, clients }) {
      const last = events.at(-1);
      if (last) liveLag.observe(Math.max(0, Date.now() - last.recordedAt.getTime()) / 1000);
      liveWrites.inc(clients);
    },
    attach(sources) {
      store = sources.store;
      sseClients = sources.sseClients;
      poolStats = sources.poolStats;
    },
  };
}
