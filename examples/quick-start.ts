import { auditTrail, ConcurrencyError, openEventStore, toArray } from '@annals/core';
import { createPgliteClient } from '@annals/core/pglite';

// An embedded database in memory; for a server: createPostgresClient({ connectionString }).
const store = await openEventStore({ client: createPgliteClient() });

// Append with an expected version: 'no-stream', 'stream-exists', 'any' or a number.
const opened = await store.append(
  'account-42',
  [
    { type: 'AccountOpened', data: { owner: 'Ada' }, metadata: { actor: 'ada', reason: 'signup' } },
    { type: 'MoneyDeposited', data: { amount: 100 }, metadata: { actor: 'ada' } },
  ],
  { expectedVersion: 'no-stream' },
);
console.log(opened.streamVersion, opened.positions, opened.duplicate); // 2 [1, 2] false

// A stale expected version is refused; nothing is stored.
try {
  await store.append('account-42', [{ type: 'MoneyWithdrawn', data: { amount: 500 } }], { expectedVersion: 1 });
} catch (error) {
  if (error instanceof ConcurrencyError) console.log(error.expected, error.actual); // 1 2
}

// Retrying with the same event id returns the first result and stores nothing twice.
const deposit = { id: '0190a6f2-8c1e-7b3a-9f00-0123456789ab', type: 'MoneyDeposited', data: { amount: 5 } };
await store.append('account-42', [deposit], { expectedVersion: 2 });
const retry = await store.append('account-42', [deposit], { expectedVersion: 2 });
console.log(retry.duplicate, retry.streamVersion); // true 3

// Several streams, all or nothing.
await store.appendMulti([
  { streamId: 'account-42', events: [{ type: 'MoneyWithdrawn', data: { amount: 30 } }], expectedVersion: 3 },
  { streamId: 'account-7', events: [{ type: 'MoneyDeposited', data: { amount: 30 } }], expectedVersion: 'no-stream' },
]);

// Read a stream (forward or backward, from a version, with a limit), a page at a time.
for await (const event of store.readStream('account-42', { direction: 'backward', limit: 2 })) {
  console.log(event.streamVersion, event.type, event.data);
}

// Read the global log after a checkpoint, filtered by category and/or event type.
const deposits = await toArray(store.readAll({ after: 0, categories: ['account'], eventTypes: ['MoneyDeposited'] }));
console.log(deposits.map((e) => e.position)); // [2, 3, 5]

// Everything beyond the log itself is a facet of the store: a function of it, like its audit trail.
const [first] = await toArray(auditTrail(store).byActor('ada', { limit: 1 }));
console.log(first?.type, (await store.getStream('account-42'))?.version, await store.headPosition()); // AccountOpened 4 5
await store.close();
