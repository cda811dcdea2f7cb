/**
 * One relay process of the fault test: relays the store's log to JetStream until it is killed
 * or its stdin closes, printing its status as one JSON line every 100 ms.
 * Arguments: database url, schema, NATS url, JetStream stream.
 */
import { createPostgresClient, openEventStore } from '@annals/core';
import { startNatsRelay } from '../../src/index.js';

const [url, schema, natsUrl, stream] = process.argv.slice(2) as [string, string, string, string];
const store = await openEventStore({
  client: createPostgresClient({ connectionString: url, maxConnections: 4 }),
  schema,
  migrate: false,
});
const relay = startNatsRelay(store, {
  servers: natsUrl,
  stream,
  heartbeatMs: 100,
  sessionTimeoutMs: 1000,
  ackTimeoutMs: 2000,
  retryWindowMs: 5000,
});
const report = setInterval(() => {
  relay
    .status()
    .then((status) => process.stdout.write(`${JSON.stringify(status)}\n`))
    .catch(() => {});
}, 100);
process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(report);
  void relay.stop().then(() => store.close());
});
