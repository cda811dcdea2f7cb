/**
 * API keys: `ank_<id>_<secret>`, a public id to find the key by and a 256-bit random secret
 * shown once, at creation. Each key has a name, a tenant, scopes, optionally stream
 * categories, the actor its events are stamped with, and an optional expiry. `annals keys`
 * drives these functions; the server only reads keys (see authenticator.ts).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { assertTenantId, InvalidInputError, type SqlClient, type SqlQueryable } from '@annals/core';
import { insertKey, type KeyRow, keysSetupSql, revokeKey, selectKey, selectKeys } from './key-queries.js';
import type { Principal, Scope } from './principal.js';
import { scopes as allScopes } from './principal.js';

/** Where keys live: the tenant directory's schema. @defaultValue `'annals_control'` */
export interface KeyStoreOptions {
  directory?: string;
}

/** A key as listed: everything but its secret. */
export interface ApiKey {
  id: string;
  name: string;
  tenant: string;
  scopes: Scope[];
  categories: string[] | null;
  actor: string;
  actAs: boolean;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** What a new key is for. */
export interface NewApiKey {
  name: string;
  /** @defaultValue `'default'` (the tenant of a single-store server) */
  tenant?: string;
  scopes: Scope[];
  /** Stream categories it may touch; omitted: all. */
  categories?: string[];
  /** Its events' actor. @defaultValue `key:<name>` */
  actor?: string;
  /** May name another actor in what it appends. @defaultValue false */
  actAs?: boolean;
  expiresAt?: Date;
}

const keyPattern = /^ank_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const namePattern = /^[\w .:@/-]{1,128}$/;
const categoryPattern = /^[^-\s]{1,256}$/;

const directoryOf = (options: KeyStoreOptions = {}) => {
  const directory = options.directory ?? 'annals_control';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(directory))
    throw new InvalidInputError('directory', 'must be a plain schema name');
  return directory;
};

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** The id and secret of a key string, or undefined when it is not shaped like one. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const match = keyPattern.exec(key);
  return match ? { id: match[1] as string, secret: match[2] as string } : undefined;
}

/** Whether `secret` is the one whose hash is `hash`, in time independent of where they differ. */
export function secretMatches(secret: string, hash: Uint8Array): boolean {
  const given = sha256(secret);
  return hash.length === given.length && timingSafeEqual(given, hash);
}

/** Creates the keys table (in the directory schema) and lets `serverRoles` read keys and revoke them. */
export async function setupApiKeys(
  admin: SqlClient,
  options: KeyStoreOptions & { serverRoles?: readonly string[] } = {},
): Promise<void> {
  const roles = options.serverRoles ?? ['annals_server'];
  for (const role of roles) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new InvalidInputError('serverRoles', `bad role name ${role}`);
  }
  await admin.exec(keysSetupSql(directoryOf(options), roles));
}

function validate(key: NewApiKey): Required<Omit<NewApiKey, 'expiresAt' | 'categories'>> & NewApiKey {
  if (typeof key !== 'object' || key === null) throw new InvalidInputError('key', 'must be an object');
  if (typeof key.name !== 'string' || !namePattern.test(key.name)) {
    throw new InvalidInputError('name', 'must be 1-128 letters, digits, spaces or . : @ / - _');
  }
  const tenant = key.tenant ?? 'default';
  assertTenantId(tenant);
  if (!Array.isArray(key.scopes) || key.scopes.length === 0 || key.scopes.some((s) => !allScopes.includes(s))) {
    throw new InvalidInputError('scopes', `must be one or more of ${allScopes.join(', ')}`);
  }
  if (
    key.categories !== undefined &&
    (!Array.isArray(key.categories) ||
      key.categories.length === 0 ||
      key.categories.some((c) => typeof c !== 'string' || !categoryPattern.test(c)))
  ) {
    throw new InvalidInputError('categories', 'must be one or more stream categories (no "-", no spaces)');
  }
  const actor = key.actor ?? `key:${key.name}`;
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 256) {
    throw new InvalidInputError('actor', 'must be 1-256 characters');
  }
  if (key.expiresAt !== undefined && (!(key.expiresAt instanceof Date) || Number.isNaN(key.expiresAt.getTime()))) {
    throw new InvalidInputError('expiresAt', 'must be a valid date');
  }
  return { ...key, tenant, actor, actAs: key.actAs === true, scopes: [...new Set(key.scopes)] };
}

const toApiKey = (row: KeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  tenant: row.tenant,
  scopes: row.scopes as Scope[],
  categories: row.categories,
  actor: row.actor,
  actAs: row.act_as,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
});

/**
 * Creates a key and returns it with its secret, `ank_<id>_<secret>`: shown this once, stored
 * only as a hash.
 */
export async function createApiKey(
  db: SqlQueryable,
  key: NewApiKey,
  options?: KeyStoreOptions,
): Promise<ApiKey & { secret: string }> {
  const valid = validate(key);
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const row = await insertKey(db, directoryOf(options), {
    id,
    secret_sha256: sha256(secret),
    name: valid.name,
    tenant: valid.tenant,
    scopes: valid.scopes,
    categories: valid.categories ?? null,
    actor: valid.actor,
    act_as: valid.actAs,
    expires_at: valid.expiresAt ?? null,
  });
  return { ...toApiKey(row), secret: `ank_${id}_${secret}` };
}

/** The keys of `tenant` (every tenant's when null), oldest first, without secrets. */
export async function listApiKeys(db: SqlQueryable, tenant: string | null, options?: KeyStoreOptions) {
  if (tenant !== null) assertTenantId(tenant);
  return (await selectKeys(db, directoryOf(options), tenant)).map(toApiKey);
}

/**
 * Revokes key `id` (only if it is `tenant`'s, when given): every server refuses it from now
 * on, and ends the SSE connections it holds. False when no such unrevoked key.
 */
export async function revokeApiKey(
  db: SqlQueryable,
  id: string,
  tenant: string | null = null,
  options?: KeyStoreOptions,
): Promise<boolean> {
  if (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id)) throw new InvalidInputError('id', 'must be a key id');
  return revokeKey(db, directoryOf(options), id, tenant);
}

/** The principal of key row `row`, or undefined when it is revoked or expired. */
export function principalOfKey(row: KeyRow, now = Date.now()): Principal | undefined {
  if (row.revoked_at !== null) return undefined;
  if (row.expires_at !== null && row.expires_at.getTime() <= now) return undefined;
  return {
    kind: 'key',
    id: row.id,
    name: row.name,
    tenant: row.tenant,
    scopes: new Set(row.scopes.filter((s): s is Scope => (allScopes as readonly string[]).includes(s))),
    categories: row.categories,
    actor: row.actor,
    actAs: row.act_as,
    expiresAt: row.expires_at,
  };
}

/** Looks a key row up by id (for the authenticator). */
export const findKeyRow = (db: SqlQueryable, id: string, options?: KeyStoreOptions) =>
  selectKey(db, directoryOf(options), id);
