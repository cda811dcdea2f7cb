/**
 * The accounts read model as a projection: one JSON document per account in the
 * `account-balances` collection, kept by the projection runner in step with the log
 * (exactly once, in the same transaction as its checkpoint).
 */
import type { Projection } from '@annals/core';
import { balanceChange } from './account.js';

export interface AccountSummary {
  owner: string;
  status: 'open' | 'frozen' | 'closed';
  /** Cents. */
  balance: number;
  movements: number;
}

export const balancesCollection = 'account-balances';

const blank: AccountSummary = { owner: '?', status: 'open', balance: 0, movements: 0 };

export const balancesProjection: Projection = {
  name: 'account-balances',
  categories: ['account'],
  handleBatch: async (events, _tx, documents) => {
    for (const event of events) {
      await documents.update<AccountSummary & Record<string, string | number>>(
        balancesCollection,
        event.streamId,
        { ...blank },
        (summary) => {
          switch (event.type) {
            case 'AccountOpened':
              return { ...summary, owner: String((event.data as { owner: string }).owner), status: 'open' };
            case 'AccountFrozen':
              return { ...summary, status: 'frozen' };
            case 'AccountClosed':
              return { ...summary, status: 'closed' };
            default: {
              const change = balanceChange(event);
              return change === 0
                ? summary
                : { ...summary, balance: summary.balance + change, movements: summary.movements + 1 };
            }
          }
        },
      );
    }
  },
};
