/** The bank example: rules as specifications, then accounts and transfers on every backend. */

import { type CommandHandler, commandHandler, type EventStore, projections, toArray } from '@annals/core';
import { deciderSpecification } from '@annals/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backends, capabilities, openTestStore, type TestStore } from '../../packages/core/test/support/backends.js';
import {
  type Account,
  type AccountCommand,
  type AccountEvent,
  AccountNotActive,
  BalanceNotZero,
  balanceChange,
  bankAccount,
  InsufficientFunds,
  InvalidAmount,
  UnknownCommand,
} from './account.js';
import { type AccountSummary, balancesCollection, balancesProjection } from './balances-projection.js';
import { catchUp } from './ledger.js';
import { transfer } from './transfer.js';

const opened = (overdraftLimit = 0): AccountEvent => ({
  type: 'AccountOpened',
  data: { owner: 'Ada', overdraftLimit },
});

describe('bank account rules', () => {
  const spec = deciderSpecification(bankAccount);

  it('deposits, withdraws within the overdraft limit, and refuses beyond it', () => {
    spec
      .given([opened()])
      .when({ type: 'Deposit', data: { amount: 100 } })
      .then([{ type: 'MoneyDeposited', data: { amount: 100 } }]);
    spec
      .given([opened(50), { type: 'MoneyDeposited', data: { amount: 100 } }])
      .when({ type: 'Withdraw', data: { amount: 150 } })
      .then([{ type: 'MoneyWithdrawn', data: { amount: 150 } }]);
    spec
      .given([opened(50), { type: 'MoneyDeposited', data: { amount: 100 } }])
      .when({ type: 'Withdraw', data: { amount: 151 } })
      .thenThrows(InsufficientFunds);
  });

  it('moves no money on a frozen account, but refunds it', () => {
    const frozen = [opened(), { type: 'AccountFrozen', data: {} } as AccountEvent];
    spec
      .given(frozen)
      .when({ type: 'Deposit', data: { amount: 1 } })
      .thenThrows(AccountNotActive);
    spec
      .given(frozen)
      .when({ type: 'CreditFromTransfer', data: { transferId: 't', amount: 5, from: 'x' } })
      .thenThrows(AccountNotActive);
    spec
      .given(frozen)
      .when({ type: 'RefundTransfer', data: { transferId: 't', amount: 5 } })
      .then([{ type: 'TransferRefunded', data: { transferId: 't', amount: 5 } }]);
  });

  it('closes only an empty account, once', () => {
    spec
      .given([opened(), { type: 'MoneyDeposited', data: { amount: 1 } }])
      .when({ type: 'CloseAccount', data: {} })
      .thenThrows(BalanceNotZero);
    spec
      .given([opened()])
      .when({ type: 'CloseAccount', data: {} })
      .then([{ type: 'AccountClosed', data: {} }]);
    spec
      .given([opened(), { type: 'AccountClosed', data: {} }])
      .when({ type: 'CloseAccount', data: {} })
      .then([]);
  });

  it('refuses bad amounts and unknown commands', () => {
    for (const amount of [0, -5, 1.5, Number.NaN, '10']) {
      spec
        .given([opened()])
        .when({ type: 'Deposit', data: { amount: amount as number } })
        .thenThrows(InvalidAmount);
    }
    spec
      .given([opened()])
      .when({ type: 'Launch', data: {} } as never)
      .thenThrows(UnknownCommand);
  });
});

