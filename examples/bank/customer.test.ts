/** Customers: personal data encrypted per customer, and a forgotten customer on every backend. */
import { commandHandler, openEventStore, personalData, toArray } from '@annals/core';
import { describe, expect, it } from 'vitest';
import { backends, openTestStore } from '../../packages/core/test/support/backends.js';
import { bankCustomer, bankPersonalData, InvalidEmail } from './customer.js';

describe.each(backends)('bank customers on $name', (backend) => {
  it('keeps name and email readable until the customer is forgotten, then null; commands go on', async () => {
    const t = await openTestStore(backend);
    await t.store.close();
    const store = await openEventStore({
      client: t.client,
      closeClient: false,
      schema: t.schema,
      personalData: bankPersonalData,
    });
    try {
      const customers = commandHandler(store, bankCustomer, { name: 'customer', snapshots: { every: 1, version: 1 } });
      await customers.handle('customer-c7', {
        type: 'RegisterCustomer',
        data: { customerId: 'c7', name: 'Ada Lovelace', email: 'ada@example.org' },
      });
      await expect(
        customers.handle('customer-c7', { type: 'ChangeEmail', data: { email: 'not-an-email' } }),
      ).rejects.toBeInstanceOf(InvalidEmail);
      const changed = await customers.handle('customer-c7', { type: 'ChangeEmail', data: { email: 'ada@new.org' } });
      expect(changed.state).toEqual({ customerId: 'c7', name: 'Ada Lovelace', email: 'ada@new.org' });

      const { snapshotsDropped, forgotten } = await personalData(store).forget('c7', {
        actor: 'dpo',
        reason: 'request 12',
      });
      expect({ forgotten, snapshotsDropped }).toEqual({ forgotten: true, snapshotsDropped: 1 });
      expect((await customers.load('customer-c7')).state).toEqual({ customerId: 'c7', name: null, email: null });
      const events = await toArray(store.readStream('customer-c7'));
      expect(events.map((e) => e.redacted)).toEqual([['name', 'email'], ['email']]);

      // The customer id is not personal: commands still find the customer.
      const after = await customers.handle('customer-c7', { type: 'ChangeEmail', data: { email: 'new@example.org' } });
      expect(after.state).toEqual({ customerId: 'c7', name: null, email: 'new@example.org' });
    } finally {
      await store.close();
      await t.cleanup();
    }
  });
});
