/**
 * Tenants, isolated by PostgreSQL itself (docs/tenancy.md): each tenant is a store in a schema
 * of its own (`tenant_<id>`: its own log, positions, log lock, checkpoints, seals, subject
 * keys), with the three roles of {@link rolesSql} of its own. Its application role may use
 * that schema and nothing else, so the store's statements on a client running as it
 * ({@link tenantClient}) cannot reach another tenant's events, whichever schema they name. The
 * server logs in as one role, `NOINHERIT`, that holds no privilege itself and is a member of
 * every tenant's application role: a connection reaches a tenant's data only after `SET ROLE`
 * to that tenant. Being a member, the login role could also `SET ROLE` to any tenant: never
 * run SQL from outside on a tenant's client (docs/tenancy.md, "What is enforced where").
 *
 * A directory schema (`annals_control`) lists the tenants. Creating, migrating and dropping
 * tenants takes a role that may create roles and schemas (a superuser); these calls are for
 * the operator's tools (`annals tenants`), never for a request path.
 */
import pg from 'pg';
import { lockForSession, tenancyLock, unlockForSession } from '../db/locks.js';
import type { MigrateResult } from '../db/migrate.js';
import { createGroupCommit, createPostgresClient, type PostgresClientOptions } from '../db/pg-client.js';
import { applyRoles, type RoleNames, type rolesSql } from '../db/roles.js';
import type { SqlClient } from '../db/sql-client.js';
import { InvalidInputError } from '../errors.js';
import { assertSchemaName } from '../options.js';
import {
  deleteTenant,
  directoryExists,
  directorySetupSql,
  insertTenant,
  selectTenant,
  selectTenants,
  type TenantRow,
} from '../queries/tenants.js';

/** Where tenants live. Every field has a default. */
export interface TenancyOptions {
  /** The schema of the tenant directory (and of the server's API keys). @defaultValue `'annals_control'` */
  directory?: string;
  /** Each tenant's schema is this prefix and its id. @defaultValue `'tenant_'` */
  schemaPrefix?: string;
  /**
   * The login role servers connect as: `NOINHERIT`, created if missing, made a member of every
   * tenant's application role. @defaultValue `'annals_server'`
   */
  serverRole?: string;
}

/** A tenant: its id, its schema and its roles. */
export interface Tenant {
  id: string;
  schema: string;
  /** The roles of its schema, as {@link rolesSql} names them. */
  roles: Required<Omit<RoleNames, 'schema'>>;
  createdAt: Date;
}

const tenantIdPattern = /^[a-z][a-z0-9_]{0,39}$/;
const rolePattern = /^[a-z_][a-z0-9_]{0,62}$/;

interface Resolved {
  directory: string;
  schemaPrefix: string;
  serverRole: string;
}

function resolve(options: TenancyOptions = {}): Resolved {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError('options', 'must be an object');
  const directory = options.directory ?? 'annals_control';
  assertSchemaName(directory);
  const schemaPrefix = options.schemaPrefix ?? 'tenant_';
  if (typeof schemaPrefix !== 'string' || !/^[a-z_][a-z0-9_]{0,15}$/.test(schemaPrefix)) {
    throw new InvalidInputError('schemaPrefix', 'must be 1-16 lower-case letters, digits or "_"');
  }
  const serverRole = options.serverRole ?? 'annals_server';
  if (typeof serverRole !== 'string' || !rolePattern.test(serverRole) || serverRole.startsWith('pg_')) {
    throw new InvalidInputError('serverRole', 'must be a plain role name (lower-case letters, digits, "_")');
  }
  return { directory, schemaPrefix, serverRole };
}

/** Throws {@link InvalidInputError} unless `id` is a tenant id: 1-40 lower-case letters, digits, `_`, from a letter. */
export function assertTenantId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !tenantIdPattern.test(id)) {
    throw new InvalidInputError(
      'tenant',
      `must be 1-40 lower-case letters, digits or "_", starting with a letter; got ${JSON.stringify(id)?.slice(0, 80)}`,
    );
  }
}

