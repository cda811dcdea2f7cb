/**
 * `/keys` over a real socket, and the edges of revocation: a tenant's admin lists, creates and
 * revokes its own keys only; a key cannot hand out more than it holds (an actor of its choosing,
 * a longer life); a key revoked between a request's authentication and its live stream's start
 * still loses the stream. Both backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema } from '../../core/test/support/backends.js';
import { revokeApiKey, setupApiKeys } from '../src/auth/api-keys.js';
import { Authenticator } from '../src/auth/authenticator.js';
import { call, makeKey } from './auth-support.js';
import { backends, startTestServer, type TestServer } from './support.js';

describe.each(backends)('/keys and revocation edges, on $name', (backend) => {
  const directory = freshSchema('keyroutes');
  let server: TestServer;
  let admin: string;
  let trusted: string;
  let otherKey: { id: string };

  beforeAll(async () => {
    const client = backend.client();
    await setupApiKeys(client, { directory, serverRoles: [] });
    admin = (await makeKey(client, directory, { scopes: ['admin'] })).secret;
    trusted = (await makeKey(client, directory, { scopes: ['admin'], actAs: true })).secret;
    otherKey = await makeKey(client, directory, { scopes: ['read'], tenant: 'other' });
    server = await startTestServer(backend, { auth: { directory } });
  });
  afterAll(async () => {
    await server?.cleanup();
    await backend.client().exec(`drop schema if exists "${directory}" cascade`);
  });

  it("lists, creates and revokes the caller's tenant's keys only", async () => {
    const listed = await call(server.url, 'GET', '/keys', { credential: admin });
    expect(listed.status).toBe(200);
    const tenants = new Set(listed.body.keys.map((k: { tenant: string }) => k.tenant));
    expect([...tenants]).toEqual(['default']);
    expect(listed.text).not.toMatch(/secret|sha256/);

    const created = await call(server.url, 'POST', '/keys', {
      credential: admin,
      body: { name: 'made over http', scopes: ['read'] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tenant: 'default', actor: 'key:made over http', actAs: false });
    const secret = created.body.secret as string;
    expect((await call(server.url, 'GET', '/events', { credential: secret })).status).toBe(200);
    expect((await call(server.url, 'POST', '/verify', { credential: secret, body: {} })).status).toBe(403);

    const revoked = await call(server.url, 'DELETE', `/keys/${created.body.id}`, { credential: admin });
    expect(revoked.body).toEqual({ id: created.body.id, revoked: true });
    expect((await call(server.url, 'GET', '/events', { credential: secret })).status).toBe(401);
    // Again, or another tenant's key: the same 404, and that key still works.
    const again = await call(server.url, 'DELETE', `/keys/${created.body.id}`, { credential: admin });
    expect(again.status).toBe(404);
    const foreign = await call(server.url, 'DELETE', `/keys/${otherKey.id}`, { credential: admin });
    expect(foreign.status).toBe(404);
    expect({ ...foreign.body, instance: undefined }).toEqual({ ...again.body, instance: undefined });
    const [row] = await backend
      .client()
      .query<{ revoked_at: Date | null }>(`select revoked_at from "${directory}".api_keys where id = $1`, [
        otherKey.id,
      ]);
    expect(row?.revoked_at).toBeNull();
  });

  it('a key hands out no more than it holds: no actor of its choosing, no longer life', async () => {
    const forged = await call(server.url, 'POST', '/keys', {
      credential: admin,
      body: { name: 'forger', scopes: ['append'], actor: 'user:alice' },
    });
    expect(forged.status).toBe(403);
    const acting = await call(server.url, 'POST', '/keys', {
      credential: admin,
      body: { name: 'forger2', scopes: ['append'], actAs: true },
    });
    expect(acting.status).toBe(403);
    const allowed = await call(server.url, 'POST', '/keys', {
      credential: trusted,
      body: { name: 'for alice', scopes: ['append'], actor: 'user:alice' },
    });
    expect(allowed.status).toBe(201);
    expect(allowed.body.actor).toBe('user:alice');

    // A key that expires may make only keys that expire no later.
    const soon = new Date(Date.now() + 60_000);
    const shortLived = await call(server.url, 'POST', '/keys', {
      credential: admin,
      body: { name: 'short', scopes: ['admin'], expiresAt: soon.toISOString() },
    });
    expect(shortLived.status).toBe(201);
    const forever = await call(server.url, 'POST', '/keys', {
      credential: shortLived.body.secret,
      body: { name: 'forever', scopes: ['read'] },
    });
    expect(forever.status).toBe(403);
    expect(forever.body.field).toBe('body.expiresAt');
    const within = await call(server.url, 'POST', '/keys', {
      credential: shortLived.body.secret,
      body: { name: 'within', scopes: ['read'], expiresAt: new Date(soon.getTime() - 1000).toISOString() },
    });
    expect(within.status).toBe(201);
  });

  it('a key revoked after a request was authenticated still ends what that request opens', async () => {
    const client = backend.client();
    const key = await makeKey(client, directory, { scopes: ['subscribe'] });
    const authenticator = new Authenticator({ keys: { client, directory }, cacheMs: 60_000 });
    await authenticator.start();
    try {
      const authenticatedAt = Date.now();
      const principal = await authenticator.authenticate(`Bearer ${key.secret}`);
      const heard = new Promise<void>((resolve) => {
        const stop = authenticator.watch(principal, () => resolve());
        void stop;
      });
      await call(server.url, 'DELETE', `/keys/${key.id}`, { credential: admin });
      await heard; // the NOTIFY reached this authenticator
      // Now a watch started late, for a request authenticated before the revocation.
      const ended = await new Promise<boolean>((resolve) => {
        authenticator.watch(principal, () => resolve(true), authenticatedAt);
        setTimeout(() => resolve(false), 500);
      });
      expect(ended).toBe(true);
      // One authenticated after the revocation is not ended by it (it could not have been).
      const late = await new Promise<boolean>((resolve) => {
        authenticator.watch(principal, () => resolve(true), Date.now() + 1);
        setTimeout(() => resolve(false), 200);
      });
      expect(late).toBe(false);
    } finally {
      await authenticator.close();
    }
  });

  it('the process that revokes a key refuses it at once, without waiting for its own NOTIFY', async () => {
    // This authenticator never listens, so only `revoked` can drop the key it holds: the
    // `/keys` route calls it, else its next request could pass before the notification lands.
    const client = backend.client();
    const key = await makeKey(client, directory, { scopes: ['read'] });
    const authenticator = new Authenticator({ keys: { client, directory }, cacheMs: 60_000 });
    const header = `Bearer ${key.secret}`;
    const principal = await authenticator.authenticate(header);
    const ended = new Promise<void>((resolve) => authenticator.watch(principal, resolve));
    expect(await revokeApiKey(client, key.id, null, { directory })).toBe(true);
    expect(authenticator.cached(header), 'the cache is real: a revocation elsewhere is not seen').toBeDefined();
    authenticator.revoked(key.id);
    expect(authenticator.cached(header)).toBeUndefined();
    await expect(authenticator.authenticate(header)).rejects.toThrow(/not valid/);
    await ended;
  });
});
