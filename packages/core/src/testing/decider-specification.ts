/**
 * Specifications for deciders, usable with any test runner (they throw `AssertionError` from
 * `node:assert` on failure):
 *
 * ```ts
 * const spec = deciderSpecification(bankAccount);
 * spec.given([{ type: 'AccountOpened', data: { owner: 'Ada', overdraftLimit: 0 } }])
 *   .when({ type: 'Deposit', data: { amount: 10 } })
 *   .then([{ type: 'MoneyDeposited', data: { amount: 10 } }]);
 * spec.given([]).when({ type: 'Deposit', data: { amount: 10 } }).thenThrows(AccountNotOpen);
 * ```
 *
 * Do not `await` a `when(...)`: its `then` is the assertion, not a promise's.
 */
import { AssertionError, deepStrictEqual } from 'node:assert';
import { type Command, type Decider, type DomainEvent, decideAll, replay } from '../decider/decider.js';

export interface DeciderSpecification<C extends Command, E extends DomainEvent> {
  given(events: readonly E[]): {
    when(command: C): {
      /** The command decides exactly these events, in this order. */
      then(expected: readonly E[]): void;
      /** The command is refused with an error of this class, or one this predicate accepts. */
      thenThrows(expected: (new (...args: never[]) => Error) | ((error: unknown) => boolean)): void;
    };
  };
}

/** Given-when-then specifications for a decider; see the module comment. */
export function deciderSpecification<C extends Command, E extends DomainEvent, S>(
  decider: Decider<C, E, S>,
): DeciderSpecification<C, E> {
  return {
    given: (events) => ({
      when: (command) => {
        const run = () => decideAll(decider, command, replay(decider, events));
        return {
          // biome-ignore lint/suspicious/noThenProperty: given/when/then is the specification's vocabulary; do not await it.
          then(expected) {
            deepStrictEqual(run(), [...expected]);
          },
          thenThrows(expected) {
            let decided: E[];
            try {
              decided = run();
            } catch (error) {
              const matches =
                expected.prototype instanceof Error || expected === Error
                  ? error instanceof (expected as new (...args: never[]) => Error)
                  : (expected as (error: unknown) => boolean)(error);
              if (!matches) {
                throw new AssertionError({
                  message: `the command threw an unexpected error: ${String(error)}`,
                  actual: error,
                });
              }
              return;
            }
            throw new AssertionError({
              message: 'the command was expected to throw, but decided events',
              actual: decided,
            });
          },
        };
      },
    }),
  };
}