describe.each(backends)('the bank on $name', (backend) => {
  let t: TestStore & { cleanup: () => Promise<void> };
  let store: EventStore;
  let accounts: CommandHandler<AccountCommand, AccountEvent, Account>;
  beforeEach(async () => {
    t = await openTestStore(backend);
    store = t.store;
    // Hot accounts see dozens of commands racing: allow as many retries.
    accounts = commandHandler(store, bankAccount, {
      name: 'account',
      snapshots: { every: 50, version: 1 },
      maxRetries: 100,
    });
  });
  afterEach(async () => {
    await t.cleanup();
  });

  const open = async (id: string, amount: number, overdraftLimit = 0) => {
    await accounts.handle(id, { type: 'OpenAccount', data: { owner: id, overdraftLimit }, id: `${id}/open` });
    if (amount > 0) await accounts.handle(id, { type: 'Deposit', data: { amount }, id: `${id}/initial` });
  };
  const balance = async (id: string) => (await accounts.load(id)).state.balance;

  it('transfers between two accounts, with the causal chain on the events', async () => {
    await open('account-a', 100);
    await open('account-b', 0);
    const outcome = await transfer(
      accounts,
      { transferId: 't-1', from: 'account-a', to: 'account-b', amount: 30 },
      { actor: 'ada', correlationId: 'req-7' },
    );
    expect(outcome.status).toBe('completed');
    if (outcome.status !== 'completed') return;
    expect(await balance('account-a')).toBe(70);
    expect(await balance('account-b')).toBe(30);
    expect(outcome.debit.metadata).toMatchObject({ actor: 'ada', correlationId: 'req-7', reason: 'Transfer' });
    expect(outcome.credit.metadata).toMatchObject({
      actor: 'ada',
      correlationId: 'req-7',
      causationId: outcome.debit.id,
    });
  });

  it('refunds the source when the target refuses the credit, and rejects what the source cannot pay', async () => {
    await open('account-a', 100);
    await open('account-c', 0);
    await accounts.handle('account-c', { type: 'CloseAccount', data: {} });
    const refunded = await transfer(accounts, { transferId: 't-2', from: 'account-a', to: 'account-c', amount: 40 });
    expect(refunded).toMatchObject({ status: 'refunded', reason: 'account-not-active' });
    const missing = await transfer(accounts, {
      transferId: 't-3',
      from: 'account-a',
      to: 'account-nobody',
      amount: 40,
    });
    expect(missing).toMatchObject({ status: 'refunded', reason: 'account-not-open' });
    const rejected = await transfer(accounts, { transferId: 't-4', from: 'account-a', to: 'account-c', amount: 500 });
    expect(rejected).toEqual({ status: 'rejected', reason: 'insufficient-funds' });
    expect(await balance('account-a')).toBe(100);
    const types = (await toArray(store.readStream('account-a'))).map((e) => e.type);
    expect(types).toEqual([
      'AccountOpened',
      'MoneyDeposited',
      'TransferDebited',
      'TransferRefunded',
      'TransferDebited',
      'TransferRefunded',
    ]);
  });

  it('finishes a transfer interrupted after its debit, without debiting twice', async () => {
    await open('account-a', 100);
    await open('account-b', 0);
    // The process stopped right after the debit...
    await accounts.handle('account-a', {
      type: 'DebitForTransfer',
      id: 't-5/debit',
      data: { transferId: 't-5', amount: 25, to: 'account-b' },
    });
    // ...and is run again from the start, twice at once.
    const runs = await Promise.all([
      transfer(accounts, { transferId: 't-5', from: 'account-a', to: 'account-b', amount: 25 }),
      transfer(accounts, { transferId: 't-5', from: 'account-a', to: 'account-b', amount: 25 }),
    ]);
    expect(runs.map((r) => r.status)).toEqual(['completed', 'completed']);
    expect(await balance('account-a')).toBe(75);
    expect(await balance('account-b')).toBe(25);
  });

  it('keeps the money supply under many concurrent transfers, and every balance equals its events', async () => {
    // At full size only where transfers really run side by side (PGlite runs one query at a time).
    const parallel = capabilities(backend).concurrentConnections;
    const accountCount = parallel ? 1000 : 100;
    const transfers = parallel ? 10_000 : 600;
    const initial = 1000;
    const ids = Array.from({ length: accountCount }, (_, i) => `account-${i}`);
    await runConcurrently(ids, 32, (id) => open(id, initial, 200));
    // A few hot accounts take part in a quarter of the transfers.
    const pick = (i: number) =>
      i % 4 === 0 ? ids[i % 5] : ids[Math.floor(Math.abs(Math.sin(i + 1)) * 1e6) % accountCount];
    const outcomes = await runConcurrently(
      Array.from({ length: transfers }, (_, i) => i),
      32,
      async (i) => {
        const from = pick(i) as string;
        let to = pick(i * 7 + 3) as string;
        if (to === from) to = ids[(ids.indexOf(from) + 1) % accountCount] as string;
        return transfer(accounts, { transferId: `t-${i}`, from, to, amount: 1 + (i % 300) });
      },
    );
    const completed = outcomes.filter((o) => o.status === 'completed').length;
    expect(completed).toBeGreaterThan(transfers / 2);

    const ledger = await catchUp(store);
    const total = [...ledger.balances.values()].reduce((sum, b) => sum + b, 0);
    expect(total).toBe(accountCount * initial);
    // The projected read model agrees, account by account.
    await projections(store).rebuild(balancesProjection);
    const summaries = await projections(store).documents.find<AccountSummary & Record<string, string | number>>(
      balancesCollection,
      {
        limit: 10_000,
      },
    );
    expect(summaries).toHaveLength(accountCount);
    for (const { id, data } of summaries) expect(data.balance, id).toBe(ledger.balances.get(id));
    // Every balance: as the decider folds it, as the ledger sums it, as its events add up.
    const sample = ids.filter((_, i) => i < 5 || i % Math.ceil(accountCount / 40) === 0);
    for (const id of sample) {
      const events = await toArray(store.readStream(id));
      const sum = events.reduce((s, e) => s + balanceChange(e), 0);
      expect(await balance(id), id).toBe(sum);
      expect(ledger.balances.get(id), id).toBe(sum);
      expect(sum).toBeGreaterThanOrEqual(-200);
    }
  });
});

/** Runs `work` over `items` with at most `concurrency` at once; results in input order. */
async function runConcurrently<T, R>(items: T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i] as T);
      }
    }),
  );
  return results;
}
