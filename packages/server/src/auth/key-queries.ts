/**
 * The SQL of API keys: one table in the tenant directory's schema (`annals_control`), beside
 * the tenants. A key's secret is never stored, only its SHA-256 (the secret is 256 random
 * bits, so a fast hash is as safe as a slow one). Revoking sets `revoked_at` and notifies
 * every server on the database at once (channel `<directory>_keys`). The schema name spliced
 * in was validated as plain by the caller.
 */
import type { SqlQueryable } from '@annals/core';

/** One row of `api_keys`. */
export interface KeyRow {
  id: string;
  secret_sha256: Buffer | Uint8Array;
  name: string;
  tenant: string;
  scopes: string[];
  categories: string[] | null;
  actor: string;
  act_as: boolean;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

/** The NOTIFY channel of revocations. */
export const revokedChannel = (directory: string) => `${directory}_keys`;

/** The table, and what the server's role may do with it. Idempotent. */
export function keysSetupSql(directory: string, serverRoles: readonly string[]): string {
  const grants = serverRoles
    .map(
      (role) => `do $$ begin
  if exists (select from pg_roles where rolname = '${role}') then
    grant usage on schema "${directory}" to "${role}";
    grant select, insert, update (revoked_at) on "${directory}".api_keys to "${role}";
  end if;
end $$;`,
    )
    .join('\n');
  return `create schema if not exists "${directory}";
create table if not exists "${directory}".api_keys (
  id text primary key,
  secret_sha256 bytea not null,
  name text not null,
  tenant text not null,
  scopes text[] not null,
  categories text[],
  actor text not null,
  act_as boolean not null default false,
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz
);
create index if not exists api_keys_tenant_idx on "${directory}".api_keys (tenant, created_at);
${grants}
`;
}

const columns =
  'id, secret_sha256, name, tenant, scopes, categories, actor, act_as, created_at, expires_at, revoked_at';

export async function insertKey(db: SqlQueryable, directory: string, row: Omit<KeyRow, 'created_at' | 'revoked_at'>) {
  const [created] = await db.query<KeyRow>(
    `insert into "${directory}".api_keys (id, secret_sha256, name, tenant, scopes, categories, actor, act_as, expires_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning ${columns}`,
    [
      row.id,
      row.secret_sha256,
      row.name,
      row.tenant,
      row.scopes,
      row.categories,
      row.actor,
      row.act_as,
      row.expires_at,
    ],
  );
  return created as KeyRow;
}

export async function selectKey(db: SqlQueryable, directory: string, id: string): Promise<KeyRow | undefined> {
  const [row] = await db.query<KeyRow>(`select ${columns} from "${directory}".api_keys where id = $1`, [id], {
    prepare: true,
  });
  return row;
}

export function selectKeys(db: SqlQueryable, directory: string, tenant: string | null): Promise<KeyRow[]> {
  return db.query<KeyRow>(
    `select ${columns} from "${directory}".api_keys where $1::text is null or tenant = $1 order by created_at, id`,
    [tenant],
  );
}

/** Revokes key `id` (of `tenant`, when given) and tells every server; false when there was none to revoke. */
export async function revokeKey(db: SqlQueryable, directory: string, id: string, tenant: string | null) {
  const rows = await db.query(
    `with revoked as (
       update "${directory}".api_keys set revoked_at = now()
        where id = $1 and revoked_at is null and ($2::text is null or tenant = $2) returning id)
     select id, pg_notify($3, id) from revoked`,
    [id, tenant, revokedChannel(directory)],
  );
  return rows.length > 0;
}

/** Whether the keys table exists. */
export async function keysTableExists(db: SqlQueryable, directory: string): Promise<boolean> {
  const [row] = await db.query<{ exists: boolean }>(`select to_regclass($1) is not null as exists`, [
    `"${directory}".api_keys`,
  ]);
  return row?.exists === true;
}
