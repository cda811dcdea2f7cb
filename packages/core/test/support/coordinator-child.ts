/**
 * One application process of the append-coordinator crash test: opens the store with the
 * coordinator on, then appends from 4 concurrent callers (two events an append, expected
 * version `any`, 50 streams) until stdin closes, and prints one JSON line per event:
 * `{"role": ...}` when its coordinator role changes, `{"acked": [first event id, ...]}` for
 * appends acknowledged since the last line (every 20 ms), `{"failed": message}` for an append
 * that failed. Arguments: database url, schema.
 */
import { randomUUID } from 'node:crypto';
import { appendCoordinatorStatus, createPostgresClient, openEventStore } from '../../src/index.js';

const [url, schema] = process.argv.slice(2) as [string, string];
const store = await openEventStore({
  client: createPostgresClient({ connectionString: url, maxConnections: 6 }),
  schema,
  migrate: false,
  appendCoordinator: { leaseRetryMs: 100, forwardTimeoutMs: 3000 },
});
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
let role = '';
let acked: string[] = [];
const report = setInterval(() => {
  const now = appendCoordinatorStatus(store)?.role ?? 'none';
  if (now !== role) {
    role = now;
    say({ role, pid: process.pid });
  }
  if (acked.length > 0) {
    say({ acked });
    acked = [];
  }
}, 20);
let running = true;
process.stdin.on('end', () => {
  running = false;
});
process.stdin.resume();
await Promise.all(
  Array.from({ length: 4 }, async () => {
    while (running) {
      const first = randomUUID();
      try {
        await store.append(`s-${Math.floor(Math.random() * 50)}`, [
          { id: first, type: 'First', data: { pid: process.pid } },
          { type: 'Second', data: { of: first } },
        ]);
        acked.push(first);
      } catch (error) {
        say({ failed: String(error) });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }),
);
clearInterval(report);
say({ acked, status: appendCoordinatorStatus(store) });
await store.close();
say({ closed: true });
