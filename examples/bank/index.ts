/** Bank accounts on Annals: the example domain of the demo, the README and the tests. */
export * from './account.js';
export * from './balances-projection.js';
export * from './customer.js';
export * from './ledger.js';
export * from './transfer.js';