/** The schema and role names of tenant `id` (whether or not it exists). */
export function tenantNames(id: string, options?: TenancyOptions): Omit<Tenant, 'createdAt'> {
  assertTenantId(id);
  const { schemaPrefix } = resolve(options);
  const schema = `${schemaPrefix}${id}`;
  return { id, schema, roles: rolesOfSchema(schema) };
}

function assertRolesBackend(client: SqlClient): void {
  if (!client.capabilities.concurrentConnections) {
    throw new InvalidInputError(
      'client',
      'tenants need a PostgreSQL server (roles); the embedded backend has one store',
    );
  }
}

/** The roles of a tenant's schema: the directory's schema is the truth, whatever prefix is configured now. */
const rolesOfSchema = (schema: string): Tenant['roles'] => ({
  owner: `${schema}_owner`,
  app: `${schema}_app`,
  reader: `${schema}_reader`,
});

const fromRow = (row: TenantRow): Tenant => ({
  id: row.id,
  schema: row.schema,
  roles: rolesOfSchema(row.schema),
  createdAt: row.created_at,
});

/** Tenant creation and removal run one at a time across processes. */
async function exclusively<T>(admin: SqlClient, directory: string, work: () => Promise<T>): Promise<T> {
  const session = await admin.session();
  const lock = tenancyLock(directory);
  try {
    await lockForSession(session, lock);
    return await work();
  } finally {
    await unlockForSession(session, lock).catch(() => undefined);
    await session.release();
  }
}

/**
 * Creates tenant `id` (idempotent: an existing tenant is migrated and its grants renewed): the
 * directory if missing, the tenant's schema and roles, its migrations run as its owner, the
 * grants, and the server role's membership in its application role. `admin` must be allowed
 * to create roles and schemas.
 *
 * @example
 * ```ts
 * import { createPostgresClient, createTenant } from '@annals/core';
 *
 * const admin = createPostgresClient({ connectionString: 'postgres://postgres@127.0.0.1/postgres' });
 * const acme = await createTenant(admin, 'acme');
 * console.log(acme.schema, acme.roles.app); // tenant_acme tenant_acme_app
 * ```
 */
export async function createTenant(
  admin: SqlClient,
  id: string,
  options?: TenancyOptions,
): Promise<Tenant & MigrateResult> {
  const names = tenantNames(id, options);
  const { directory, serverRole } = resolve(options);
  assertRolesBackend(admin);
  return exclusively(admin, directory, async () => {
    await admin.exec(directorySetupSql(directory, serverRole));
    const migrated = await applyRoles(admin, { schema: names.schema, ...names.roles });
    // The tenant's data reaches the server only after SET ROLE: the server role is NOINHERIT.
    await admin.exec(`grant "${names.roles.app}" to "${serverRole}"`);
    await insertTenant(admin, directory, id, names.schema);
    const row = await selectTenant(admin, directory, id);
    return { ...fromRow(row as TenantRow), applied: migrated.applied, current: migrated.current };
  });
}

/** Every tenant of the directory, by id (none when it was never set up). */
export async function listTenants(client: SqlClient, options?: TenancyOptions): Promise<Tenant[]> {
  const { directory } = resolve(options);
  if (!(await directoryExists(client, directory))) return [];
  return (await selectTenants(client, directory)).map(fromRow);
}

/** Tenant `id`, or undefined when the directory does not list it. */
export async function getTenant(client: SqlClient, id: string, options?: TenancyOptions): Promise<Tenant | undefined> {
  assertTenantId(id);
  const { directory } = resolve(options);
  if (!(await directoryExists(client, directory))) return undefined;
  const row = await selectTenant(client, directory, id);
  return row ? fromRow(row) : undefined;
}

/**
 * Applies the pending migrations of every tenant, one tenant at a time (each under its own
 * migration lock, as its owner), and renews the grants. Run after upgrading Annals.
 */
