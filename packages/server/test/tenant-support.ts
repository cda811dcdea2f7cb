/** Helpers of the tests that serve several tenants on PostgreSQL. */
import { dropTenant, type SqlClient, type TenancyOptions } from '@annals/core';
import { databaseUrl } from '../../core/test/support/backends.js';

/** The test database's URL, logged in as `role` (trust auth, no password). */
export function urlAs(role: string): string {
  const url = new URL(databaseUrl as string);
  url.username = role;
  url.password = '';
  return url.toString();
}

/** Drops `tenants`, the directory schema and the server role that `options` name. */
export async function dropTenantFixture(admin: SqlClient, options: TenancyOptions, tenants: string[]): Promise<void> {
  for (const id of tenants) await dropTenant(admin, id, options).catch(() => {});
  await admin.exec(`drop schema if exists "${options.directory}" cascade`);
  await admin.exec(`do $$ begin
  if exists (select from pg_roles where rolname = '${options.serverRole}') then
    execute 'drop owned by "${options.serverRole}"'; execute 'drop role "${options.serverRole}"';
  end if;
end $$;`);
}
