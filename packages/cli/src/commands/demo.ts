/**
 * `annals demo`: a tour of the event store on two bank accounts. Appends with optimistic
 * concurrency, a lost race, an idempotent retry, an atomic two-stream transfer, bad input,
 * then reads the streams and the global log back and travels to past balances.
 * Each run uses new account ids, so it can run again on the same database.
 */
import { randomBytes } from 'node:crypto';
import { type AnnalsError, type EventStore, type RecordedEvent, toArray } from '@annals/core';
import { type ConnectionFlags, openStore } from '../config.js';

type AccountEvent =
  | { type: 'AccountOpened'; data: { owner: string } }
  | { type: 'MoneyDeposited'; data: { amount: number } }
  | { type: 'MoneyWithdrawn'; data: { amount: number } };

interface Account {
  owner: string | null;
  balance: number;
}

/** The account's state after one more event: a plain fold, no I/O. */
export function evolve(state: Account, event: RecordedEvent): Account {
  switch (event.type) {
    case 'AccountOpened':
      return { ...state, owner: String((event.data as { owner: string }).owner) };
    case 'MoneyDeposited':
      return { ...state, balance: state.balance + Number((event.data as { amount: number }).amount) };
    case 'MoneyWithdrawn':
      return { ...state, balance: state.balance - Number((event.data as { amount: number }).amount) };
    default:
      return state;
  }
}

const initial: Account = { owner: null, balance: 0 };
const fold = (events: RecordedEvent[]) => events.reduce(evolve, initial);
const euros = (n: number) => `€${n}`;

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
  const context = { correlationId: `demo-${run}` };
  const startedAfter = await store.headPosition();
  const step = (title: string) => console.log(`\n== ${title}`);

  console.log(`Annals demo on ${description}`);
  console.log(`The log holds ${startedAfter} events before this run.`);

  step('Append with optimistic concurrency');
  const events: AccountEvent[] = [
    { type: 'AccountOpened', data: { owner: 'Ada' } },
    { type: 'MoneyDeposited', data: { amount: 100 } },
  ];
  let result = await store.append(
    ada,
    events.map((e) => ({ ...e, metadata: { ...context, actor: 'teller-1', reason: 'OpenAccount' } })),
    { expectedVersion: 'no-stream' },
  );
  console.log(
    `${ada}: opened with a deposit -> version ${result.streamVersion}, positions ${result.positions.join(', ')}`,
  );
  result = await store.append(
    ada,
    [{ type: 'MoneyDeposited', data: { amount: 50 }, metadata: { ...context, actor: 'ada', reason: 'Deposit' } }],
    { expectedVersion: result.streamVersion },
  );
  console.log(`${ada}: deposited ${euros(50)} at expected version 2 -> version ${result.streamVersion}`);

  step('Two tellers race to withdraw at the same version');
  const race = await Promise.allSettled(
    [30, 120].map((amount, i) =>
      store.append(
        ada,
        [{ type: 'MoneyWithdrawn', data: { amount }, metadata: { ...context, actor: `teller-${i + 1}` } }],
        { expectedVersion: 3 },
      ),
    ),
  );
  for (const [i, outcome] of race.entries()) {
    if (outcome.status === 'fulfilled') {
      console.log(`teller-${i + 1}: won -> version ${outcome.value.streamVersion}`);
    } else {
      const error = outcome.reason as AnnalsError;
      console.log(`teller-${i + 1}: lost with ${error.code}: ${error.message}`);
    }
  }

  step('A retried append is stored once');
  const deposit = {
    id: crypto.randomUUID(),
    type: 'MoneyDeposited',
    data: { amount: 25 },
    metadata: { ...context, actor: 'ada' },
  };
  const first = await store.append(ada, [deposit]);
  const retry = await store.append(ada, [deposit]);
  console.log(
    `first send: version ${first.streamVersion}, position ${first.positions[0]}, duplicate ${first.duplicate}`,
  );
  console.log(
    `retry:      version ${retry.streamVersion}, position ${retry.positions[0]}, duplicate ${retry.duplicate}`,
  );

  step('A transfer writes two streams atomically');
  const [debit, credit] = await store.appendMulti([
    {
      streamId: ada,
      events: [
        { type: 'MoneyWithdrawn', data: { amount: 40 }, metadata: { ...context, actor: 'ada', reason: 'Transfer' } },
      ],
      expectedVersion: first.streamVersion,
    },
    {
      streamId: bob,
      events: [
        { type: 'AccountOpened', data: { owner: 'Bob' }, metadata: { ...context, actor: 'ada' } },
        { type: 'MoneyDeposited', data: { amount: 40 }, metadata: { ...context, actor: 'ada', reason: 'Transfer' } },
      ],
      expectedVersion: 'no-stream',
    },
  ]);
  console.log(`${ada} -> version ${debit?.streamVersion}; ${bob} -> version ${credit?.streamVersion}`);

  step('Bad input is refused and changes nothing');
  const before = await store.headPosition();
  for (const bad of [
    () => store.append(ada, [{ type: 'MoneyDeposited', data: { amount: 10n } as never }]),
    () => store.append('', [{ type: 'MoneyDeposited', data: { amount: 10 } }]),
    () => store.append(ada, [{ type: 'MoneyDeposited', data: { amount: 10 } }], { expectedVersion: -3 }),
  ]) {
    try {
      await bad();
    } catch (error) {
      console.log(`${(error as AnnalsError).code}: ${(error as Error).message}`);
    }
  }
  console.log(`log head before ${before}, after ${await store.headPosition()}`);

  step(`The history of ${ada}`);
  const history = await toArray(store.readStream(ada));
  for (const event of history) {
    const state = fold(history.filter((e) => e.streamVersion <= event.streamVersion));
    console.log(
      `v${event.streamVersion}  #${event.position}  ${event.type.padEnd(14)} ${JSON.stringify(event.data).padEnd(16)} by ${String(event.metadata.actor).padEnd(9)} -> balance ${euros(state.balance)}`,
    );
  }

  step('Time travel');
  console.log(`balance now:                     ${euros(fold(history).balance)}`);
  console.log(`balance as of version 2:         ${euros(fold(history.filter((e) => e.streamVersion <= 2)).balance)}`);
  const middle = history[Math.floor(history.length / 2)] as RecordedEvent;
  console.log(
    `balance as of global position ${middle.position}: ${euros(fold(history.filter((e) => e.position <= middle.position)).balance)}`,
  );
  const firstTime = (history[0] as RecordedEvent).recordedAt;
  console.log(
    `balance as of ${firstTime.toISOString()}: ${euros(fold(history.filter((e) => e.recordedAt <= firstTime)).balance)}`,
  );

  step('The global log since this run began, category "account"');
  for await (const event of store.readAll({ after: startedAfter, categories: ['account'] })) {
    console.log(`#${event.position}  ${event.streamId}@${event.streamVersion}  ${event.type}`);
  }
  console.log(`\nThe log now holds ${await store.headPosition()} events. Run again to add more.`);
}