export async function migrateTenants(
  admin: SqlClient,
  options?: TenancyOptions,
): Promise<(MigrateResult & { tenant: string })[]> {
  assertRolesBackend(admin);
  const results: (MigrateResult & { tenant: string })[] = [];
  for (const tenant of await listTenants(admin, options)) {
    const migrated = await applyRoles(admin, { schema: tenant.schema, ...tenant.roles });
    results.push({ tenant: tenant.id, applied: migrated.applied, current: migrated.current });
  }
  return results;
}

/**
 * Deletes tenant `id` for good: its schema with every event, its roles, its directory row.
 * Export it first (`annals export`) if its history may be wanted. Returns whether it existed.
 */
export async function dropTenant(admin: SqlClient, id: string, options?: TenancyOptions): Promise<boolean> {
  const { directory } = resolve(options);
  assertRolesBackend(admin);
  return exclusively(admin, directory, async () => {
    // The directory's schema is the truth; the configured prefix names a tenant it never listed.
    const listed = (await directoryExists(admin, directory)) ? await selectTenant(admin, directory, id) : undefined;
    const names = listed ? fromRow(listed) : tenantNames(id, options);
    const existed = listed !== undefined && (await deleteTenant(admin, directory, id));
    await admin.exec(`drop schema if exists "${names.schema}" cascade`);
    for (const role of [names.roles.app, names.roles.reader, names.roles.owner]) {
      await admin.exec(`do $$ begin
  if exists (select from pg_roles where rolname = '${role}') then
    execute 'drop owned by "${role}"'; execute 'drop role "${role}"';
  end if;
end $$;`);
    }
    return existed;
  });
}

/**
 * A client of tenant `id` on `pool`: every statement runs as the tenant's application role,
 * so it reaches the tenant's schema and nothing else. Open the tenant's store on it with
 * `schema: tenant.schema` and `migrate: false`. Many tenant clients may share one pool (see
 * `role` in {@link PostgresClientOptions}); closing one leaves the pool open.
 */
export function tenantClient(
  pool: pg.Pool,
  tenant: string | Pick<Tenant, 'roles'>,
  options?: TenancyOptions,
): SqlClient {
  const role = typeof tenant === 'string' ? tenantNames(tenant, options).roles.app : tenant.roles.app;
  return createPostgresClient({ pool, role });
}

/** The clients of a multi-tenant server, on one pool: see {@link createTenantClients}. */
export interface TenantClients {
  /** Runs as the login role itself (`RESET ROLE`): the directory and the keys, no tenant's data. */
  control: SqlClient;
  /**
   * A tenant's client, running as its application role (made once, kept): give the tenant as
   * the directory lists it (`getTenant`), or its id (its roles then follow the configured prefix).
   */
  forTenant(tenant: string | Pick<Tenant, 'id' | 'roles'>): SqlClient;
  /** Ends the pool. */
  close(): Promise<void>;
}

/**
 * One pool of connections for every tenant, as a server of many tenants needs it: a
 * connection is set to the role of whichever tenant takes it (one `SET ROLE` round trip, only
 * when the last user was another tenant), so the connections a server holds do not grow with
 * its tenants. LISTEN takes one connection for them all.
 */
export function createTenantClients(
  options: {
    connectionString: string;
    maxConnections?: number;
    applicationName?: string;
    /** Appends of different tenants arriving together share one commit (pg-group-commit.ts). @defaultValue true */
    groupCommit?: boolean;
  } & TenancyOptions,
): TenantClients {
  resolve(options);
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    application_name: options.applicationName ?? 'annals',
  });
  // An idle connection lost emits 'error' on the pool: without a listener it would crash.
  pool.on('error', () => {});
  const clients = new Map<string, SqlClient>();
  const groupCommit = options.groupCommit === false ? undefined : createGroupCommit(pool);
  return {
    control: createPostgresClient({ pool, role: null }),
    forTenant(tenant) {
      const role = typeof tenant === 'string' ? tenantNames(tenant, options).roles.app : tenant.roles.app;
      let client = clients.get(role);
      if (!client) {
        client = createPostgresClient({ pool, role, groupCommit });
        clients.set(role, client);
      }
      return client;
    },
    close: () => pool.end(),
  };
}
