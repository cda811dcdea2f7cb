/**
 * `annals demo`: a tour of Annals on the bank example. Commands through a decider, a refused
 * rule, a repeated command, two processes racing, a transfer with its causal chain and a
 * refund, refused bad input, then an account's history, its balance at past moments and the
 * read models. Each run uses new account ids, so it can run again on the same database.
 */
import { randomBytes } from 'node:crypto';
import {
  type AnnalsError,
  auditTrail,
  commandHandler,
  type EventStore,
  integrity,
  openEventStore,
  personalData,
  projections,
  type RecordedEvent,
  type SqlClient,
  timeTravel,
  toArray,
} from '@annals/core';
import {
  type AccountSummary,
  balancesCollection,
  balancesProjection,
  bankAccount,
  bankCustomer,
  bankPersonalData,
  catchUp,
  transfer,
} from '@annals/example-bank';
import { type ConnectionFlags, connect } from '../config.js';
import { printTree } from './audit.js';
import { formatChange } from './time-travel.js';

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`;

export async function demoCommand(flags: ConnectionFlags): Promise<void> {
  const { client, schema, description } = await connect(flags);
  try {
    const store = await openEventStore({ client, schema, closeClient: false, personalData: bankPersonalData });
    try {
      await runDemo(store, description);
      await tamperDemo(client);
    } finally {
      await store.close();
    }
  } finally {
    await client.close();
  }
}

async function runDemo(store: EventStore, description: string): Promise<void> {
  const run = randomBytes(3).toString('hex');
  const ada = `account-ada${run}`;
  const bob = `account-bob${run}`;
  const eve = `account-eve${run}`;
  const accounts = commandHandler(store, bankAccount, { name: 'account', snapshots: { every: 100, version: 1 } });
  const startedAfter = await store.headPosition();
  const step = (title: string) => console.log(`\n== ${title}`);
  const failure = (error: unknown) => {
    const e = error as AnnalsError & { reason?: string };
    return `${e.code}${e.reason ? ` (${e.reason})` : ''}: ${e.message}`;
  };

  console.log(`Annals demo on ${description}`);
  console.log(`The log holds ${startedAfter} events before this run.`);

  step('Commands: a decider decides, the handler appends and stamps who and why');
  for (const [id, owner] of [
    [ada, 'Ada'],
    [bob, 'Bob'],
    [eve, 'Eve'],
  ] as const) {
    await accounts.handle(id, { type: 'OpenAccount', data: { owner, overdraftLimit: 5000 } }, { actor: 'teller-1' });
  }
  let result = await accounts.handle(ada, { type: 'Deposit', data: { amount: 10_000 } }, { actor: 'ada' });
  console.log(
    `${ada}: opened and deposited ${euros(10_000)} -> balance ${euros(result.state.balance)}, version ${result.streamVersion}`,
  );

  step('A business rule refuses a command; nothing is appended');
  try {
    await accounts.handle(ada, { type: 'Withdraw', data: { amount: 20_000 } }, { actor: 'ada' });
  } catch (error) {
    console.log(`withdraw ${euros(20_000)}: ${failure(error)}`);
  }
  console.log(`${ada} is still at version ${(await store.getStream(ada))?.version ?? 0}`);

  step('The same command sent twice is handled once');
  const deposit = { type: 'Deposit' as const, data: { amount: 2_500 }, id: `deposit-${run}` };
  result = await accounts.handle(ada, deposit, { actor: 'ada' });
  const again = await accounts.handle(ada, deposit, { actor: 'ada' });
  console.log(
    `first:  version ${result.streamVersion}, balance ${euros(result.state.balance)}, duplicate ${result.duplicate}`,
  );
  console.log(
    `repeat: version ${again.streamVersion}, balance ${euros(again.state.balance)}, duplicate ${again.duplicate}`,
  );

  step('Two tellers decide on the same version; the store lets one append');
  const seen = await accounts.load(ada);
  const race = await Promise.allSettled(
    [1, 2].map((teller) =>
      store.append(
        ada,
        [{ type: 'MoneyWithdrawn', data: { amount: 1_000 * teller }, metadata: { actor: `teller-${teller}` } }],
        { expectedVersion: seen.streamVersion },
      ),
    ),
  );
  for (const [i, outcome] of race.entries()) {
    console.log(
      outcome.status === 'fulfilled'
        ? `teller-${i + 1}: won -> version ${outcome.value.streamVersion}`
        : `teller-${i + 1}: lost with ${failure(outcome.reason)} (a command handler reloads and retries)`,
    );
  }

  step('A transfer: a process over two streams, with its causal chain');
  const done = await transfer(
    accounts,
    { transferId: `t1-${run}`, from: ada, to: bob, amount: 3_000 },
    { actor: 'ada' },
  );
  if (done.status === 'completed') {
    console.log(`${done.debit.type} on ${ada} (event ${done.debit.id})`);
    console.log(`${done.credit.type} on ${bob}, caused by ${done.credit.metadata.causationId}`);
    console.log(`both in request ${done.credit.metadata.correlationId}`);
    console.log('the causal tree of that request, from the audit trail:');
    printTree(await auditTrail(store).causalTree(done.credit.metadata.correlationId as string), 1);
  }
  await accounts.handle(eve, { type: 'CloseAccount', data: {} }, { actor: 'eve', reason: 'moving abroad' });
  const refunded = await transfer(
    accounts,
    { transferId: `t2-${run}`, from: ada, to: eve, amount: 500 },
    { actor: 'ada' },
  );
  console.log(
    `transfer to the closed ${eve}: ${refunded.status}${'reason' in refunded ? ` (${refunded.reason})` : ''}`,
  );

  step('Bad input is refused and changes nothing');
  const before = await store.headPosition();
  for (const bad of [
    () => store.append(ada, [{ type: 'MoneyDeposited', data: { amount: 10n } as never }]),
    () => store.append('', [{ type: 'MoneyDeposited', data: { amount: 10 } }]),
    () => store.append(ada, [{ type: 'MoneyDeposited', data: { amount: 10 } }], { expectedVersion: -3 }),
    () => accounts.handle(ada, { type: 'Deposit', data: { amount: -5 } }),
  ]) {
    try {
      await bad();
    } catch (error) {
      console.log(failure(error));
    }
  }
  console.log(`log head before ${before}, after ${await store.headPosition()}`);

  step(`The history of ${ada}: who changed what, when and why`);
  const history = await toArray(store.readStream(ada));
  let balance = 0;
  for (const event of history) {
    balance = bankAccount.evolve({ status: 'open', owner: null, balance, overdraftLimit: 0 }, event as never).balance;
    console.log(
      `v${event.streamVersion}  #${String(event.position).padEnd(4)} ${event.type.padEnd(16)} by ${String(event.metadata.actor).padEnd(9)} for ${String(event.metadata.reason ?? '-').padEnd(24)} -> ${euros(balance)}`,
    );
  }

  step('Time travel');
  const travel = timeTravel(store, bankAccount);
  const euro = async (at: Parameters<typeof travel.stateAt>[1]) => euros((await travel.stateAt(ada, at)).state.balance);
  const middle = history[Math.floor(history.length / 2)] as RecordedEvent;
  const secondTime = (history[1] as RecordedEvent).recordedAt;
  console.log(`balance now:                                ${euros((await accounts.load(ada)).state.balance)}`);
  console.log(`as of version 2:                            ${await euro({ version: 2 })}`);
  console.log(
    `as of global position ${String(middle.position).padEnd(21)} ${await euro({ position: middle.position })}`,
  );
  console.log(`as of ${secondTime.toISOString()}:            ${await euro({ time: secondTime })}`);
  console.log('step by step, what the transfer changed:');
  const debit = history.find((e) => e.type === 'TransferDebited') as RecordedEvent;
  for await (const { event, changes } of travel.replay(ada, {
    fromVersion: debit.streamVersion,
    toVersion: debit.streamVersion,
  })) {
    for (const change of changes) console.log(`  v${event.streamVersion} ${event.type}: ${formatChange(change)}`);
  }
  try {
    await travel.stateAt(ada, { version: 999 });
  } catch (error) {
    console.log(`as of version 999: ${failure(error)}`);
  }

  step('Personal data: encrypted per customer, erased without rewriting history');
  const customers = commandHandler(store, bankCustomer, { name: 'customer' });
  const customerId = `c${run}`;
  await customers.handle(
    `customer-${customerId}`,
    { type: 'RegisterCustomer', data: { customerId, name: 'Ada Lovelace', email: 'ada@example.org' } },
    { actor: 'teller-1' },
  );
  const shown = async () => {
    const [event] = await toArray(store.readStream(`customer-${customerId}`));
    return `${JSON.stringify(event?.data)}${event?.redacted ? ` (redacted: ${event.redacted.join(', ')})` : ''}`;
  };
  console.log(`customer-${customerId} reads:   ${await shown()}`);
  const forgotten = await personalData(store).forget(customerId, { actor: 'dpo', reason: 'erasure request' });
  console.log(`forgotten (key deleted, recorded at position ${forgotten.position} in $subject-${customerId})`);
  console.log(`customer-${customerId} now reads: ${await shown()}`);
  await integrity(store).seal();
  const check = await integrity(store).verify();
  console.log(`the log is untouched: verify ${check.ok ? 'passes' : 'FAILS'} over ${check.checked} sealed events`);

  step('A read model built by a projection, then queried');
  const built = await projections(store).rebuild(balancesProjection);
  console.log(`projection ${built.name}: at position ${built.position} of ${built.head}, lag ${built.lag}`);
  for (const id of [ada, bob, eve]) {
    const summary = await projections(store).documents.get<AccountSummary & Record<string, string | number>>(
      balancesCollection,
      id,
    );
    console.log(
      `${id}: ${summary?.owner}, ${summary?.status}, ${euros(summary?.balance ?? 0)} after ${summary?.movements} movements`,
    );
  }
  const closed = await projections(store).documents.find(balancesCollection, {
    match: { status: 'closed' },
    limit: 1000,
  });
  console.log(`closed accounts in the read model: ${closed.length}`);
  const ledger = await catchUp(store);
  const supply = [...ledger.balances.values()].reduce((sum, b) => sum + b, 0);
  console.log(
    `money in all ${ledger.balances.size} accounts: ${euros(supply)} (only deposits and withdrawals change it)`,
  );
  console.log(`\nThe log now holds ${await store.headPosition()} events. Run again to add more.`);
  console.log(
    'Browse them in the admin UI: run `annals serve` (`npm run serve` in the workspace), open http://127.0.0.1:3000/ui',
  );
}

