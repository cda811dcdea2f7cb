/**
 * Schema migrations: numbered plain SQL files in `packages/core/sql/` (`0001_name.sql`, ...),
 * never edited once released. `migrate` applies the missing ones in order, in one transaction
 * under a transaction-level advisory lock keyed on the schema, so several processes starting
 * at once apply each migration exactly once: the others wait, then find nothing to do.
 * A database holding a migration newer than the ones known here is refused.
 */
import { readdir, readFile } from 'node:fs/promises';
import { SchemaOutdatedError, SchemaTooNewError } from '../errors.js';
import { assertSchemaName } from '../options.js';
import { lockForTransaction, logLockSql, migrateLock } from './locks.js';
import type { SqlClient, SqlQueryable } from './sql-client.js';

/** One migration file. */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

/** What `migrate` did. */
export interface MigrateResult {
  /** Migrations applied by this call, in order. */
  applied: { id: number; name: string }[];
  /** The schema's migration number afterwards. */
  current: number;
}

const migrationsDir = new URL('../../sql/', import.meta.url);
let cachedMigrations: Promise<Migration[]> | undefined;

/** The migrations shipped with this version, in order. */
export function loadMigrations(): Promise<Migration[]> {
  cachedMigrations ??= (async () => {
    const files = (await readdir(migrationsDir)).filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file)).sort();
    return Promise.all(
      files.map(async (file, index) => {
        const id = Number(file.slice(0, 4));
        if (id !== index + 1) throw new Error(`migration ${file} is out of sequence (expected ${index + 1})`);
        return { id, name: file.slice(5, -4), sql: await readFile(new URL(file, migrationsDir), 'utf8') };
      }),
    );
  })();
  return cachedMigrations;
}

/** The NOTIFY channel of a schema's appends. */
export function notifyChannel(schema: string): string {
  return `${schema}_events`;
}

/** Fills a migration's placeholders for one schema (whose name was validated as plain). */
export function renderMigration(sql: string, schema: string): string {
  assertSchemaName(schema);
  return sql
    .replaceAll(':SCHEMA', `"${schema}"`)
    .replaceAll(':CHANNEL', `'${notifyChannel(schema)}'`)
    .replaceAll(':LOG_LOCK', logLockSql(schema));
}

/** Applies every missing migration to `schema`. Safe to call from several processes at once. */
export async function migrate(client: SqlClient, schema: string): Promise<MigrateResult> {
  assertSchemaName(schema);
  const migrations = await loadMigrations();
  const latest = migrations.length;
  return client.transaction(async (tx) => {
    await lockForTransaction(tx, migrateLock(schema));
    await tx.query(`create schema if not exists "${schema}"`);
    await tx.query(
      `create table if not exists "${schema}".migrations (
         id integer primary key,
         name text not null,
         applied_at timestamptz not null default now())`,
    );
    const current = await currentMigration(tx, schema);
    if (current > latest) throw new SchemaTooNewError(schema, latest, current);
    const applied: MigrateResult['applied'] = [];
    for (const migration of migrations.slice(current)) {
      // Multi-statement scripts go through the simple query protocol (no parameters).
      await tx.exec(renderMigration(migration.sql, schema));
      await tx.query(`insert into "${schema}".migrations (id, name) values ($1, $2)`, [migration.id, migration.name]);
      applied.push({ id: migration.id, name: migration.name });
    }
    return { applied, current: Math.max(current, latest) };
  });
}

/**
 * Checks that `schema` is migrated to exactly what this version knows: throws
 * {@link SchemaTooNewError} when it is newer and {@link SchemaOutdatedError} when it is behind.
 */
/** Where a schema's migrations stand against the ones this version of Annals ships. */
export interface SchemaStatus {
  /** The schema read. */
  schema: string;
  /** The newest migration applied to the schema (0: none, or no such schema). */
  current: number;
  /** The newest migration this version ships. */
  latest: number;
  /** `current`: ready; `outdated`: run `migrate`; `newer`: migrated by a newer version of Annals. */
  state: 'current' | 'outdated' | 'newer';
}

/**
 * Reads where `schema`'s migrations stand, without changing anything (for readiness checks).
 *
 * @example
 * ```ts
 * import { createPostgresClient, schemaStatus } from '@annals/core';
 *
 * const client = createPostgresClient({ connectionString: 'postgres://localhost/app' });
 * const { state } = await schemaStatus(client, 'annals');
 * if (state !== 'current') console.warn(`schema is ${state}`);
 * ```
 */
export async function schemaStatus(client: SqlQueryable, schema: string): Promise<SchemaStatus> {
  assertSchemaName(schema);
  const latest = (await loadMigrations()).length;
  const exists = await client.query<{ found: boolean }>(`select to_regclass($1) is not null as found`, [
    `"${schema}".migrations`,
  ]);
  const current = exists[0]?.found ? await currentMigration(client, schema) : 0;
  const state = current > latest ? 'newer' : current < latest ? 'outdated' : 'current';
  return { schema, current, latest, state };
}

export async function assertMigrated(client: SqlClient, schema: string): Promise<void> {
  const { current, latest, state } = await schemaStatus(client, schema);
  if (state === 'newer') throw new SchemaTooNewError(schema, latest, current);
  if (state === 'outdated') throw new SchemaOutdatedError(schema, latest, current);
}

async function currentMigration(db: SqlQueryable, schema: string): Promise<number> {
  const rows = await db.query<{ id: number | null }>(`select max(id) as id from "${schema}".migrations`);
  return rows[0]?.id ?? 0;
}
