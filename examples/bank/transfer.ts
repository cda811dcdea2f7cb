/**
 * A transfer between two accounts: a process over two streams, not one transaction.
 *
 * 1. Debit the source (`DebitForTransfer`). If a rule refuses it, the transfer is rejected
 *    and nothing happened.
 * 2. Credit the target (`CreditFromTransfer`), caused by the debit event.
 * 3. If a rule refuses the credit (the target is frozen, closed or missing), refund the
 *    source (`RefundTransfer`), caused by the debit event: the money goes back.
 *
 * Every step is a command whose id derives from the transfer id, so running the same
 * transfer again — after a crash between two steps, or twice at once — repeats nothing and
 * finishes what was left.
 */
import { type CommandContext, type CommandHandler, causedBy, DomainError, type RecordedEvent } from '@annals/core';
import type { Account, AccountCommand, AccountEvent } from './account.js';

export interface Transfer {
  transferId: string;
  from: string;
  to: string;
  /** Cents. */
  amount: number;
}

export type TransferOutcome =
  | { status: 'completed'; debit: RecordedEvent; credit: RecordedEvent }
  | { status: 'refunded'; debit: RecordedEvent; refund: RecordedEvent; reason: string }
  | { status: 'rejected'; reason: string };

export async function transfer(
  accounts: CommandHandler<AccountCommand, AccountEvent, Account>,
  { transferId, from, to, amount }: Transfer,
  context: CommandContext = {},
): Promise<TransferOutcome> {
  const correlation = { ...context, correlationId: context.correlationId ?? transferId };
  let debit: RecordedEvent;
  try {
    const debited = await accounts.handle(
      from,
      { type: 'DebitForTransfer', id: `${transferId}/debit`, data: { transferId, amount, to } },
      { ...correlation, reason: 'Transfer' },
    );
    debit = debited.events[0] as RecordedEvent;
  } catch (error) {
    if (error instanceof DomainError) return { status: 'rejected', reason: error.reason };
    throw error;
  }
  const next = { ...causedBy(debit, context.actor), reason: 'Transfer' };
  try {
    const credited = await accounts.handle(
      to,
      { type: 'CreditFromTransfer', id: `${transferId}/credit`, data: { transferId, amount, from } },
      next,
    );
    return { status: 'completed', debit, credit: credited.events[0] as RecordedEvent };
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    const refunded = await accounts.handle(
      from,
      { type: 'RefundTransfer', id: `${transferId}/refund`, data: { transferId, amount } },
      { ...next, reason: `Transfer refunded: ${error.reason}` },
    );
    return { status: 'refunded', debit, refund: refunded.events[0] as RecordedEvent, reason: error.reason };
  }
}
