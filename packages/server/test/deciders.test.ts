/**
 * `GET /deciders` over a real socket: the app's decider names, the ones `?decider=` takes in
 * time travel; none without an app; the name listed folds the state its own way.
 */
import { bankAccount, bankCustomer } from '@annals/example-bank';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support.js';

describe.each(backends)('GET /deciders on $name', (backend) => {
  let server: TestServer;
  let bare: TestServer;

  beforeAll(async () => {
    [server, bare] = await Promise.all([
      startTestServer(backend, {
        app: { deciders: { customer: { decider: bankCustomer }, account: { decider: bankAccount } } },
      }),
      startTestServer(backend),
    ]);
  });
  afterAll(async () => {
    await Promise.all([server?.cleanup(), bare?.cleanup()]);
  });

  it('lists the app’s deciders by name, sorted; the default is the merged data', async () => {
    const answer = await server.request('GET', '/deciders');
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ deciders: [{ name: 'account' }, { name: 'customer' }], default: null });
  });

  it('lists none when the server runs without an app', async () => {
    const answer = await bare.request('GET', '/deciders');
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toEqual({ deciders: [], default: null });
  });

  it('a listed name is one the state route folds with', async () => {
    const appended = await server.request('POST', '/streams/account-9/events', {
      events: [
        { type: 'AccountOpened', data: { owner: 'ada', overdraftLimit: 0 } },
        { type: 'MoneyDeposited', data: { amount: 300 } },
        { type: 'MoneyDeposited', data: { amount: 200 } },
      ],
    });
    expect(appended.status, appended.text).toBe(201);
    const { deciders } = (await server.request('GET', '/deciders')).body as { deciders: { name: string }[] };
    const states = await Promise.all(
      deciders.map(({ name }) => server.request('GET', `/streams/account-9/state?decider=${name}`)),
    );
    expect(states.map((state) => state.status)).toEqual([200, 200]);
    expect(states[0]?.body.state).toMatchObject({ balance: 500, owner: 'ada' });
    const merged = await server.request('GET', '/streams/account-9/state');
    expect(merged.body.state).toMatchObject({ amount: 200, owner: 'ada' });
  });
});
