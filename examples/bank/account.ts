/**
 * A bank account as a decider. Amounts are integer cents. An account can go below zero down
 * to its overdraft limit; a frozen or closed account moves no money; only an empty account
 * closes. Transfers use their own commands so each side records the other account and the
 * transfer id (see transfer.ts).
 */
import { type Decider, DomainError } from '@annals/core';

export type AccountCommand =
  | { type: 'OpenAccount'; data: { owner: string; overdraftLimit: number }; id?: string }
  | { type: 'Deposit'; data: { amount: number }; id?: string }
  | { type: 'Withdraw'; data: { amount: number }; id?: string }
  | { type: 'DebitForTransfer'; data: { transferId: string; amount: number; to: string }; id?: string }
  | { type: 'CreditFromTransfer'; data: { transferId: string; amount: number; from: string }; id?: string }
  | { type: 'RefundTransfer'; data: { transferId: string; amount: number }; id?: string }
  | { type: 'FreezeAccount'; data: Record<string, never>; id?: string }
  | { type: 'CloseAccount'; data: Record<string, never>; id?: string };

export type AccountEvent =
  | { type: 'AccountOpened'; data: { owner: string; overdraftLimit: number } }
  | { type: 'MoneyDeposited'; data: { amount: number } }
  | { type: 'MoneyWithdrawn'; data: { amount: number } }
  | { type: 'TransferDebited'; data: { transferId: string; amount: number; to: string } }
  | { type: 'TransferCredited'; data: { transferId: string; amount: number; from: string } }
  | { type: 'TransferRefunded'; data: { transferId: string; amount: number } }
  | { type: 'AccountFrozen'; data: Record<string, never> }
  | { type: 'AccountClosed'; data: Record<string, never> };

export interface Account {
  status: 'none' | 'open' | 'frozen' | 'closed';
  owner: string | null;
  balance: number;
  overdraftLimit: number;
}

export class AccountNotOpen extends DomainError {
  constructor() {
    super('account-not-open', 'the account is not open');
  }
}
export class AccountAlreadyOpen extends DomainError {
  constructor() {
    super('account-already-open', 'the account is already open');
  }
}
export class AccountNotActive extends DomainError {
  constructor(status: Account['status']) {
    super('account-not-active', `the account is ${status}: no money moves`);
  }
}
export class InsufficientFunds extends DomainError {
  constructor(balance: number, amount: number, overdraftLimit: number) {
    super('insufficient-funds', `cannot take ${amount} from ${balance} with an overdraft limit of ${overdraftLimit}`);
  }
}
export class InvalidAmount extends DomainError {
  constructor(amount: unknown) {
    super('invalid-amount', `amounts are positive whole cents, not ${JSON.stringify(amount)}`);
  }
}
export class BalanceNotZero extends DomainError {
  constructor(balance: number) {
    super('balance-not-zero', `only an empty account closes; the balance is ${balance}`);
  }
}
export class UnknownCommand extends DomainError {
  constructor(type: unknown) {
    super('unknown-command', `unknown command ${JSON.stringify(type)}`);
  }
}

const amountOf = (amount: unknown): number => {
  if (!Number.isSafeInteger(amount) || (amount as number) <= 0) throw new InvalidAmount(amount);
  return amount as number;
};

function active(state: Account): void {
  if (state.status === 'none') throw new AccountNotOpen();
  if (state.status !== 'open') throw new AccountNotActive(state.status);
}

function canTake(state: Account, amount: number): void {
  if (state.balance - amount < -state.overdraftLimit) {
    throw new InsufficientFunds(state.balance, amount, state.overdraftLimit);
  }
}

export const bankAccount: Decider<AccountCommand, AccountEvent, Account> = {
  initialState: () => ({ status: 'none', owner: null, balance: 0, overdraftLimit: 0 }),

  decide(command, state): AccountEvent | AccountEvent[] {
    switch (command.type) {
      case 'OpenAccount': {
        if (state.status !== 'none') throw new AccountAlreadyOpen();
        const { owner, overdraftLimit } = command.data;
        if (!Number.isSafeInteger(overdraftLimit) || overdraftLimit < 0) throw new InvalidAmount(overdraftLimit);
        return { type: 'AccountOpened', data: { owner, overdraftLimit } };
      }
      case 'Deposit':
        active(state);
        return { type: 'MoneyDeposited', data: { amount: amountOf(command.data.amount) } };
      case 'Withdraw': {
        active(state);
        const amount = amountOf(command.data.amount);
        canTake(state, amount);
        return { type: 'MoneyWithdrawn', data: { amount } };
      }
      case 'DebitForTransfer': {
        active(state);
        const amount = amountOf(command.data.amount);
        canTake(state, amount);
        return { type: 'TransferDebited', data: { ...command.data, amount } };
      }
      case 'CreditFromTransfer':
        active(state);
        return { type: 'TransferCredited', data: { ...command.data, amount: amountOf(command.data.amount) } };
      case 'RefundTransfer':
        // A refund returns money already taken: it is owed even to a frozen account.
        if (state.status === 'none') throw new AccountNotOpen();
        return { type: 'TransferRefunded', data: { ...command.data, amount: amountOf(command.data.amount) } };
      case 'FreezeAccount':
        active(state);
        return { type: 'AccountFrozen', data: {} };
      case 'CloseAccount':
        if (state.status === 'none') throw new AccountNotOpen();
        if (state.status === 'closed') return [];
        if (state.balance !== 0) throw new BalanceNotZero(state.balance);
        return { type: 'AccountClosed', data: {} };
      default:
        throw new UnknownCommand((command as { type: unknown }).type);
    }
  },

  evolve(state, event): Account {
    switch (event.type) {
      case 'AccountOpened':
        return { ...state, status: 'open', owner: event.data.owner, overdraftLimit: event.data.overdraftLimit };
      case 'MoneyDeposited':
      case 'TransferCredited':
      case 'TransferRefunded':
        return { ...state, balance: state.balance + event.data.amount };
      case 'MoneyWithdrawn':
      case 'TransferDebited':
        return { ...state, balance: state.balance - event.data.amount };
      case 'AccountFrozen':
        return { ...state, status: 'frozen' };
      case 'AccountClosed':
        return { ...state, status: 'closed' };
      default:
        return state;
    }
  },
};

/** How an event changes a balance, in cents: the one place the ledger and tests agree on. */
export function balanceChange(event: { type: string; data: unknown }): number {
  const amount = (event.data as { amount?: number }).amount ?? 0;
  switch (event.type) {
    case 'MoneyDeposited':
    case 'TransferCredited':
    case 'TransferRefunded':
      return amount;
    case 'MoneyWithdrawn':
    case 'TransferDebited':
      return -amount;
    default:
      return 0;
  }
}
