/**
 * Migrated templates, built once per run by `global-setup.ts` and copied by every test file:
 *
 * - PostgreSQL (with DATABASE_URL): a template database; each test file gets a database of
 *   its own, `create database ... template <it>` (see `backends.ts`).
 * - PGlite: a dump of a migrated data directory; each test file's PGlite starts from it
 *   (`loadDataDir`) instead of running initdb and the migrations.
 *
 * Both hold the same schemas, all migrated: the default schema `annals` (for tests that use
 * the default, like the CLI's), and a pool of schemas that `openTestStore` hands out, one per
 * test, while they last (then it migrates fresh schemas, as it always did).
 *
 * This module creates nothing when imported: the CLI tests use it without a PostgreSQL database.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { inject } from 'vitest';

/** What the global setup built, passed to the test files through vitest's `provide`/`inject`. */
export interface TestTemplates {
  /** Unique per run: prefixes the names of every database the run creates. */
  runId: string;
  /** Path of the dump (an uncompressed tarball) of the migrated PGlite data directory. */
  pgliteDump: string;
  /** The template database on DATABASE_URL's server; absent without DATABASE_URL. */
  postgresTemplate?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    annalsTemplates: TestTemplates | undefined;
  }
}

/**
 * Pool sizes. Measured on the 2-core test machine: a copy of a PostgreSQL 15 template costs
 * about 100 ms plus 5-15 ms per migrated schema it holds, against about 75 ms saved by each
 * pooled schema a test uses instead of migrating one; loading the PGlite dump costs little
 * more for 8 schemas than for one, against 40-60 ms to migrate each. Files open 0 to 40
 * stores per backend, half of them 5 or fewer: with the counts of this suite 8 is the best
 * size on PostgreSQL (about 4.6 s saved per run, against 3.7 s for 16).
 */
const poolSizes = { pglite: 8, postgres: 8 } as const;

/** The pooled schemas of a backend's template: migrated, handed out one per test (`annals` is not among them). */
export const poolSchemas = (backend: keyof typeof poolSizes): string[] =>
  Array.from({ length: poolSizes[backend] }, (_, i) => `t_pool_${i + 1}`);

/** The schemas a backend's template holds, migrated: the default one and the pool. */
export const templateSchemas = (backend: keyof typeof poolSizes): string[] => ['annals', ...poolSchemas(backend)];

/** Prefix of every database a run creates: `annals_test_<runId>_...`. */
export const databasePrefix = (runId: string) => `annals_test_${runId}_`;

/** The templates of this run, or undefined when the tests run without `global-setup.ts`. */
export function testTemplates(): TestTemplates | undefined {
  try {
    return inject('annalsTemplates');
  } catch {
    return undefined;
  }
}

let dump: Blob | undefined;

/**
 * A new in-memory PGlite holding the template's migrated schemas (or an empty one, running
 * initdb, without templates). `dataDir`: a directory to keep it in instead; one that already
 * holds a database is opened as it is.
 */
export function pgliteFromTemplate(dataDir?: string): PGlite {
  const templates = testTemplates();
  if (!templates || (dataDir !== undefined && existsSync(join(dataDir, 'PG_VERSION')))) return new PGlite({ dataDir });
  dump ??= new Blob([readFileSync(templates.pgliteDump)]);
  return new PGlite({ dataDir, loadDataDir: dump });
}
