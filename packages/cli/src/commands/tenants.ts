/**
 * `annals tenants create|list|migrate|drop`: tenants, each a store in a schema of its own
 * under roles of its own (docs/tenancy.md). Run as a superuser (or a role that may create
 * roles and schemas); `annals serve --tenants` then serves them all.
 */
import { createTenant, dropTenant, InvalidInputError, listTenants, migrateTenants } from '@annals/core';
import { listApiKeys, revokeApiKey } from '@annals/server';
import { type ConnectionFlags, connect } from '../config.js';

export interface TenantFlags extends ConnectionFlags {
  directory?: string;
  prefix?: string;
  serverRole?: string;
  json?: boolean;
}

const tenancy = (flags: TenantFlags) => ({
  directory: flags.directory,
  schemaPrefix: flags.prefix,
  serverRole: flags.serverRole,
});

async function withAdmin<T>(
  flags: TenantFlags,
  work: (client: Awaited<ReturnType<typeof connect>>['client']) => Promise<T>,
) {
  const { client } = await connect(flags);
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

export const createTenantCommand = (id: string, flags: TenantFlags) =>
  withAdmin(flags, async (client) => {
    const tenant = await createTenant(client, id, tenancy(flags));
    if (flags.json) return console.log(JSON.stringify(tenant));
    console.log(`tenant ${tenant.id}: schema ${tenant.schema}, at migration ${tenant.current}`);
    console.log(
      `  roles: ${tenant.roles.owner} (owner), ${tenant.roles.app} (application), ${tenant.roles.reader} (reader)`,
    );
    for (const m of tenant.applied) console.log(`  applied ${String(m.id).padStart(4, '0')}_${m.name}`);
    console.log(`  a key for it: annals keys create --tenant ${tenant.id} --name <n> --scopes read,append`);
  });

export const listTenantsCommand = (flags: TenantFlags) =>
  withAdmin(flags, async (client) => {
    const tenants = await listTenants(client, tenancy(flags));
    if (flags.json) return console.log(JSON.stringify(tenants));
    if (tenants.length === 0) console.log('no tenants (annals tenants create <id>)');
    for (const t of tenants) console.log(`${t.id}  ${t.schema}  created ${t.createdAt.toISOString()}`);
  });

export const migrateTenantsCommand = (flags: TenantFlags) =>
  withAdmin(flags, async (client) => {
    const results = await migrateTenants(client, tenancy(flags));
    if (flags.json) return console.log(JSON.stringify(results));
    for (const r of results) console.log(`${r.tenant}: at migration ${r.current}, applied ${r.applied.length}`);
  });

export const dropTenantCommand = (id: string, flags: TenantFlags & { yes?: boolean }) =>
  withAdmin(flags, async (client) => {
    if (!flags.yes) {
      throw new InvalidInputError(
        '--yes',
        `dropping tenant ${id} deletes its whole log for good: export it first, then pass --yes`,
      );
    }
    const existed = await dropTenant(client, id, tenancy(flags));
    // Its keys go with it: were the id made again, they must not reach the new tenant.
    const keys = await listApiKeys(client, id, { directory: flags.directory }).catch(() => []);
    for (const key of keys) if (!key.revokedAt) await revokeApiKey(client, key.id, id, { directory: flags.directory });
    if (flags.json) return console.log(JSON.stringify({ id, dropped: existed }));
    console.log(existed ? `dropped tenant ${id}: its schema, roles and events are gone` : `no tenant ${id}`);
    if (!existed) process.exitCode = 1;
  });
