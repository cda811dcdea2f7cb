/**
 * `annals demo`: a tour of Annals on the bank example. Commands through a decider, a refused
 * rule, a repeated command, two processes racing, a transfer with its causal chain and a
 * refund, refused bad input, then an account's history, its balance at past moments and the
 * read models. Each run uses new account ids, so it can run again on the same database.
 */
import { randomBytes } from 'node:crypto';
import { type AnnalsError, commandHandler, type EventStore, type RecordedEvent, toArray } from '@annals/core';
import {
  type AccountSummary,
  balancesCollection,
  balancesProjection,
  bankAccount,
  catchUp,
  transfer,
} from '@annals/example-bank';
import { type ConnectionFlags, openStore } from '../config.js';

const euros = (cents: number) => `€${(cents / 100).toFixed(2)}`;

export async function demoCommand(flags: ConnectionFlags): Promise<void> {
  const { store, description } = await openStore(flags);
  try {
    await runDemo(store, description);
  } finally {
    await store.close();
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
  console.log(`${ada} is still at version ${await store.streamVersion(ada)}`);

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
      `v${event.streamVersion}  #${String(event.position).padEnd(4)} ${event.type.padEnd(16)} by ${String(event.metadata.actor).padEnd(9)} for ${String(event.metadata.reason).padEnd(24)} -> ${euros(balance)}`,
    );
  }

  step('Time travel');
  const at = async (version: number) => euros((await accounts.load(ada, { version })).state.balance);
  const versionAt = (pick: (e: RecordedEvent) => boolean) => history.filter(pick).at(-1)?.streamVersion ?? 0;
  const middle = history[Math.floor(history.length / 2)] as RecordedEvent;
  console.log(`balance now:              ${euros((await accounts.load(ada)).state.balance)}`);
  console.log(`as of version 2:          ${await at(2)}`);
  console.log(`as of global position ${middle.position}: ${await at(versionAt((e) => e.position <= middle.position))}`);
  const firstTime = (history[0] as RecordedEvent).recordedAt;
  console.log(`as of ${firstTime.toISOString()}: ${await at(versionAt((e) => e.recordedAt <= firstTime))}`);

  step('A read model built by a projection, then queried');
  const built = await store.rebuildProjection(balancesProjection);
  console.log(`projection ${built.name}: at position ${built.position} of ${built.head}, lag ${built.lag}`);
  for (const id of [ada, bob, eve]) {
    const summary = await store.documents.get<AccountSummary & Record<string, string | number>>(balancesCollection, id);
    console.log(
      `${id}: ${summary?.owner}, ${summary?.status}, ${euros(summary?.balance ?? 0)} after ${summary?.movements} movements`,
    );
  }
  const closed = await store.documents.find(balancesCollection, { match: { status: 'closed' }, limit: 1000 });
  console.log(`closed accounts in the read model: ${closed.length}`);
  const ledger = await catchUp(store);
  const supply = [...ledger.balances.values()].reduce((sum, b) => sum + b, 0);
  console.log(
    `money in all ${ledger.balances.size} accounts: ${euros(supply)} (only deposits and withdrawals change it)`,
  );
  console.log(`\nThe log now holds ${await store.headPosition()} events. Run again to add more.`);
}
