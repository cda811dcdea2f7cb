/**
 * Rebuilding the app's projections over a real socket, on each backend: a rebuild runs in the
 * background to the head and its read model is there; a second start while one runs is 409;
 * an unknown projection is 404, a bad name 400; a failing projection's rebuild reports its
 * error and the server keeps serving; beside the server's own runner a rebuild is done when the
 * checkpoint is; a checkpoint carries the error it last parked an event with; with
 * authentication on, only the admin scope starts one.
 */
import { type EventStore, openEventStore, type Projection, projections, subscriptions } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema } from '../../core/test/support/backends.js';
import { setupApiKeys } from '../src/auth/api-keys.js';
import { call, makeKey } from './auth-support.js';
import { backends, startTestServer, type TestServer } from './support.js';

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Counts the events of each stream into a document. */
const tally: Projection = {
  name: 'tally',
  handlers: {
    Counted: async (event, _tx, documents) => {
      await documents.update<{ n: number }>('tallies', event.streamId, { n: 0 }, (doc) => ({ n: doc.n + 1 }));
    },
  },
};

/** Refuses every event. */
const broken: Projection = {
  name: 'broken',
  handlers: {
    Counted: async () => {
      throw new Error('the read model refuses Counted');
    },
  },
};

/** Slow: a batch of one event takes 30 ms, so a rebuild of 40 events is still running when asked again. */
const slow: Projection = {
  name: 'slow',
  handlers: {
    Counted: async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
    },
  },
};

describe.each(backends)('rebuild routes on $name', (backend) => {
  let server: TestServer;
  let store: EventStore;

  beforeAll(async () => {
    server = await startTestServer(backend, { app: { projections: [tally, broken, slow] } });
    store = await openEventStore({ client: server.client, schema: server.schema, closeClient: false });
    const events = Array.from({ length: 40 }, (_, i) => ({ type: 'Counted', data: { i } }));
    for (const stream of ['count-a', 'count-b']) {
      const appended = await server.request('POST', `/streams/${stream}/events`, { events });
      expect(appended.status, appended.text).toBe(201);
    }
  });

  afterAll(async () => {
    await store?.close();
    await server?.cleanup();
  });

  const progress = (name: string) => server.request('GET', `/projections/${name}/rebuild`);
  const finished = (name: string) =>
    until(
      () => progress(name),
      (answer) => answer.body.state !== 'running',
      `the rebuild of ${name}`,
    );

  it('lists the app’s projections, idle before any rebuild', async () => {
    const answer = await server.request('GET', '/projections');
    expect(answer.status).toBe(200);
    expect(answer.body.projections.map((p: { name: string; state: string }) => [p.name, p.state])).toEqual([
      ['tally', 'idle'],
      ['broken', 'idle'],
      ['slow', 'idle'],
    ]);
    expect((await progress('tally')).body).toMatchObject({ state: 'idle', position: null, target: null });
  });

  it('rebuilds a projection in the background up to the head, and its read model is there', async () => {
    const head = (await server.request('GET', '/position')).body.head as number;
    const started = await server.request('POST', '/projections/tally/rebuild');
    expect(started.status, started.text).toBe(202);
    expect(started.body).toMatchObject({ name: 'tally', version: 1, state: 'running', target: head });
    const done = await finished('tally');
    expect(done.body).toMatchObject({ state: 'done', position: head, target: head, etaSeconds: 0, error: null });
    expect(done.body.eventsPerSecond).toBeGreaterThanOrEqual(0);
    expect(Date.parse(done.body.finishedAt)).toBeGreaterThanOrEqual(Date.parse(done.body.startedAt));
    const documents = projections(store).documents;
    expect(await documents.get('tallies', 'count-a')).toEqual({ n: 40 });
    expect(await documents.get('tallies', 'count-b')).toEqual({ n: 40 });
    const listed = await server.request('GET', '/projections');
    expect(listed.body.projections[0]).toMatchObject({ name: 'tally', state: 'done' });
  });

  it('refuses a second start while one runs with a 409 problem', async () => {
    const first = await server.request('POST', '/projections/slow/rebuild', { batchSize: 1 });
    expect(first.status, first.text).toBe(202);
    const second = await server.request('POST', '/projections/slow/rebuild', {});
    expect(second.status).toBe(409);
    expect(second.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(second.body).toMatchObject({ status: 409, code: 'REBUILD_RUNNING' });
    const running = await progress('slow');
    expect(running.body.state).toBe('running');
    expect(running.body.position).toBeLessThan(running.body.target);
    const done = await finished('slow');
    expect(done.body).toMatchObject({ state: 'done', position: done.body.target });
    // Once done, it may start again (nothing left to do: done at once).
    expect((await server.request('POST', '/projections/slow/rebuild')).status).toBe(202);
    expect((await finished('slow')).body.state).toBe('done');
  });

  it('answers 404 for a projection the app does not have, 400 for a bad name or body', async () => {
    for (const answer of [
      await server.request('GET', '/projections/nope/rebuild'),
      await server.request('POST', '/projections/nope/rebuild'),
    ]) {
      expect(answer.status).toBe(404);
      expect(answer.body).toMatchObject({ status: 404, code: 'UNKNOWN_PROJECTION' });
    }
    const long = 'x'.repeat(201);
    for (const answer of [
      await server.request('GET', `/projections/${long}/rebuild`),
      await server.request('POST', `/projections/${long}/rebuild`),
      await server.request('POST', '/projections/tally/rebuild', { batchSize: 0 }),
      await server.request('POST', '/projections/tally/rebuild', { unknown: true }),
    ]) {
      expect(answer.status, answer.text).toBe(400);
      expect(answer.body).toMatchObject({ status: 400 });
    }
  });

  it('reports a failing projection’s rebuild as failed with its error, and keeps serving', async () => {
    const started = await server.request('POST', '/projections/broken/rebuild', { maxFailures: 1 });
    expect(started.status).toBe(202);
    const failed = await finished('broken');
    expect(failed.body).toMatchObject({ state: 'failed', position: 0 });
    expect(failed.body.error).toMatch(/the read model refuses Counted/);
    expect(failed.body.finishedAt).toEqual(expect.any(String));
    expect((await server.request('GET', '/position')).status).toBe(200);
    expect((await server.request('GET', '/health/ready')).status).toBe(200);
    // It may be tried again, and fails the same way.
    expect((await server.request('POST', '/projections/broken/rebuild', { maxFailures: 1 })).status).toBe(202);
    expect((await finished('broken')).body.state).toBe('failed');
  });
});

describe.each(backends)('rebuild routes beside the server’s own runner on $name', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { app: { projections: [tally] }, runProjections: true });
  });

  afterAll(async () => {
    await server?.cleanup();
  });

  it('is done once the checkpoint reaches the head, whichever runner moved it', async () => {
    const events = Array.from({ length: 30 }, (_, i) => ({ type: 'Counted', data: { i } }));
    const appended = await server.request('POST', '/streams/count-a/events', { events });
    const head = (appended.body.positions as number[]).at(-1);
    expect((await server.request('POST', '/projections/tally/rebuild')).status).toBe(202);
    const done = await until(
      () => server.request('GET', '/projections/tally/rebuild'),
      (answer) => answer.body.state !== 'running',
      'the rebuild',
    );
    expect(done.body).toMatchObject({ state: 'done', position: head, target: head });
  });

  it('shows the error a subscription last parked an event with in /checkpoints', async () => {
    const store = await openEventStore({ client: server.client, schema: server.schema, closeClient: false });
    const mailer = subscriptions(store).subscribe({
      name: 'mailer',
      pollIntervalMs: 20,
      retry: { attempts: 1, backoffMs: 1 },
      handler: (events) => {
        const bad = events.find((event) => event.streamId.startsWith('bad-'));
        if (bad) throw new Error(`cannot mail ${bad.streamId}`);
      },
    });
    try {
      for (const stream of ['bad-1', 'bad-2']) {
        await server.request('POST', `/streams/${stream}/events`, { events: [{ type: 'Mailed', data: {} }] });
        await until(
          async () => (await subscriptions(store).parked('mailer')).length,
          (n) => n === (stream === 'bad-1' ? 1 : 2),
          `${stream} parked`,
        );
      }
    } finally {
      await mailer.stop();
      await store.close();
    }
    const answer = await server.request('GET', '/checkpoints');
    const byName = Object.fromEntries(
      answer.body.checkpoints.map((c: { name: string; lastError: unknown }) => [c.name, c.lastError]),
    );
    expect(byName.mailer).toEqual({ error: 'cannot mail bad-2', parkedAt: expect.any(String) });
    expect(byName['projection:tally:v1']).toBeNull();
  });
});

