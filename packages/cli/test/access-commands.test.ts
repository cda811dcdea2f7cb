/**
 * `annals tenants` and `annals keys` through the real bin, and `annals serve` with
 * authentication on by default on PostgreSQL: a tenant made, a key for it printed once and
 * listed without its secret, the server refusing a request without it and serving one with it,
 * the key revoked, the tenant dropped. Roles are per server, so this runs on PostgreSQL only.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, postgresBackend } from '../../core/test/support/backends.js';
import { annals, httpUrlIn, spawnAnnals } from './support/bin.js';

describe.skipIf(!databaseUrl)('annals tenants, keys and serve --tenants, on PostgreSQL', () => {
  const tag = randomBytes(3).toString('hex');
  const directory = `ctl_${tag}`;
  const prefix = `c${tag}_`;
  const serverRole = `srv_${tag}`;
  const tenancy = ['--directory', directory, '--prefix', prefix, '--server-role', serverRole];
  const tenant = 'acme';

  afterAll(async () => {
    const admin = postgresBackend.client();
    await annals(['tenants', 'drop', tenant, '--yes', ...tenancy]);
    await admin.exec(`drop schema if exists "${directory}" cascade`);
    await admin.exec(`do $$ begin
      if exists (select from pg_roles where rolname = '${serverRole}') then
        execute 'drop owned by "${serverRole}"'; execute 'drop role "${serverRole}"';
      end if; end $$;`);
  });

  it('creates a tenant and a key for it, serves it with the key only, revokes the key, drops the tenant', async () => {
    const created = await annals(['tenants', 'create', tenant, ...tenancy, '--json']);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ id: tenant, schema: `${prefix}${tenant}` });
    const listed = await annals(['tenants', 'list', ...tenancy, '--json']);
    expect(JSON.parse(listed.stdout).map((t: { id: string }) => t.id)).toEqual([tenant]);

    // A key: the secret once, then only its hash is kept.
    const made = await annals([
      'keys',
      'create',
      '--tenant',
      tenant,
      '--name',
      'acme app',
      '--scopes',
      'read,append',
      '--directory',
      directory,
      '--server-role',
      serverRole,
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const key = JSON.parse(made.stdout) as { id: string; secret: string };
    expect(key.secret).toMatch(/^ank_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const keys = await annals(['keys', 'list', '--directory', directory, '--json']);
    expect(keys.stdout).not.toContain(key.secret.slice(22));
    expect(JSON.parse(keys.stdout)).toMatchObject([{ id: key.id, tenant, scopes: ['read', 'append'] }]);

    // Bad input: a clear error, and no key made.
    const bad = await annals(['keys', 'create', '--name', 'x', '--scopes', 'read,root', '--directory', directory]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('INVALID_INPUT');
    expect(JSON.parse((await annals(['keys', 'list', '--directory', directory, '--json'])).stdout)).toHaveLength(1);

    // The server, logged in as the server role, with auth on by default.
    const url = new URL(databaseUrl as string);
    url.username = serverRole;
    const {
      child,
      found: base,
      output,
    } = await spawnAnnals(
      ['serve', '--tenants', '--directory', directory, '--port', '0', '--rate-limit', '0'],
      (printed) => (printed.includes('auth: on') ? httpUrlIn(printed) : undefined),
      url.toString(),
    );
    try {
      expect(output()).toContain('auth: on');
      const append = (headers: Record<string, string>) =>
        fetch(`${base}/streams/order-1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ events: [{ type: 'Placed', data: { total: 3 }, metadata: { actor: 'root' } }] }),
        });
      expect((await append({})).status).toBe(401);
      expect((await append({ authorization: `Bearer ${key.secret}` })).status).toBe(201);
      const read = await fetch(`${base}/streams/order-1/events`, {
        headers: { authorization: `Bearer ${key.secret}` },
      });
      const page = (await read.json()) as { events: { metadata: { actor: string } }[] };
      expect(page.events.map((e) => e.metadata.actor)).toEqual(['key:acme app']);

      const revoked = await annals(['keys', 'revoke', key.id, '--directory', directory]);
      expect(revoked.code, revoked.stderr).toBe(0);
      // The running server hears of it at once (NOTIFY), well before its cache would expire.
      const deadline = Date.now() + 3000;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await append({ authorization: `Bearer ${key.secret}` })).status;
        if (status === 401) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(status).toBe(401);
      expect((await annals(['keys', 'revoke', key.id, '--directory', directory])).code).toBe(1);
    } finally {
      child.kill('SIGTERM');
    }

    const refused = await annals(['tenants', 'drop', tenant, ...tenancy]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--yes');
    const spare = await annals([
      'keys',
      'create',
      '--tenant',
      tenant,
      '--name',
      'spare',
      '--scopes',
      'read',
      '--directory',
      directory,
      '--json',
    ]);
    const spareId = (JSON.parse(spare.stdout) as { id: string }).id;
    const dropped = await annals(['tenants', 'drop', tenant, '--yes', ...tenancy]);
    expect(dropped.code, dropped.stderr).toBe(0);
    // Its keys went with it: were the id made again, they must not reach the new tenant.
    const after = JSON.parse((await annals(['keys', 'list', '--directory', directory, '--json'])).stdout) as {
      id: string;
      revokedAt: string | null;
    }[];
    expect(after.find((k) => k.id === spareId)?.revokedAt).not.toBeNull();
    expect(JSON.parse((await annals(['tenants', 'list', ...tenancy, '--json'])).stdout)).toEqual([]);
  }, 120_000);
});
