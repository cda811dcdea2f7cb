/**
 * `annals keys create|list|revoke`: the server's API keys, kept in the tenant directory's
 * schema (`annals_control`). Run as the owner (or a superuser): creating the first key makes
 * the table and lets the server's roles read it. A key's secret is printed once, at creation.
 */
import { InvalidInputError } from '@annals/core';
import { createApiKey, listApiKeys, revokeApiKey, type Scope, setupApiKeys } from '@annals/server';
import { type ConnectionFlags, connect } from '../config.js';

export interface KeyFlags extends ConnectionFlags {
  directory?: string;
  json?: boolean;
}

export interface CreateKeyFlags extends KeyFlags {
  name: string;
  scopes: string;
  tenant?: string;
  categories?: string;
  actor?: string;
  actAs?: boolean;
  expires?: string;
  serverRole?: string[];
}

/** `30d`, `12h`, `15m` from now, or an ISO-8601 time. */
export function expiryOf(value: string, now = Date.now()): Date {
  const relative = /^(\d{1,6})([dhm])$/.exec(value);
  if (relative) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000 }[relative[2] as 'd' | 'h' | 'm'];
    return new Date(now + Number(relative[1]) * unit);
  }
  const time = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(time.getTime())) {
    throw new InvalidInputError('--expires', 'must be like 30d, 12h, 15m or an ISO-8601 time');
  }
  return time;
}

const list = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);

export async function createKeyCommand(flags: CreateKeyFlags): Promise<void> {
  const { client } = await connect(flags);
  try {
    const directory = flags.directory;
    const schema = flags.schema ?? process.env.ANNALS_SCHEMA ?? 'annals';
    // The roles a server may log in as: the multi-tenant server role and the store's application role.
    await setupApiKeys(client, { directory, serverRoles: flags.serverRole ?? ['annals_server', `${schema}_app`] });
    const key = await createApiKey(
      client,
      {
        name: flags.name,
        tenant: flags.tenant,
        scopes: (list(flags.scopes) ?? []) as Scope[],
        categories: list(flags.categories),
        actor: flags.actor,
        actAs: flags.actAs,
        expiresAt: flags.expires === undefined ? undefined : expiryOf(flags.expires),
      },
      { directory },
    );
    if (flags.json) {
      console.log(JSON.stringify(key));
      return;
    }
    console.log(`created key ${key.id} "${key.name}" for tenant ${key.tenant}: ${key.scopes.join(', ')}`);
    if (key.categories) console.log(`  only categories: ${key.categories.join(', ')}`);
    console.log(`  actor: ${key.actor}${key.actAs ? ' (may act as others)' : ''}`);
    if (key.expiresAt) console.log(`  expires: ${key.expiresAt.toISOString()}`);
    console.log(
      `\n  ${key.secret}\n\nShown this once: only its hash is stored. Send it as "Authorization: Bearer <key>".`,
    );
  } finally {
    await client.close();
  }
}

export async function listKeysCommand(flags: KeyFlags & { tenant?: string }): Promise<void> {
  const { client } = await connect(flags);
  try {
    const keys = await listApiKeys(client, flags.tenant ?? null, { directory: flags.directory }).catch((error) => {
      if ((error as { code?: string }).code === '42P01') return [];
      throw error;
    });
    if (flags.json) {
      console.log(JSON.stringify(keys));
      return;
    }
    if (keys.length === 0) console.log('no keys (annals keys create --name <n> --scopes read,append)');
    for (const key of keys) {
      const state = key.revokedAt
        ? `revoked ${key.revokedAt.toISOString()}`
        : key.expiresAt && key.expiresAt.getTime() <= Date.now()
          ? `expired ${key.expiresAt.toISOString()}`
          : 'active';
      const only = key.categories ? ` [${key.categories.join(',')}]` : '';
      console.log(`${key.id}  ${key.tenant}  ${key.name}  ${key.scopes.join(',')}${only}  ${state}`);
    }
  } finally {
    await client.close();
  }
}

export async function revokeKeyCommand(id: string, flags: KeyFlags): Promise<void> {
  const { client } = await connect(flags);
  try {
    const revoked = await revokeApiKey(client, id, null, { directory: flags.directory });
    if (flags.json) console.log(JSON.stringify({ id, revoked }));
    else console.log(revoked ? `revoked ${id}: every server refuses it now` : `no active key ${id}`);
    if (!revoked) process.exitCode = 1;
  } finally {
    await client.close();
  }
}
