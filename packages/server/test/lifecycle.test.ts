/** Stream lifecycle over HTTP (a real socket, each backend): delete, tombstone, archive, unarchive. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support.js';

const deposit = (n: number) => ({ events: [{ type: 'Deposited', data: { n } }] });

describe.each(backends)('stream lifecycle over HTTP on $name', (backend) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(backend);
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('soft-deletes a stream (410 on read), re-opens it with an append, and records who and why', async () => {
    await server.request('POST', '/streams/acct-1/events', deposit(1));
    await server.request('POST', '/streams/acct-1/events', deposit(2));

    const missingReason = await server.request('DELETE', '/streams/acct-1');
    expect(missingReason.status).toBe(400);
    const stale = await server.request('DELETE', '/streams/acct-1?reason=closed&expectedVersion=1');
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ code: 'CONCURRENCY_CONFLICT', expected: 1, actual: 2 });

    const deleted = await server.request('DELETE', '/streams/acct-1?reason=closed&actor=ops&expectedVersion=2');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ state: 'deleted', changed: true, streamVersion: 2, truncateBefore: 3 });

    const read = await server.request('GET', '/streams/acct-1/events');
    expect(read.status).toBe(410);
    expect(read.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(read.body).toMatchObject({ code: 'STREAM_DELETED', streamId: 'acct-1', tombstoned: false });
    const hidden = await server.request('GET', '/streams/acct-1/events?includeDeleted=true');
    expect(hidden.status).toBe(200);
    expect(hidden.body.events.map((e: { streamVersion: number }) => e.streamVersion)).toEqual([1, 2]);
    expect((await server.request('GET', '/streams/acct-1')).body).toMatchObject({
      version: 2,
      state: 'deleted',
      truncateBefore: 3,
    });
    const log = await server.request('GET', '/events?stream=acct-1');
    expect(log.body.events).toEqual([]);

    const exact = await server.request('POST', '/streams/acct-1/events', { ...deposit(3), expectedVersion: 2 });
    expect(exact.status).toBe(410);
    expect(exact.body.code).toBe('STREAM_DELETED');
    const reopened = await server.request('POST', '/streams/acct-1/events', {
      ...deposit(3),
      expectedVersion: 'no-stream',
    });
    expect(reopened.status).toBe(201);
    expect(reopened.body.streamVersion).toBe(3);
    const after = await server.request('GET', '/streams/acct-1/events');
    expect(after.body.events.map((e: { streamVersion: number }) => e.streamVersion)).toEqual([3]);

    const history = await server.request('GET', '/streams/$lifecycle/history');
    expect(history.status).toBe(200);
    expect(JSON.stringify(history.body)).toContain('"reason":"closed"');
  });

  it('tombstones a stream for good: every later append answers 410 STREAM_TOMBSTONED', async () => {
    await server.request('POST', '/streams/order-1/events', deposit(1));
    const tombstoned = await server.request('DELETE', '/streams/order-1?reason=retention&tombstone=true');
    expect(tombstoned.status).toBe(200);
    expect(tombstoned.body).toMatchObject({ state: 'tombstoned', changed: true });
    for (const expectedVersion of ['any', 'no-stream', 1]) {
      const refused = await server.request('POST', '/streams/order-1/events', { ...deposit(2), expectedVersion });
      expect(refused.status).toBe(410);
      expect(refused.body).toMatchObject({ code: 'STREAM_TOMBSTONED', streamId: 'order-1' });
    }
    const read = await server.request('GET', '/streams/order-1/events');
    expect(read.body).toMatchObject({ status: 410, code: 'STREAM_DELETED', tombstoned: true });
    const again = await server.request('POST', '/streams/order-1/archive', { reason: 'x' });
    expect(again.status).toBe(410);
  });

  it('archives and unarchives a stream', async () => {
    await server.request('POST', '/streams/ledger-1/events', deposit(1));
    const bad = await server.request('POST', '/streams/ledger-1/archive', { reason: '' });
    expect(bad.status).toBe(400);
    const archived = await server.request('POST', '/streams/ledger-1/archive', { reason: 'closed books', actor: 'a' });
    expect(archived.status).toBe(200);
    expect(archived.body).toMatchObject({ state: 'archived', previousState: 'active', changed: true });

    const read = await server.request('GET', '/streams/ledger-1/events');
    expect(read.status).toBe(409);
    expect(read.body.code).toBe('STREAM_ARCHIVED');
    const shown = await server.request('GET', '/streams/ledger-1/events?includeArchived=true');
    expect(shown.body.events).toHaveLength(1);
    const all = await server.request('GET', '/events?includeArchived=true&stream=ledger-1');
    expect(all.body.events).toHaveLength(1);
    expect((await server.request('GET', '/events?stream=ledger-1')).body.events).toEqual([]);
    const append = await server.request('POST', '/streams/ledger-1/events', deposit(2));
    expect(append.status).toBe(409);
    expect(append.body.code).toBe('STREAM_ARCHIVED');

    const unarchived = await server.request('POST', '/streams/ledger-1/unarchive', { reason: 'audit' });
    expect(unarchived.body).toMatchObject({ state: 'active', changed: true });
    expect((await server.request('POST', '/streams/ledger-1/events', deposit(2))).status).toBe(201);
    const twice = await server.request('POST', '/streams/ledger-1/unarchive', { reason: 'audit' });
    expect(twice.body).toMatchObject({ changed: false, position: null });
  });

  it('sets a stream’s retention', async () => {
    for (let n = 1; n <= 3; n++) await server.request('POST', '/streams/sensor-1/events', deposit(n));
    const set = await server.request('PUT', '/streams/sensor-1/retention', { reason: 'keep two', maxCount: 2 });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ changed: true, maxCount: 2, maxAge: null, streamVersion: 3 });
    const read = await server.request('GET', '/streams/sensor-1/events');
    expect(read.body.events.map((e: { streamVersion: number }) => e.streamVersion)).toEqual([2, 3]);
    expect((await server.request('GET', '/streams/sensor-1')).body.retention).toEqual({ maxCount: 2, maxAge: null });
    const beyond = await server.request('PUT', '/streams/sensor-1/retention', { reason: 'x', truncateBefore: 9 });
    expect(beyond.status).toBe(400);
    expect(beyond.body.field).toBe('settings.truncateBefore');
  });
});
