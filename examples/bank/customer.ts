/**
 * Bank customers: who holds the accounts. Their name and email are personal data: a store
 * opened with {@link bankPersonalData} keeps them encrypted under the customer's own key, and
 * `personalData(store).forget(customerId)` erases them everywhere without touching the log.
 */
import { type Decider, DomainError, type PersonalDataPolicy } from '@annals/core';

export type CustomerCommand =
  | { type: 'RegisterCustomer'; data: { customerId: string; name: string; email: string }; id?: string }
  | { type: 'ChangeEmail'; data: { email: string }; id?: string };

export type CustomerEvent =
  | { type: 'CustomerRegistered'; data: { customerId: string; name: string | null; email: string | null } }
  | { type: 'CustomerEmailChanged'; data: { customerId: string; email: string | null } };

export interface Customer {
  customerId: string | null;
  /** Null before registration, and after the customer was forgotten. */
  name: string | null;
  email: string | null;
}

/** Which fields are personal, and whose: the customer id, kept in clear to find the key. */
export const bankPersonalData: PersonalDataPolicy = {
  CustomerRegistered: { subject: 'customerId', fields: ['name', 'email'] },
  CustomerEmailChanged: { subject: 'customerId', fields: ['email'] },
};

export class CustomerNotRegistered extends DomainError {
  constructor() {
    super('customer-not-registered', 'the customer is not registered');
  }
}
export class CustomerAlreadyRegistered extends DomainError {
  constructor() {
    super('customer-already-registered', 'the customer is already registered');
  }
}
export class InvalidEmail extends DomainError {
  constructor(email: unknown) {
    super('invalid-email', `not an email address: ${JSON.stringify(email)}`);
  }
}

const emailOf = (email: unknown): string => {
  if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email)) throw new InvalidEmail(email);
  return email;
};

/** Customers as a decider, one stream per customer: `customer-<customerId>`. */
export const bankCustomer: Decider<CustomerCommand, CustomerEvent, Customer> = {
  initialState: () => ({ customerId: null, name: null, email: null }),
  decide(command, state) {
    switch (command.type) {
      case 'RegisterCustomer': {
        if (state.customerId !== null) throw new CustomerAlreadyRegistered();
        const { customerId, name } = command.data;
        return { type: 'CustomerRegistered', data: { customerId, name, email: emailOf(command.data.email) } };
      }
      case 'ChangeEmail':
        if (state.customerId === null) throw new CustomerNotRegistered();
        return {
          type: 'CustomerEmailChanged',
          data: { customerId: state.customerId, email: emailOf(command.data.email) },
        };
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'CustomerRegistered':
        return { customerId: event.data.customerId, name: event.data.name, email: event.data.email };
      case 'CustomerEmailChanged':
        return { ...state, email: event.data.email };
    }
  },
};