describe.each(backends)('rebuild routes with authentication on $name', (backend) => {
  const directory = freshSchema('keys');
  let server: TestServer;

  beforeAll(async () => {
    await setupApiKeys(backend.client(), { directory, serverRoles: [] });
    server = await startTestServer(backend, { auth: { directory }, app: { projections: [tally] } });
  });

  afterAll(async () => {
    await server?.cleanup();
    await backend.client().exec(`drop schema if exists "${directory}" cascade`);
  });

  it('starts a rebuild with the admin scope only: 401 without a key, 403 without the scope', async () => {
    const reader = (await makeKey(backend.client(), directory, { scopes: ['read', 'append'] })).secret;
    const admin = (await makeKey(backend.client(), directory, { scopes: ['admin'] })).secret;
    const anonymous = await call(server.url, 'POST', '/projections/tally/rebuild', { body: {} });
    expect(anonymous.status).toBe(401);
    const refused = await call(server.url, 'POST', '/projections/tally/rebuild', { credential: reader, body: {} });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(refused.body.detail).toMatch(/admin/);
    // Reading the progress is a read; the refused start left it idle.
    const idle = await call(server.url, 'GET', '/projections/tally/rebuild', { credential: reader });
    expect(idle.status).toBe(200);
    expect(idle.body.state).toBe('idle');
    const started = await call(server.url, 'POST', '/projections/tally/rebuild', { credential: admin, body: {} });
    expect(started.status, started.text).toBe(202);
    const done = await until(
      () => call(server.url, 'GET', '/projections/tally/rebuild', { credential: admin }),
      (answer) => answer.body.state !== 'running',
      'the rebuild',
    );
    expect(done.body.state).toBe('done');
  });
});
