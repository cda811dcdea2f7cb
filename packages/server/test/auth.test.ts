/**
 * Authentication over a real socket, on each backend: who may call what with no credential,
 * with API keys of each scope, expired and revoked keys (their SSE connections ended), a key
 * that tries to forge its actor, a key restricted to some categories, a fuzz of the
 * Authorization header, the per-key rate limit and SSE cap, and JWT bearer tokens. No answer
 * may hold a secret (auth-support.ts checks every one), and a refusal never says whether a
 * stream exists.
 */
import fc from 'fast-check';
import { type CryptoKey, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema } from '../../core/test/support/backends.js';
import { revokeApiKey, setupApiKeys } from '../src/auth/api-keys.js';
import {
  type Answer,
  call,
  eventually,
  expectNoSecret,
  makeKey,
  openSse,
  rawRequest,
  remember,
  withoutInstance,
} from './auth-support.js';
import { backends, startTestServer, type TestServer } from './support.js';

const uuid = (n: number) => `0190a6f2-8c1e-7b3a-9f00-${String(n).padStart(12, '0')}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Expects a 401 problem: problem+json, UNAUTHENTICATED, a Bearer challenge. */
function expect401(answer: Answer, detail?: string) {
  expect(answer.status).toBe(401);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer /);
  expect(answer.body).toMatchObject({ status: 401, code: 'UNAUTHENTICATED', title: 'Unauthorized' });
  if (detail !== undefined) expect(answer.body.detail).toBe(detail);
}

/** Expects a 403 problem: problem+json, FORBIDDEN. */
function expect403(answer: Answer) {
  expect(answer.status).toBe(403);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ status: 403, code: 'FORBIDDEN', title: 'Forbidden' });
  expect(answer.headers.get('www-authenticate')).toBeNull();
}

const event = (type: string, data: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  type,
  data,
  ...extra,
});

describe.each(backends)('authentication over a real socket on $name', (backend) => {
  const directory = freshSchema('keys');
  const client = () => backend.client();
  let server: TestServer;
  let admin: string;
  let adminActor: string;
  let reader: string;
  let writer: string;
  let subscriber: string;
  let url: string;

  const as = (credential: string | undefined) => ({
    get: (path: string) => call(url, 'GET', path, { credential }),
    post: (path: string, body: unknown) => call(url, 'POST', path, { credential, body }),
    delete: (path: string) => call(url, 'DELETE', path, { credential }),
  });
  /** The events of `stream` as the admin reads them (empty when it does not exist). */
  const stored = async (stream: string) => {
    const answer = await as(admin).get(`/streams/${stream}/events`);
    if (answer.status === 404) return [];
    expect(answer.status).toBe(200);
    return answer.body.events as { id: string; type: string; streamId: string; metadata: Record<string, unknown> }[];
  };

  beforeAll(async () => {
    await setupApiKeys(client(), { directory, serverRoles: [] });
    const adminKey = await makeKey(client(), directory, { scopes: ['admin'] });
    admin = adminKey.secret;
    adminActor = adminKey.actor;
    reader = (await makeKey(client(), directory, { scopes: ['read'] })).secret;
    writer = (await makeKey(client(), directory, { scopes: ['read', 'append'] })).secret;
    subscriber = (await makeKey(client(), directory, { scopes: ['subscribe'] })).secret;
    // A large cache: a revoked key must be refused because of the NOTIFY, not the TTL.
    server = await startTestServer(backend, { auth: { directory, cacheMs: 60_000 }, live: { heartbeatMs: 200 } });
    url = server.url;
    const seeded = await as(admin).post('/streams/note-1/events', {
      events: [event('Noted', { n: 1 }), event('Noted', { n: 2 })],
    });
    expect(seeded.status).toBe(201);
  });
  afterAll(async () => {
    await server?.cleanup();
    await client().exec(`drop schema if exists "${directory}" cascade`);
  });

  describe('without credentials', () => {
    it('refuses a read, an append and a subscribe with a 401 problem and a Bearer challenge', async () => {
      const read = await as(undefined).get('/streams/note-1/events');
      expect401(read, 'credentials are missing');
      expect(read.body.instance).toBe('/streams/note-1/events');
      expect(read.text).not.toContain('Noted');

      const append = await as(undefined).post('/streams/note-1/events', { events: [event('Sneaked')] });
      expect401(append, 'credentials are missing');
      expect((await stored('note-1')).map((e) => e.type)).toEqual(['Noted', 'Noted']);

      const sse = await openSse(url, '/subscribe');
      expect(sse.status).toBe(401);
      expect(sse.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(sse.response.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(JSON.parse(sse.text())).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });

      const streamSse = await openSse(url, '/streams/note-1/subscribe');
      expect(streamSse.status).toBe(401);

      const head = await call(url, 'HEAD', '/streams/note-1/events');
      expect(head.status).toBe(401);
      expect(head.headers.get('www-authenticate')).toMatch(/^Bearer /);

      // A header that is not "Bearer <credential>" is as good as none.
      for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'ank_x', `Token ${admin}`]) {
        const answer = await call(url, 'GET', '/streams/note-1/events', { headers: { authorization: header } });
        expect401(answer);
      }
    });

    it('still serves the public routes', async () => {
      for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
        const answer = await as(undefined).get(path);
        expect(answer.status, path).toBe(200);
      }
      expect((await as(undefined).get('/openapi.json')).body.openapi).toMatch(/^3\./);
      expect((await as(undefined).get('/metrics')).text).toContain('# TYPE');
    });
  });

  describe('scopes', () => {
    it('lets a read-only key read but not append, and stores nothing it sent', async () => {
      const read = await as(reader).get('/streams/note-1/events');
      expect(read.status).toBe(200);
      expect(read.body.events.map((e: { data: { n: number } }) => e.data.n)).toEqual([1, 2]);
      expect((await as(reader).get('/events?limit=1000')).status).toBe(200);
      expect((await as(reader).get('/streams')).status).toBe(200);

      const existing = await as(reader).post('/streams/note-1/events', { events: [event('Sneaked')] });
      expect403(existing);
      expect(existing.body.detail).toBe('this key lacks the "append" scope');
      const fresh = await as(reader).post('/streams/ro-1/events', { events: [event('Sneaked')] });
      expect403(fresh);
      const multi = await as(reader).post('/appends', {
        writes: [{ streamId: 'ro-2', events: [event('Sneaked')] }],
      });
      expect403(multi);

      expect((await stored('note-1')).map((e) => e.type)).toEqual(['Noted', 'Noted']);
      expect(await stored('ro-1')).toEqual([]);
      expect(await stored('ro-2')).toEqual([]);
      expect((await as(admin).get('/streams/ro-1')).status).toBe(404);
    });

    it('needs the subscribe scope for SSE, and only it', async () => {
      for (const path of ['/subscribe', '/streams/note-1/subscribe']) {
        const refused = await openSse(url, path, reader);
        expect(refused.status, path).toBe(403);
        expect(JSON.parse(refused.text())).toMatchObject({
          code: 'FORBIDDEN',
          detail: 'this key lacks the "subscribe" scope',
        });
      }
      const sse = await openSse(url, '/streams/note-1/subscribe', subscriber);
      try {
        expect(sse.status).toBe(200);
        expect(sse.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
        await eventually(() => (sse.text().match(/^data: /gm) ?? []).length === 2, 'the two events over SSE');
      } finally {
        sse.close();
      }
      // A subscribe-only key reads nothing else.
      expect403(await as(subscriber).get('/streams/note-1/events'));
      expect403(await as(subscriber).post('/streams/note-1/events', { events: [event('Sneaked')] }));
    });

    it('gives an admin key every scope', async () => {
      expect((await as(admin).get('/streams/note-1/events')).status).toBe(200);
      const appended = await as(admin).post('/streams/adm-1/events', { events: [event('Made')] });
      expect(appended.status).toBe(201);
      expect(appended.body).toMatchObject({ streamId: 'adm-1', streamVersion: 1 });
      const sse = await openSse(url, '/subscribe', admin);
      try {
        expect(sse.status).toBe(200);
      } finally {
        sse.close();
      }
      const deleted = await as(admin).delete('/streams/adm-1?reason=cleanup');
      expect(deleted.status).toBe(200);
      expect((await as(admin).get('/streams/adm-1/events')).status).toBe(410);
      // The admin-only routes refuse the other keys.
      expect403(await as(writer).delete('/streams/note-1?reason=x'));
      expect403(await as(writer).post('/verify', {}));
    });

    it('answers 401 and 403 the same for a stream that exists and one that does not', async () => {
      const pairs: [string, () => Promise<Answer>, () => Promise<Answer>][] = [
        [
          '401 read',
          () => as(undefined).get('/streams/note-1/events'),
          () => as(undefined).get('/streams/nope-9/events'),
        ],
        ['401 head', () => as(undefined).get('/streams/note-1'), () => as(undefined).get('/streams/nope-9')],
        [
          '401 bad key',
          () => as(`${reader}x`).get('/streams/note-1/events'),
          () => as(`${reader}x`).get('/streams/nope-9/events'),
        ],
        [
          '401 append',
          () => as(undefined).post('/streams/note-1/events', { events: [event('X')] }),
          () => as(undefined).post('/streams/nope-9/events', { events: [event('X')] }),
        ],
        [
          '403 append',
          () => as(reader).post('/streams/note-1/events', { events: [event('X')] }),
          () => as(reader).post('/streams/nope-9/events', { events: [event('X')] }),
        ],
        [
          '403 read',
          () => as(subscriber).get('/streams/note-1/events'),
          () => as(subscriber).get('/streams/nope-9/events'),
        ],
        [
          '403 delete',
          () => as(writer).delete('/streams/note-1?reason=x'),
          () => as(writer).delete('/streams/nope-9?reason=x'),
        ],
      ];
      for (const [what, existing, missing] of pairs) {
        const a = await existing();
        const b = await missing();
        expect([a.status, b.status], what).toEqual(what.startsWith('401') ? [401, 401] : [403, 403]);
        expect(withoutInstance(a.body), what).toEqual(withoutInstance(b.body));
        expect(a.headers.get('www-authenticate'), what).toBe(b.headers.get('www-authenticate'));
      }
      expect(await stored('nope-9')).toEqual([]);
    });

    it('refuses a key of another tenant than the server’s', async () => {
      const foreign = await makeKey(client(), directory, { scopes: ['admin'], tenant: 'other' });
      expect401(await as(foreign.secret).get('/streams/note-1/events'), 'the key is not valid here');
      expect401(await as(foreign.secret).post('/streams/foreign-1/events', { events: [event('X')] }));
      expect(await stored('foreign-1')).toEqual([]);
    });
  });

  describe('expired keys', () => {
    it('refuses a key whose expiry has passed', async () => {
      const expired = await makeKey(client(), directory, {
        scopes: ['admin'],
        expiresAt: new Date(Date.now() - 60_000),
      });
      expect401(await as(expired.secret).get('/streams/note-1/events'), 'the key is not valid');
      expect401(await as(expired.secret).post('/streams/exp-0/events', { events: [event('Late')] }));
      expect((await openSse(url, '/subscribe', expired.secret)).status).toBe(401);
      expect(await stored('exp-0')).toEqual([]);
    });

    it('lets a key work until it expires, then refuses it and ends its SSE connection at expiry', async () => {
      const expiresAt = new Date(Date.now() + 1500);
      const soon = await makeKey(client(), directory, { scopes: ['read', 'subscribe'], expiresAt });
      expect((await as(soon.secret).get('/streams/note-1/events')).status).toBe(200);
      const sse = await openSse(url, '/subscribe', soon.secret);
      try {
        expect(sse.status).toBe(200);
        // Still open shortly before the expiry...
        expect(await sse.ended(Math.max(0, expiresAt.getTime() - Date.now() - 300))).toBeUndefined();
        // ...and ended by the server at it.
        const endedAt = await sse.ended(expiresAt.getTime() - Date.now() + 2000);
        expect(endedAt).toBeDefined();
        expect(endedAt as number).toBeGreaterThanOrEqual(expiresAt.getTime() - 50);
        expect(endedAt as number).toBeLessThanOrEqual(expiresAt.getTime() + 1000);
      } finally {
        sse.close();
      }
      if (Date.now() <= expiresAt.getTime()) await sleep(expiresAt.getTime() - Date.now() + 10);
      // The key is still in the authenticator's cache (60 s): refused by its expiry all the same.
      expect401(await as(soon.secret).get('/streams/note-1/events'), 'the key has expired');
      expect((await openSse(url, '/subscribe', soon.secret)).status).toBe(401);
    });
  });

  describe('revoked keys', () => {
    it('refuses a revoked key at its next request and ends its SSE connection within 2 s (NOTIFY, not the cache TTL)', async () => {
      const key = await makeKey(client(), directory, { scopes: ['read', 'subscribe'] });
      expect((await as(key.secret).get('/streams/note-1/events')).status).toBe(200);
      const sse = await openSse(url, '/subscribe', key.secret);
      try {
        expect(sse.status).toBe(200);
        const revokedAt = Date.now();
        expect(await revokeApiKey(client(), key.id, null, { directory })).toBe(true);
        const endedAt = await sse.ended(2000);
        expect(endedAt, 'the SSE connection of a revoked key is ended').toBeDefined();
        expect((endedAt as number) - revokedAt).toBeLessThanOrEqual(2000);
      } finally {
        sse.close();
      }
      // The notification that ended the connection dropped the key from the cache first.
      expect401(await as(key.secret).get('/streams/note-1/events'), 'the key is not valid');
      expect((await openSse(url, '/subscribe', key.secret)).status).toBe(401);
      expect(await revokeApiKey(client(), key.id, null, { directory })).toBe(false);
    });

    it('refuses a key revoked while requests with it were being looked up', async () => {
      // A lookup that read the row before the revocation and is cached after its NOTIFY was
      // handled would keep the revoked key trusted for the whole cache TTL (60 s).
      const survivors: number[] = [];
      for (let round = 0; round < 6; round++) {
        const key = await makeKey(client(), directory, { scopes: ['read'] });
        const burst = Array.from({ length: 16 }, () => as(key.secret).get('/streams/note-1'));
        const revoked = revokeApiKey(client(), key.id, null, { directory });
        const more = Array.from({ length: 16 }, () => as(key.secret).get('/streams/note-1'));
        for (const answer of await Promise.all([...burst, ...more])) expect([200, 401]).toContain(answer.status);
        expect(await revoked).toBe(true);
        // Long past the notification's delivery (the tests above see it in milliseconds).
        await sleep(150);
        const after = await as(key.secret).get('/streams/note-1');
        if (after.status !== 401) survivors.push(round);
      }
      expect(survivors, 'rounds whose revoked key was still accepted').toEqual([]);
    });

    it('keeps trusting a cached key revoked behind the server’s back (no NOTIFY): the cache is real', async () => {
      // The control of the test above: without the notification the 60 s cache holds, so that
      // test's 401 came from the NOTIFY.
      const key = await makeKey(client(), directory, { scopes: ['read'] });
      expect((await as(key.secret).get('/streams/note-1/events')).status).toBe(200);
      await client().query(`update "${directory}".api_keys set revoked_at = now() where id = $1`, [key.id]);
      expect((await as(key.secret).get('/streams/note-1/events')).status).toBe(200);
      // A fresh server looks it up and refuses it.
      const other = await startTestServer(backend, { auth: { directory, cacheMs: 60_000 } });
      try {
        expect401(await call(other.url, 'GET', '/streams/note-1/events', { credential: key.secret }));
      } finally {
        await other.cleanup();
      }
    });
  });

  describe('actors', () => {
    it('stamps the key’s actor over a forged one, keeps the named one for an actAs key', async () => {
      const plain = await makeKey(client(), directory, { scopes: ['read', 'append'], actor: 'svc-a' });
      const trusted = await makeKey(client(), directory, { scopes: ['read', 'append'], actor: 'svc-b', actAs: true });
      const forged = await as(plain.secret).post('/streams/actor-1/events', {
        events: [event('Done', {}, { metadata: { actor: 'root' } }), event('Done', {}, { metadata: { note: 'n' } })],
      });
      expect(forged.status).toBe(201);
      const multi = await as(plain.secret).post('/appends', {
        writes: [{ streamId: 'actor-2', events: [event('Done', {}, { metadata: { actor: 'root' } })] }],
      });
      expect(multi.status).toBe(200);
      const named = await as(trusted.secret).post('/streams/actor-3/events', {
        events: [event('Done', {}, { metadata: { actor: 'root' } }), event('Done')],
      });
      expect(named.status).toBe(201);

      expect((await stored('actor-1')).map((e) => e.metadata)).toEqual([
        { actor: 'svc-a' },
        { note: 'n', actor: 'svc-a' },
      ]);
      expect((await stored('actor-2')).map((e) => e.metadata.actor)).toEqual(['svc-a']);
      expect((await stored('actor-3')).map((e) => e.metadata.actor)).toEqual(['root', 'svc-b']);
    });

    it('refuses a lifecycle change to a key without admin, and changes nothing', async () => {
      const plain = await makeKey(client(), directory, { scopes: ['read', 'append'], actor: 'svc-a' });
      const refused = await as(plain.secret).delete('/streams/actor-1?reason=x');
      expect403(refused);
      expect(refused.body.detail).toBe('this key lacks the "admin" scope');
      expect403(await as(plain.secret).delete('/streams/actor-1?reason=x&tombstone=true'));
      expect403(await as(plain.secret).post('/streams/actor-1/archive', {}));
      expect((await as(admin).get('/streams/actor-1')).body).toMatchObject({ state: 'active' });
      expect(await stored('actor-1')).toHaveLength(2);
    });
  });

  describe('a key restricted to categories', () => {
    let account: string;
    const orderEvent = uuid(201);
    const accountEvent = uuid(101);
    beforeAll(async () => {
      account = (
        await makeKey(client(), directory, {
          scopes: ['read', 'append', 'subscribe'],
          categories: ['account'],
        })
      ).secret;
      for (const [stream, id] of [
        ['account-1', accountEvent],
        ['order-1', orderEvent],
        ['account-2', uuid(102)],
        ['order-2', uuid(202)],
      ] as const) {
        const seeded = await as(admin).post(`/streams/${stream}/events`, { events: [event('Seeded', {}, { id })] });
        expect(seeded.status).toBe(201);
      }
    });

    it('reads and appends to its category only', async () => {
      const read = await as(account).get('/streams/account-1/events');
      expect(read.status).toBe(200);
      expect(read.body.events.map((e: { id: string }) => e.id)).toEqual([accountEvent]);
      expect((await as(account).post('/streams/account-1/events', { events: [event('Deposited')] })).status).toBe(201);
      expect((await stored('account-1')).map((e) => e.type)).toEqual(['Seeded', 'Deposited']);

      const readOrder = await as(account).get('/streams/order-1/events');
      expect403(readOrder);
      expect(readOrder.body.detail).toBe('this key may not touch that stream');
      expect(readOrder.text).not.toContain(orderEvent);
      expect403(await as(account).post('/streams/order-1/events', { events: [event('Sneaked')] }));
      expect403(
        await as(account).post('/appends', {
          writes: [
            { streamId: 'account-2', events: [event('Sneaked')] },
            { streamId: 'order-2', events: [event('Sneaked')] },
          ],
        }),
      );
      expect((await stored('order-1')).map((e) => e.type)).toEqual(['Seeded']);
      expect((await stored('order-2')).map((e) => e.type)).toEqual(['Seeded']);
      expect((await stored('account-2')).map((e) => e.type)).toEqual(['Seeded']);

      // Another category's stream, existing or not, is refused alike.
      const missing = await as(account).get('/streams/order-404/events');
      expect403(missing);
      expect(withoutInstance(missing.body)).toEqual(withoutInstance(readOrder.body));
      expect((await openSse(url, '/streams/order-1/subscribe', account)).status).toBe(403);
      expect((await openSse(url, '/subscribe?category=order', account)).status).toBe(403);
    });

    it('reads only its category from the log, and refuses a filter on another', async () => {
      const all = await as(admin).get('/events?limit=10000');
      const accountIds = all.body.events
        .filter((e: { streamId: string }) => e.streamId.startsWith('account-'))
        .map((e: { id: string }) => e.id);
      expect(accountIds).toContain(accountEvent);
      expect(all.body.events.some((e: { streamId: string }) => e.streamId.startsWith('order-'))).toBe(true);

      const mine = await as(account).get('/events?limit=10000');
      expect(mine.status).toBe(200);
      expect(mine.body.events.map((e: { id: string }) => e.id)).toEqual(accountIds);
      expect(mine.text).not.toContain(orderEvent);

      expect403(await as(account).get('/events?category=order'));
      expect403(await as(account).get('/events?category=account&category=order'));
      expect403(await as(account).get('/events?stream=order-1'));
      const filtered = await as(account).get('/events?category=account&limit=10000');
      expect(filtered.body.events.map((e: { id: string }) => e.id)).toEqual(accountIds);
    });

    it('answers an event of another category by id as it answers a missing id', async () => {
      expect((await as(admin).get(`/events/${orderEvent}`)).status).toBe(200);
      expect((await as(account).get(`/events/${accountEvent}`)).body.id).toBe(accountEvent);
      const hidden = await as(account).get(`/events/${orderEvent}`);
      const missingId = uuid(999);
      const missing = await as(account).get(`/events/${missingId}`);
      expect([hidden.status, missing.status]).toEqual([404, 404]);
      expect(hidden.body.code).toBe('EVENT_NOT_FOUND');
      expect(hidden.text).not.toContain('Seeded');
      const normalize = (body: Record<string, unknown>, id: string) => ({
        ...withoutInstance(body),
        detail: String(body.detail).replace(id, '<id>'),
      });
      expect(normalize(hidden.body, orderEvent)).toEqual(normalize(missing.body, missingId));
    });

    it('follows only its category over SSE, and audits only its category', async () => {
      const sse = await openSse(url, '/subscribe', account);
      try {
        expect(sse.status).toBe(200);
        await as(admin).post('/streams/order-3/events', { events: [event('Live', {}, { id: uuid(203) })] });
        await as(admin).post('/streams/account-3/events', { events: [event('Live', {}, { id: uuid(103) })] });
        await eventually(() => sse.text().includes(uuid(103)), 'the live account event');
        const streams = [...sse.text().matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1] as string).streamId);
        expect(streams.length).toBeGreaterThanOrEqual(3);
        expect(streams.filter((s) => !s.startsWith('account-'))).toEqual([]);
      } finally {
        sse.close();
      }
      const byActor = await as(account).get(`/audit/actors/${encodeURIComponent(adminActor)}`);
      expect(byActor.status).toBe(200);
      const adminEvents = await as(admin).get(`/audit/actors/${encodeURIComponent(adminActor)}`);
      const accountOnes = adminEvents.body.events.filter((e: { streamId: string }) =>
        e.streamId.startsWith('account-'),
      );
      expect(adminEvents.body.events.length).toBeGreaterThan(accountOnes.length);
      expect(byActor.body.events.map((e: { id: string }) => e.id)).toEqual(
        accountOnes.map((e: { id: string }) => e.id),
      );
      const inRange = await as(account).get('/audit/range?limit=10000');
      expect(inRange.status).toBe(200);
      expect(inRange.body.events.length).toBeGreaterThan(0);
      expect(inRange.body.events.filter((e: { streamId: string }) => !e.streamId.startsWith('account-'))).toEqual([]);
      expect403(await as(account).get('/audit/range?category=order'));
    });

    it('lists only its category’s streams', async () => {
      const expected = (await as(admin).get('/streams?category=account')).body.streams.map(
        (s: { streamId: string }) => s.streamId,
      );
      expect(expected).toEqual(expect.arrayContaining(['account-1', 'account-2']));
      expect(expected.every((id: string) => id.startsWith('account-'))).toBe(true);
      const listed = await as(account).get('/streams');
      expect(listed.status).toBe(200);
      expect(listed.body.streams.map((s: { streamId: string }) => s.streamId)).toEqual(expected);
      expect403(await as(account).get('/streams?category=order'));
      // Routes of every category are closed to it.
      expect403(await as(account).get('/audit/subjects/someone'));
    });
  });

  describe('the Authorization header, fuzzed', () => {
    it('answers 401 (or 400/431 for what is not HTTP) to anything but a real credential, never 5xx, never data', async () => {
      const real = await makeKey(client(), directory, { scopes: ['read', 'append', 'subscribe'] });
      const other = await makeKey(client(), directory, { scopes: ['read'] });
      const [, realId, realSecret] = /^ank_([0-9a-f]{16})_(.+)$/.exec(real.secret) as RegExpExecArray;
      const [, , otherSecret] = /^ank_([0-9a-f]{16})_(.+)$/.exec(other.secret) as RegExpExecArray;
      const keyChars = 'abcdef0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz-_';

      // The harness sees data when there is some: the real key reads over the raw socket.
      const control = await rawRequest(url, {
        method: 'GET',
        path: '/streams/note-1/events',
        authorization: `Bearer ${real.secret}`,
      });
      expect(control.status).toBe(200);
      expect(control.body).toContain('Noted');

      const printable = fc.string({ unit: 'grapheme-ascii', maxLength: 120 });
      const noLineBreaks = (s: string) => s.replace(/[\r\n]/g, ' ');
      const nearMiss = fc.oneof(
        // One character changed.
        fc
          .tuple(fc.nat({ max: real.secret.length - 1 }), fc.constantFrom(...keyChars))
          .filter(([i, c]) => real.secret[i] !== c)
          .map(([i, c]) => real.secret.slice(0, i) + c + real.secret.slice(i + 1)),
        // Another id, or another key's secret.
        fc.stringMatching(/^[0-9a-f]{16}$/).map((id) => `ank_${id}_${realSecret}`),
        fc.constant(`ank_${realId}_${otherSecret}`),
        // Truncated, or one character more.
        fc.nat({ max: real.secret.length - 1 }).map((n) => real.secret.slice(0, n)),
        fc.constantFrom(...keyChars).map((c) => real.secret + c),
        fc.constant(real.secret.toUpperCase()),
      );
      const header = fc.oneof(
        { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map(noLineBreaks) },
        { weight: 2, arbitrary: printable },
        { weight: 2, arbitrary: printable.map((s) => `Bearer ${s}`) },
        { weight: 2, arbitrary: printable.map((s) => `Bearer ank_${s}`) },
        { weight: 1, arbitrary: printable.map((s) => `ank_${s}`) },
        { weight: 4, arbitrary: nearMiss.map((k) => `Bearer ${k}`) },
        { weight: 1, arbitrary: nearMiss.map((k) => `bEaReR   ${k}`) },
        { weight: 1, arbitrary: nearMiss },
        { weight: 1, arbitrary: fc.constant(real.secret) },
        { weight: 1, arbitrary: fc.constant(`Basic ${real.secret}`) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(fc.integer({ min: 1000, max: 16_384 }), fc.constantFrom('a', 'ank_', 'é', '😀', '.'))
            .map(([n, unit]) => `Bearer ${unit.repeat(Math.ceil(n / unit.length)).slice(0, n)}`),
        },
        {
          weight: 2,
          arbitrary: fc.string({ unit: 'grapheme', maxLength: 100 }).map((s) => `Bearer ${noLineBreaks(s)}`),
        },
        {
          weight: 1,
          arbitrary: fc
            .string({ unit: 'grapheme', minLength: 1, maxLength: 8 })
            .map((s) => `Bearer ${real.secret}${noLineBreaks(s)}`),
        },
      );
      const route = fc.constantFrom(
        { method: 'GET', path: '/streams/note-1/events' },
        { method: 'GET', path: '/events' },
        { method: 'GET', path: '/subscribe' },
        { method: 'POST', path: '/streams/fuzz-1/events', body: JSON.stringify({ events: [event('Fuzzed')] }) },
      );
      const seen = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(header, route, async (authorization, target) => {
          const answer = await rawRequest(url, { ...target, authorization });
          seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
          expect([400, 401, 431], `${answer.status} for ${JSON.stringify(authorization.slice(0, 200))}`).toContain(
            answer.status,
          );
          expectNoSecret(answer.head + answer.body);
          expect(answer.body).not.toContain('Noted');
          expect(answer.body).not.toContain('"events"');
          if (answer.status === 401) {
            expect(answer.head).toMatch(/\r\ncontent-type: application\/problem\+json/i);
            expect(answer.head).toMatch(/\r\nwww-authenticate: Bearer /i);
            expect(JSON.parse(answer.body)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
          }
        }),
        { numRuns: 300, seed: 20_260_513 },
      );
      // The fuzz reached the authenticator, not only the HTTP parser.
      expect(seen.get(401) ?? 0).toBeGreaterThan(150);
      expect(await stored('fuzz-1')).toEqual([]);
      expect((await as(undefined).get('/health/live')).status).toBe(200);
    });
  });

  describe('abuse limits', () => {
    it('answers the 6th request of a window with a 429 problem and retry-after; another key is unaffected', async () => {
      const limited = await startTestServer(backend, {
        auth: { directory },
        limits: { rateLimit: 5, rateWindowMs: 1000 },
      });
      try {
        const a = (await makeKey(client(), directory, { scopes: ['read'] })).secret;
        const b = (await makeKey(client(), directory, { scopes: ['read'] })).secret;
        const get = (key: string) => call(limited.url, 'GET', '/streams/none-1', { credential: key });
        // Warmed up by the other key, so that the 6 requests fit well in one window.
        expect((await get(b)).status).toBe(404);
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) statuses.push((await get(a)).status);
        const sixth = await get(a);
        expect(statuses).toEqual([404, 404, 404, 404, 404]);
        expect(sixth.status).toBe(429);
        expect(sixth.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(sixth.body).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
        expect(sixth.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(Number(sixth.headers.get('retry-after'))).toBeLessThanOrEqual(1);
        expect((await get(b)).status).toBe(404);
        // Public routes are not counted.
        expect((await call(limited.url, 'GET', '/health/live')).status).toBe(200);
        // The next window lets it through again.
        await sleep(1100);
        expect((await get(a)).status).toBe(404);
      } finally {
        await limited.cleanup();
      }
    });

    it('refuses a third concurrent SSE connection of a key with 429, and takes a new one once one closes', async () => {
      const capped = await startTestServer(backend, { auth: { directory }, limits: { sseConnectionsPerKey: 2 } });
      const open: Awaited<ReturnType<typeof openSse>>[] = [];
      try {
        const a = (await makeKey(client(), directory, { scopes: ['subscribe'] })).secret;
        const b = (await makeKey(client(), directory, { scopes: ['subscribe'] })).secret;
        open.push(await openSse(capped.url, '/subscribe', a), await openSse(capped.url, '/subscribe', a));
        expect(open.map((c) => c.status)).toEqual([200, 200]);
        const third = await openSse(capped.url, '/subscribe', a);
        expect(third.status).toBe(429);
        expect(third.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(third.response.headers.get('retry-after')).toBe('5');
        expect(JSON.parse(third.text())).toMatchObject({ status: 429, code: 'TOO_MANY_CONNECTIONS' });
        const otherKey = await openSse(capped.url, '/subscribe', b);
        open.push(otherKey);
        expect(otherKey.status).toBe(200);

        (open.shift() as (typeof open)[number]).close();
        let retried: Awaited<ReturnType<typeof openSse>> | undefined;
        await eventually(async () => {
          const attempt = await openSse(capped.url, '/subscribe', a);
          if (attempt.status === 200) {
            retried = attempt;
            return true;
          }
          expect(attempt.status).toBe(429);
          return false;
        }, 'a new connection once one closed');
        open.push(retried as (typeof open)[number]);
        expect((await openSse(capped.url, '/subscribe', a)).status).toBe(429);
      } finally {
        for (const connection of open) connection.close();
        await capped.cleanup();
      }
    });
  });

  describe('JWT bearer tokens', () => {
    let jwtServer: TestServer;
    let privateKey: CryptoKey;
    const sign = async (claims: Record<string, unknown>, exp = Math.floor(Date.now() / 1000) + 600, key = privateKey) =>
      remember(await new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setExpirationTime(exp).sign(key));

    beforeAll(async () => {
      const pair = await generateKeyPair('ES256');
      privateKey = pair.privateKey;
      jwtServer = await startTestServer(backend, {
        auth: { directory, jwt: { publicKey: await exportSPKI(pair.publicKey) } },
      });
    });
    afterAll(async () => {
      await jwtServer?.cleanup();
    });

    it('appends with a token, stamping its subject as the actor', async () => {
      const token = await sign({ sub: 'alice', tenant: 'default', scope: 'read append' });
      const appended = await call(jwtServer.url, 'POST', '/streams/jwt-1/events', {
        credential: token,
        body: { events: [event('Signed', {}, { metadata: { actor: 'root' } })] },
      });
      expect(appended.status).toBe(201);
      const read = await call(jwtServer.url, 'GET', '/streams/jwt-1/events', { credential: token });
      expect(read.status).toBe(200);
      expect(read.body.events.map((e: { metadata: { actor: string } }) => e.metadata.actor)).toEqual(['alice']);
      // API keys work beside tokens.
      expect((await call(jwtServer.url, 'GET', '/streams/jwt-1/events', { credential: admin })).status).toBe(200);
      // Its scopes hold: no subscribe.
      expect((await openSse(jwtServer.url, '/subscribe', token)).status).toBe(403);
    });

    it('ends a token’s SSE connection at its expiry', async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const token = await sign({ sub: 'carol', tenant: 'default', scope: 'subscribe' }, exp);
      const sse = await openSse(jwtServer.url, '/subscribe', token);
      try {
        expect(sse.status).toBe(200);
        expect(await sse.ended(Math.max(0, exp * 1000 - Date.now() - 300))).toBeUndefined();
        const endedAt = await sse.ended(exp * 1000 - Date.now() + 1000);
        expect(endedAt).toBeDefined();
        expect(endedAt as number).toBeGreaterThanOrEqual(exp * 1000 - 50);
        expect(endedAt as number).toBeLessThanOrEqual(exp * 1000 + 1000);
      } finally {
        sse.close();
      }
    });

    // The verifier allows clock skew; the server still refuses a token from the moment it
    // ends its live connections, so an EventSource stops instead of reconnecting.
    it('refuses the reconnect of a token whose SSE connection was ended at its expiry', async () => {
      const exp = Math.floor(Date.now() / 1000) + 1;
      const token = await sign({ sub: 'dave', tenant: 'default', scope: 'read subscribe' }, exp);
      await sleep(Math.max(0, exp * 1000 - Date.now() + 50));
      const again = await openSse(jwtServer.url, '/subscribe', token);
      again.close();
      expect(again.status).toBe(401);
    });

    it('refuses a token of another tenant, an expired one, a forged one, and one short of the scope', async () => {
      const otherTenant = await sign({ sub: 'alice', tenant: 'other', scope: 'read append' });
      const refused = await call(jwtServer.url, 'GET', '/streams/jwt-1/events', { credential: otherTenant });
      expect401(refused, 'the key is not valid here');
      const post = await call(jwtServer.url, 'POST', '/streams/jwt-2/events', {
        credential: otherTenant,
        body: { events: [event('Signed')] },
      });
      expect401(post, 'the key is not valid here');

      const expired = await sign(
        { sub: 'alice', tenant: 'default', scope: 'read' },
        Math.floor(Date.now() / 1000) - 120,
      );
      expect401(
        await call(jwtServer.url, 'GET', '/streams/jwt-1/events', { credential: expired }),
        'the token has expired',
      );

      const stranger = (await generateKeyPair('ES256')).privateKey;
      const forged = await sign({ sub: 'alice', tenant: 'default', scope: 'admin' }, undefined, stranger);
      expect401(
        await call(jwtServer.url, 'GET', '/streams/jwt-1/events', { credential: forged }),
        'the token is not valid',
      );

      const readOnly = await sign({ sub: 'bob', tenant: 'default', scope: 'read' });
      expect403(
        await call(jwtServer.url, 'POST', '/streams/jwt-2/events', {
          credential: readOnly,
          body: { events: [event('Signed')] },
        }),
      );
      expect((await call(jwtServer.url, 'GET', '/streams/jwt-2', { credential: admin })).status).toBe(404);
      // The main server has no JWT verifier: a token is just not a valid key there.
      expect401(await as(await sign({ sub: 'alice', tenant: 'default', scope: 'read' })).get('/streams/note-1'));
      expectNoSecret(refused.text);
    });
  });
});
