/** The audit trail on every backend: history, by actor, by time range, causal trees. */
import { describe, expect, it } from 'vitest';
import { auditTrail, type CausalNode, type EventStore, toArray } from '../src/index.js';
import { backends, capabilities, momentBetween, useTestStore } from './support/backends.js';

describe.each(backends)('audit trail on $name', (backend) => {
  let store: EventStore;
  const t = useTestStore(backend, (opened) => {
    store = opened.store;
  });

  const seed = async () => {
    const [opened] = (
      await store.append('account-1', [
        {
          type: 'Opened',
          data: {},
          metadata: { actor: 'ada', reason: 'signup', correlationId: 'req-1', causationId: 'cmd-1' },
        },
      ])
    ).positions;
    const openedEvent = (await toArray(store.readAll({ after: (opened as number) - 1, limit: 1 })))[0];
    const between = await momentBetween(t.client);
    await store.append('account-2', [
      {
        type: 'Credited',
        data: { amount: 5 },
        metadata: { actor: 'bob', correlationId: 'req-1', causationId: openedEvent?.id },
      },
    ]);
    const credited = (await toArray(store.readStream('account-2')))[0];
    await store.append('account-1', [
      { type: 'Audited', data: {}, metadata: { actor: 'ada', correlationId: 'req-1', causationId: credited?.id } },
      { type: 'Noted', data: {}, metadata: { actor: 'carol', correlationId: 'req-2' } },
    ]);
    return { between };
  };

  it('shows a stream history with who, when and why', async () => {
    await seed();
    const history = await toArray(auditTrail(store).history('account-1'));
    expect(history.map((h) => [h.streamVersion, h.type, h.actor, h.reason, h.correlationId])).toEqual([
      [1, 'Opened', 'ada', 'signup', 'req-1'],
      [2, 'Audited', 'ada', undefined, 'req-1'],
      [3, 'Noted', 'carol', undefined, 'req-2'],
    ]);
    expect(history[0]?.recordedAt).toBeInstanceOf(Date);
  });

  it('lists what one actor did, and everything in a time range', async () => {
    const { between } = await seed();
    const audit = auditTrail(store);
    expect((await toArray(audit.byActor('ada'))).map((e) => e.type)).toEqual(['Opened', 'Audited']);
    expect((await toArray(audit.byActor('ada', { from: between }))).map((e) => e.type)).toEqual(['Audited']);
    expect((await toArray(audit.byActor('ada', { to: between }))).map((e) => e.type)).toEqual(['Opened']);
    expect(await toArray(audit.byActor('nobody'))).toEqual([]);
    expect((await toArray(audit.inRange({ from: between }))).map((e) => e.position)).toEqual([2, 3, 4]);
    expect((await toArray(audit.inRange({ to: between }))).map((e) => e.position)).toEqual([1]);
    expect((await toArray(audit.inRange({ from: between, eventTypes: ['Noted'] }))).map((e) => e.type)).toEqual([
      'Noted',
    ]);
    await expect(toArray(audit.inRange({ from: new Date('x') }))).rejects.toMatchObject({ field: 'from' });
    await expect(toArray(audit.byActor('ada', { from: new Date(), to: new Date(0) }))).rejects.toMatchObject({
      field: 'to',
    });
    await expect(toArray(audit.byActor(''))).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('nests the events of one request by what caused them', async () => {
    await seed();
    const tree = await auditTrail(store).causalTree('req-1');
    const shape = (nodes: CausalNode[]): unknown[] => nodes.map((n) => [n.event.type, shape(n.children)]);
    expect(shape(tree)).toEqual([['Opened', [['Credited', [['Audited', []]]]]]]);
    expect(await auditTrail(store).causalTree('req-unknown')).toEqual([]);
  });

  // Plans are checked where they matter: on a production (durable) server.
  it.skipIf(!capabilities(backend).durable)('reads by actor and by request through their indexes', async () => {
    await seed();
    await t.client.exec(`analyze "${t.schema}".events`);
    for (const key of ['actor', 'correlationId']) {
      // On a tiny table a seq scan is cheapest; forbid it to see whether the index serves.
      const plan = await t.client.transaction(async (tx) => {
        await tx.query('set local enable_seqscan = off');
        return tx.query<{ 'QUERY PLAN': string }>(
          `explain select * from "${t.schema}".events
            where metadata ? '${key}' and metadata ->> '${key}' = 'x' and position > 0 and position <= 100
            order by position limit 100`,
        );
      });
      const text = plan.map((row) => row['QUERY PLAN']).join('\n');
      expect(text, text).toMatch(key === 'actor' ? /events_actor_position_idx/ : /events_correlation_position_idx/);
    }
  });
});