/**
 * Tamper evidence, in a scratch schema dropped afterwards: someone with superuser rights
 * edits a stored event past the immutability trigger; verify names it.
 */
async function tamperDemo(client: SqlClient): Promise<void> {
  console.log('\n== Tamper evidence: a superuser edits a sealed event; verify names it');
  const schema = `annals_demo_tamper_${randomBytes(3).toString('hex')}`;
  const store = await openEventStore({ client, schema, closeClient: false });
  try {
    await store.append('account-x', [
      { type: 'AccountOpened', data: { owner: 'Mallory', overdraftLimit: 0 } },
      { type: 'MoneyDeposited', data: { amount: 100 } },
    ]);
    await store.append('account-y', [{ type: 'AccountOpened', data: { owner: 'Yves', overdraftLimit: 0 } }]);
    await integrity(store).seal();
    console.log(`before: verify ${(await integrity(store).verify()).ok ? 'passes' : 'fails'}`);
    try {
      await client.transaction(async (tx) => {
        await tx.exec(`set local session_replication_role = replica;
          update "${schema}".events set data = '{"amount": 1000000}' where position = 2`);
      });
    } catch (error) {
      console.log(`skipped: editing past the trigger needs a superuser (${(error as Error).message})`);
      return;
    }
    const report = await integrity(store).verify();
    console.log(`after:  verify ${report.ok ? 'passes' : 'fails'}; first broken link: ${report.broken[0]?.message}`);
  } finally {
    await store.close();
    await client.exec(`drop schema if exists "${schema}" cascade`);
  }
}
