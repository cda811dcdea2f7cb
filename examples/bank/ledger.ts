/**
 * The read model of the bank: every account's balance and a ledger of money movements, built
 * by folding the global log of the `account` category from a checkpoint. Plain data, kept in
 * memory; `catchUp` continues from where the last call stopped.
 */
import type { EventStore, RecordedEvent } from '@annals/core';
import { balanceChange } from './account.js';

export interface LedgerEntry {
  position: number;
  account: string;
  type: string;
  /** Cents, signed. */
  change: number;
  balance: number;
  at: Date;
  actor: string | undefined;
  transferId: string | undefined;
}

export interface Ledger {
  checkpoint: number;
  balances: Map<string, number>;
  entries: LedgerEntry[];
}

export const emptyLedger = (): Ledger => ({ checkpoint: 0, balances: new Map(), entries: [] });

/** The ledger after one more event: pure. */
export function applyToLedger(ledger: Ledger, event: RecordedEvent): Ledger {
  const change = balanceChange(event);
  const balance = (ledger.balances.get(event.streamId) ?? 0) + change;
  if (change !== 0) {
    ledger.balances.set(event.streamId, balance);
    ledger.entries.push({
      position: event.position,
      account: event.streamId,
      type: event.type,
      change,
      balance,
      at: event.recordedAt,
      actor: event.metadata.actor,
      transferId: (event.data as { transferId?: string }).transferId,
    });
  } else if (event.type === 'AccountOpened') {
    ledger.balances.set(event.streamId, 0);
  }
  ledger.checkpoint = event.position;
  return ledger;
}

/** Brings the ledger up to the end of the log. */
export async function catchUp(store: EventStore, ledger: Ledger = emptyLedger()): Promise<Ledger> {
  for await (const event of store.readAll({ after: ledger.checkpoint, categories: ['account'] })) {
    applyToLedger(ledger, event);
  }
  return ledger;
}
