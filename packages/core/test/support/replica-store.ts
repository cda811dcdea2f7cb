/** A store on a streaming replica, opened once the primary's schema has reached it with the WAL. */
import { createPostgresClient, type EventStore, openEventStore } from '../../src/index.js';
import { waitUntil } from './backends.js';

export async function openReplicaStore(url: string, schema: string, maxConnections = 4): Promise<EventStore> {
  let store: EventStore | undefined;
  await waitUntil(
    async () => {
      store = await openEventStore({
        client: createPostgresClient({ connectionString: url, maxConnections }),
        schema,
        migrate: false,
      }).catch(() => undefined);
      return store !== undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, message: 'the replica has the schema' },
  );
  return store as EventStore;
}

/** Runs one statement on the server at `url` (pausing or resuming a replica's replay). */
export async function runOn(url: string, sql: string): Promise<void> {
  const client = createPostgresClient({ connectionString: url });
  try {
    await client.query(sql);
  } finally {
    await client.close();
  }
}
