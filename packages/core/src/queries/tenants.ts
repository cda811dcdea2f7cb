/**
 * The SQL of the tenant directory: one small schema (`annals_control` by default) with a row
 * per tenant. Each tenant's events live in a schema of its own, reached under roles of its
 * own (docs/tenancy.md); the directory only says which tenants exist. Identifiers spliced in
 * here were validated as plain names by the caller.
 */
import type { SqlQueryable } from '../db/sql-client.js';

/** One row of `tenants`. */
export interface TenantRow {
  id: string;
  schema: string;
  created_at: Date;
}

/** Creates the directory schema and table, and lets `serverRole` read it. Idempotent. */
export function directorySetupSql(directory: string, serverRole: string): string {
  return `create schema if not exists "${directory}";
create table if not exists "${directory}".tenants (
  id text primary key,
  schema text not null unique,
  created_at timestamptz not null default now()
);
do $$ begin
  if not exists (select from pg_roles where rolname = '${serverRole}') then
    create role "${serverRole}" login noinherit;
  end if;
end $$;
grant usage on schema "${directory}" to "${serverRole}";
grant select on "${directory}".tenants to "${serverRole}";
`;
}

export async function insertTenant(db: SqlQueryable, directory: string, id: string, schema: string): Promise<void> {
  await db.query(`insert into "${directory}".tenants (id, schema) values ($1, $2) on conflict (id) do nothing`, [
    id,
    schema,
  ]);
}

export async function deleteTenant(db: SqlQueryable, directory: string, id: string): Promise<boolean> {
  const rows = await db.query(`delete from "${directory}".tenants where id = $1 returning id`, [id]);
  return rows.length > 0;
}

export function selectTenants(db: SqlQueryable, directory: string): Promise<TenantRow[]> {
  return db.query<TenantRow>(`select id, schema, created_at from "${directory}".tenants order by id`);
}

export async function selectTenant(db: SqlQueryable, directory: string, id: string): Promise<TenantRow | undefined> {
  const [row] = await db.query<TenantRow>(`select id, schema, created_at from "${directory}".tenants where id = $1`, [
    id,
  ]);
  return row;
}

/** Whether the directory exists (a database where no tenant was ever created has none). */
export async function directoryExists(db: SqlQueryable, directory: string): Promise<boolean> {
  const [row] = await db.query<{ exists: boolean }>(`select to_regclass($1) is not null as exists`, [
    `"${directory}".tenants`,
  ]);
  return row?.exists === true;
}
