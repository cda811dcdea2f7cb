/**
 * A separate process for the crash test: runs the test's counting projection slowly, so it can
 * be killed with SIGKILL in the middle of a batch. Arguments: database url, schema.
 */
import { createPostgresClient, openEventStore, projections } from '../../src/index.js';

const [url, schema] = process.argv.slice(2) as [string, string];
const store = await openEventStore({
  client: createPostgresClient({ connectionString: url, applicationName: 'annals_child' }),
  schema,
  migrate: false,
});
projections(store).run(
  {
    name: 'balances',
    categories: ['account'],
    handlers: {
      Deposited: async (event, tx) => {
        await tx.query(
          `insert into "${schema}".rm_balances (account, deposits, total) values ($1, 1, $2)
           on conflict (account) do update set deposits = rm_balances.deposits + 1, total = rm_balances.total + $2`,
          [event.streamId, Number((event.data as { amount: number }).amount)],
        );
        // Slow enough to be caught mid-batch.
        if (event.position % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      },
    },
  },
  { batchSize: 500 },
);
console.log('running');
