/**
 * With an application module (the bank example): commands to a decider, exactly-once by
 * command id and 422 for a refused rule; audit and time travel over HTTP; operations (parked
 * events replayed with the app's handler, seals and verify, erasure); health, metrics; all
 * over a real socket, on each backend.
 */

import { subscriptions } from '@annals/core';
import {
  balancesCollection,
  balancesProjection,
  bankAccount,
  bankCustomer,
  bankPersonalData,
} from '@annals/example-bank';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnnalsApp } from '../src/index.js';
import { backends, startTestServer, type TestServer } from './support.js';

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(backends)('the server with an app module on $name', (backend) => {
  let server: TestServer;
  const replayed: number[] = [];
  const app: AnnalsApp = {
    deciders: {
      account: { decider: bankAccount, snapshots: { every: 5, version: 1 } },
      customer: { decider: bankCustomer },
    },
    projections: [balancesProjection],
    personalData: bankPersonalData,
    subscriptions: {
      mailer: (event) => {
        replayed.push(event.position);
      },
    },
  };
  beforeAll(async () => {
    server = await startTestServer(backend, { app, runProjections: true, runSealer: true });
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  const command = (decider: string, stream: string, body: unknown, headers?: Record<string, string>) =>
    server.request('POST', `/commands/${decider}/${stream}`, body, headers);

  it('handles commands exactly once by id, refuses a broken rule with 422 and its reason', async () => {
    const opened = await command('account', 'account-1', {
      type: 'OpenAccount',
      data: { owner: 'ada', overdraftLimit: 0 },
      id: 'open-1',
      context: { actor: 'ada', reason: 'signup', correlationId: 'req-1' },
    });
    expect(opened.status).toBe(200);
    expect(opened.body).toMatchObject({ streamId: 'account-1', streamVersion: 1, duplicate: false });
    expect(opened.body.events[0].metadata).toMatchObject({ actor: 'ada', reason: 'signup', correlationId: 'req-1' });
    const again = await command('account', 'account-1', {
      type: 'OpenAccount',
      data: { owner: 'ada', overdraftLimit: 0 },
      id: 'open-1',
    });
    expect(again.body).toMatchObject({ streamVersion: 1, duplicate: true });
    for (let i = 0; i < 6; i++) {
      const deposit = await command(
        'account',
        'account-1',
        {
          type: 'Deposit',
          data: { amount: 10 },
          id: `deposit-${i}`,
          context: { actor: 'ada', correlationId: 'req-1' },
        },
        { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      );
      expect(deposit.status).toBe(200);
      expect(deposit.body.events[0].metadata.traceparent).toBe(
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      );
    }
    const refused = await command('account', 'account-1', { type: 'Withdraw', data: { amount: 1000 } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'DOMAIN_ERROR', reason: expect.any(String) });
    expect((await server.request('GET', '/streams/account-1')).body.version).toBe(7);
    const unknown = await command('nope', 'account-1', { type: 'Deposit', data: { amount: 1 } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('UNKNOWN_DECIDER');
  });

  it('answers who, when and why, and the causal tree of a request', async () => {
    const history = await server.request('GET', '/streams/account-1/history?limit=3');
    expect(history.body.entries.map((e: { type: string }) => e.type)).toEqual([
      'AccountOpened',
      'MoneyDeposited',
      'MoneyDeposited',
    ]);
    expect(history.body.entries[0]).toMatchObject({ actor: 'ada', reason: 'signup' });
    const byActor = await server.request('GET', '/audit/actors/ada?limit=2');
    expect(byActor.body.events).toHaveLength(2);
    const tree = await server.request('GET', '/audit/correlations/req-1');
    expect(tree.body.roots.length).toBeGreaterThan(0);
    const inRange = await server.request(
      'GET',
      `/audit/range?from=${encodeURIComponent(new Date(Date.now() - 60_000).toISOString())}&category=account`,
    );
    expect(inRange.body.events.length).toBe(7);
    expect((await server.request('GET', '/audit/actors/ada?from=yesterday')).status).toBe(400);
  });

  it('travels in time with the app’s decider or the merged data, step by step', async () => {
    const atTwo = await server.request('GET', '/streams/account-1/state?version=2&decider=account');
    expect(atTwo.body).toMatchObject({ streamVersion: 2, state: { status: 'open', balance: 10 } });
    const now = await server.request('GET', '/streams/account-1/state?decider=account');
    expect(now.body).toMatchObject({ streamVersion: 7, state: { balance: 60 } });
    const merged = await server.request('GET', '/streams/account-1/state?version=1');
    expect(merged.body.state).toMatchObject({ owner: 'ada', lastEvent: 'AccountOpened' });
    const replay = await server.request('GET', '/streams/account-1/replay?fromVersion=2&toVersion=3&decider=account');
    expect(replay.body.steps).toHaveLength(2);
    expect(replay.body.steps[0].changes).toContainEqual(
      expect.objectContaining({ type: 'CHANGE', path: ['balance'], oldValue: 0, value: 10 }),
    );
    const head = (await server.request('GET', '/position')).body.head;
    const changes = await server.request('GET', `/changes?from=0&to=${head}&decider=account`);
    expect(changes.body.streams.map((s: { streamId: string }) => s.streamId)).toContain('account-1');
    expect((await server.request('GET', '/streams/account-1/state?version=99')).status).toBe(400);
    expect((await server.request('GET', '/streams/account-1/state?version=1&position=1')).status).toBe(400);
    expect((await server.request('GET', '/changes?from=soon&to=1')).status).toBe(400);
  });

  it('runs the app’s projection and the sealer; verify passes; checkpoints show the lag', async () => {
    const head = (await server.request('GET', '/position')).body.head;
    await until(async () => (await server.request('GET', '/seals')).body.sealedUpTo >= head, 'the sealer');
    const report = await server.request('POST', '/verify', {});
    expect(report.body).toMatchObject({ ok: true });
    await until(async () => {
      const { checkpoints } = (await server.request('GET', '/checkpoints')).body;
      return checkpoints.some((c: { name: string; lag: number }) => c.name.includes('account-balances') && c.lag === 0);
    }, 'the projection');
    const ready = await server.request('GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.join('\n')).toMatch(/projection account-balances v1: live/);
    const balance = await server.client.query<{ data: { balance: number } }>(
      `select data from "${server.schema}".documents where collection = $1 and id = $2`,
      [balancesCollection, 'account-1'],
    );
    expect(balance[0]?.data.balance).toBe(60);
    expect((await server.request('POST', '/verify', { anchor: { position: 1, hash: 'zz' } })).status).toBe(400);
  });

  it('replays parked events with the app’s handler, and forgets a data subject', async () => {
    const store = await (async () => {
      // A subscription of this process parks the account events once, then is stopped.
      const { openEventStore } = await import('@annals/core');
      return openEventStore({ client: server.client, closeClient: false, schema: server.schema, migrate: false });
    })();
    try {
      const mailer = subscriptions(store).subscribe({
        name: 'mailer',
        categories: ['account'],
        retry: { attempts: 1, backoffMs: 1 },
        handler: () => {
          throw new Error('smtp down');
        },
      });
      await mailer.waitFor((await server.request('GET', '/position')).body.head);
      await mailer.stop();
    } finally {
      await store.close();
    }
    const parked = await server.request('GET', '/subscriptions/mailer/parked');
    expect(parked.body.parked.length).toBe(7);
    const replay = await server.request('POST', '/subscriptions/mailer/parked/replay');
    expect(replay.body).toEqual({ replayed: 7, failed: 0 });
    expect(replayed).toHaveLength(7);
    expect((await server.request('GET', '/subscriptions/mailer/parked')).body.parked).toEqual([]);
    expect((await server.request('POST', '/subscriptions/other/parked/replay')).status).toBe(404);

    await command('customer', 'customer-c7', {
      type: 'RegisterCustomer',
      data: { customerId: 'c7', name: 'Ada', email: 'ada@example.org' },
    });
    const held = await server.request('GET', '/audit/subjects/c7');
    expect(held.body.events[0].data).toMatchObject({ name: 'Ada' });
    const forgot = await server.request('POST', '/subjects/c7/forget', { reason: 'erasure request', actor: 'dpo' });
    expect(forgot.body).toMatchObject({ forgotten: true });
    const after = await server.request('GET', '/audit/subjects/c7');
    expect(after.body.events[0].data).toMatchObject({ name: null, email: null });
    expect((await server.request('POST', '/subjects/c7/forget', {})).status).toBe(400);
  });

  it('exports metrics of requests, appends, the log, lag, the pool and SSE clients', async () => {
    const event = { id: '0190a6f2-8c1e-7b3a-9f00-00000000abcd', type: 'Noted', data: {} };
    // A live SSE client, so the fan-out has something to measure.
    const head = (await server.request('GET', '/position')).body.head as number;
    const live = await fetch(`${server.url}/subscribe?category=note&after=${head}`);
    const reader = (live.body as ReadableStream<Uint8Array>).getReader();
    await server.request('POST', '/streams/note-1/events', { events: [event] });
    await server.request('POST', '/streams/note-1/events', { events: [event] });
    let text = '';
    while (!text.includes('data:')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const metrics = await server.request('GET', '/metrics');
    expect(metrics.status).toBe(200);
    for (const name of [
      'annals_http_requests_total{route="/commands/:decider/:streamId",method="POST",status="200"}',
      'annals_appends_total{outcome="ok"}',
      'annals_appends_total{outcome="duplicate"}',
      'annals_events_appended_total',
      'annals_append_batch_appends_bucket',
      'annals_log_head_position',
      'annals_checkpoint_lag_events{name=',
      'annals_sealer_lag_events',
      'annals_sse_clients',
      'process_resident_memory_bytes',
    ]) {
      expect(metrics.text, name).toContain(name);
    }
    // The live client got its page: the fan-out was measured and written once at least.
    expect(metrics.text).toMatch(/^annals_sse_publish_lag_seconds_count [1-9]/m);
    expect(metrics.text).toMatch(/^annals_sse_writes_total [1-9]/m);
    if (backend.client().capabilities.concurrentConnections)
      expect(metrics.text).toContain('annals_db_pool_connections{state="total"}');
    expect((await server.request('GET', '/health/live')).body).toEqual({ status: 'ok' });
  });
});
