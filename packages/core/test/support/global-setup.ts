/**
 * Runs once per `vitest run`, before any test file: builds the migrated templates every test
 * file copies (see `templates.ts`), and says up front which suites run (the PostgreSQL ones
 * need DATABASE_URL). The teardown drops every database the run created, whatever happened
 * to the files that created them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { createPgliteClient } from '../../src/db/pglite-client.js';
import { createPostgresClient, loadMigrations, migrate } from '../../src/index.js';
import { databasePrefix, type TestTemplates, templateSchemas } from './templates.js';

/** Databases of runs older than this are left-overs of a run that was killed: dropped too. */
const staleAfterMs = 24 * 60 * 60 * 1000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.warn(
      '\n[annals] DATABASE_URL is not set: running on the embedded backend (PGlite) only.\n' +
        '[annals] Not run: the PostgreSQL server suites (ordering stress, concurrency across processes, roles,\n' +
        '[annals]   concurrent migrations, lost connections, LISTEN reconnect, projection crash and failover,\n' +
        '[annals]   consumer groups, 10k concurrent bank transfers).\n' +
        '[annals] Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run them.\n',
    );
  }
  // The time first (base 36, 8 characters until 2059) lets a later run tell a stale left-over.
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  /** Runs `work` on a connection of its own (none stays open while the tests run). */
  const withAdmin = async <T>(work: (admin: pg.Client) => Promise<T>): Promise<T> => {
    const admin = new pg.Client({ connectionString: databaseUrl });
    admin.on('error', () => {});
    await admin.connect();
    try {
      return await work(admin);
    } finally {
      await admin.end().catch(() => {});
    }
  };
  const dropDatabases = (admin: pg.Client, which: (name: string) => boolean) =>
    admin
      .query<{ datname: string }>(`select datname from pg_database where datname like 'annals\\_test\\_%'`)
      .then(async ({ rows }) => {
        for (const { datname } of rows.filter((row) => which(row.datname))) {
          await admin.query(`drop database if exists "${datname}" with (force)`);
        }
      });
  const teardown = async () => {
    if (!databaseUrl) return;
    await withAdmin((admin) => dropDatabases(admin, (name) => name.startsWith(databasePrefix(runId))));
  };

  try {
    const [pgliteDump, postgresTemplate] = await Promise.all([
      buildPgliteTemplate(),
      databaseUrl
        ? withAdmin(async (admin) => {
            // Left-overs of runs that were killed before their teardown.
            await dropDatabases(admin, (name) => {
              const match = /^annals_test_([0-9a-z]{8})[0-9a-f]{6}_[0-9a-z_]+$/.exec(name);
              const born = match ? Number.parseInt(match[1] as string, 36) : Number.NaN;
              return born > Date.parse('2025-01-01') && Date.now() - born > staleAfterMs;
            });
            return buildPostgresTemplate(admin, databaseUrl, runId);
          })
        : undefined,
    ]);
    const templates: TestTemplates = { runId, pgliteDump, postgresTemplate };
    project.provide('annalsTemplates', templates);
  } catch (error) {
    await teardown().catch(() => {});
    throw error;
  }
  return teardown;
}

/**
 * A dump of a PGlite with the template schemas migrated. Building one takes 5-8 s (mostly
 * initdb), so it is kept between runs in `node_modules/.cache/annals-test/`, under a name
 * that hashes everything it is made of: the PGlite version, the migrations and the schemas.
 * It holds only those empty schemas, so nothing of an earlier run's tests is in it.
 */
async function buildPgliteTemplate(): Promise<string> {
  const root = new URL('../../../../', import.meta.url);
  const pgliteVersion = JSON.parse(
    await readFile(new URL('node_modules/@electric-sql/pglite/package.json', root), 'utf8'),
  ).version;
  const hash = createHash('sha256')
    .update(JSON.stringify([pgliteVersion, await loadMigrations(), templateSchemas('pglite')]))
    .digest('hex')
    .slice(0, 16);
  const dir = fileURLToPath(new URL('node_modules/.cache/annals-test/', root));
  const path = join(dir, `pglite-template-${hash}.tar`);
  if (existsSync(path)) {
    // Its time is its last use, which is what the clean-up below goes by.
    const now = new Date();
    await utimes(path, now, now).catch(() => {});
    return path;
  }
  const db = new PGlite();
  try {
    const client = createPgliteClient({ db });
    for (const schema of templateSchemas('pglite')) await migrate(client, schema);
    const dump = await db.dumpDataDir('none');
    await mkdir(dir, { recursive: true });
    // Written aside, then renamed: a run starting meanwhile never reads half a file.
    const partial = `${path}.${process.pid}.partial`;
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, path);
    // Other templates go once unused for a day: a run started with other migrations (while
    // one is being written, say) may still be copying its own.
    for (const file of await readdir(dir)) {
      const other = join(dir, file);
      if (!file.startsWith('pglite-template-') || !file.endsWith('.tar') || other === path) continue;
      const age = Date.now() - (await stat(other).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > staleAfterMs) await rm(other, { force: true });
    }
    return path;
  } finally {
    await db.close();
  }
}

/** A database with the template schemas migrated; nobody stays connected to it (a copy needs that). */
async function buildPostgresTemplate(admin: pg.Client, databaseUrl: string, runId: string): Promise<string> {
  const name = `${databasePrefix(runId)}template`;
  await admin.query(`create database "${name}"`);
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  const client = createPostgresClient({ connectionString: url.toString(), maxConnections: 4 });
  try {
    // Each schema has its own migration lock: they migrate side by side.
    await Promise.all(templateSchemas('postgres').map((schema) => migrate(client, schema)));
  } finally {
    await client.close();
  }
  return name;
}
