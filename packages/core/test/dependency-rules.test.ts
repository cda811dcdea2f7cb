/**
 * The layering of @annals/core, read from the imports of its sources: each rule below is a
 * line of the architecture that a change could quietly cross.
 *
 *   db/ <- queries/ <- store/ (the event store and its one append path) <- facets
 *   (subscriptions/, projections/, snapshots/, integrity/, personal/erasure, audit/,
 *   time-travel/, decider/) <- index.ts; workers/ is the lifecycle the facets' workers share.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EventStore } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, '..', 'src');
const repo = join(here, '..', '..', '..');

interface Import {
  /** The importing module, relative to its package's src (or the repo for other packages). */
  from: string;
  /** Resolved module path relative to core's src for relative imports, else the bare specifier. */
  to: string;
  /** The absolute path of a relative import (undefined for a package). */
  path: string | undefined;
  typeOnly: boolean;
  names: string[];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'node_modules' || entry.name === 'dist' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

const importPattern = /^(?:import|export)\s+(type\s+)?(?:([^;'"]*?)\s+from\s+)?'([^']+)';/gm;

function importsOf(file: string, root: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const from = relative(root, file);
  return [...text.matchAll(importPattern)].map((match) => {
    const [, type, clause = '', spec = ''] = match;
    const path = spec.startsWith('.') ? normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts') : undefined;
    const to = path ? relative(src, path) : spec;
    const inner = /\{([\s\S]*)\}/.exec(clause)?.[1] ?? '';
    const names = inner
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean);
    const typeOnly = type !== undefined || (names.length > 0 && names.every((name) => name.startsWith('type ')));
    return {
      from,
      to,
      path,
      typeOnly,
      names: names.map((name) => name.replace(/^type\s+/, '').split(/\s+as\s+/)[0] ?? ''),
    };
  });
}

const core = sourceFiles(src).flatMap((file) => importsOf(file, src));
const under = (prefix: string) => (path: string) => path.startsWith(prefix);
const violations = (imports: Import[], allowed: (i: Import) => boolean) =>
  imports.filter((i) => !allowed(i)).map((i) => `${i.from} imports ${i.to}${i.typeOnly ? ' (types)' : ''}`);

/** Leaf modules with no dependency on the store's layers (tracing.ts: spans through @opentelemetry/api). */
const leaves = [
  'types.ts',
  'errors.ts',
  'validation.ts',
  'options.ts',
  'event-id.ts',
  'expected-version.ts',
  'tracing.ts',
];

describe('the layering of @annals/core', () => {
  it('reads real imports (the rules below are not vacuous)', () => {
    expect(core.length).toBeGreaterThan(150);
    expect(core.filter((i) => i.from.startsWith('queries/')).length).toBeGreaterThan(15);
    expect(core.some((i) => i.from === 'store/event-store.ts' && i.to === 'store/append-pipeline.ts')).toBe(true);
  });

  it('queries/ import only db/, the leaf modules and each other', () => {
    const imports = core.filter((i) => under('queries/')(i.from));
    const allowed = (i: Import) =>
      i.to.startsWith('node:') || under('db/')(i.to) || under('queries/')(i.to) || leaves.includes(i.to);
    expect(violations(imports, allowed)).toEqual([]);
  });

  it('db/ imports nothing of the store but the leaf modules', () => {
    const imports = core.filter((i) => under('db/')(i.from));
    const allowed = (i: Import) =>
      (i.path === undefined && !i.to.startsWith('@annals/')) || under('db/')(i.to) || leaves.includes(i.to);
    expect(violations(imports, allowed)).toEqual([]);
  });

  it('the store core imports no facet, runner or worker', () => {
    const imports = core.filter((i) => under('store/')(i.from));
    const allowed = (i: Import) =>
      i.to.startsWith('node:') ||
      ['db/', 'queries/', 'store/', 'personal/personal-data.ts', 'personal/cipher.ts'].some((p) =>
        i.to.startsWith(p),
      ) ||
      i.to === 'projections/projection.ts' ||
      // The append coordinator is a step of the append path (which transaction an append shares).
      i.to.startsWith('coordinator/') ||
      // The worker host is a type the context satisfies; no worker code is imported.
      (i.to === 'workers/worker-loop.ts' && i.typeOnly) ||
      leaves.includes(i.to);
    expect(violations(imports, allowed)).toEqual([]);
  });

  it('the projection contract lives apart from the runner', () => {
    const contract = core.filter((i) => i.from === 'projections/projection.ts');
    expect(contract.some((i) => i.to.includes('runner'))).toBe(false);
    const inline = core.filter((i) => i.from === 'store/inline-projections.ts').map((i) => i.to);
    expect(inline).toContain('projections/projection.ts');
    expect(inline.some((to) => to.includes('runner'))).toBe(false);
  });

  it('only store/event-reads.ts reads events from the queries (so every read reveals personal data)', () => {
    const rawReads = ['queries/read-stream.ts', 'queries/read-event.ts', 'queries/load-stream.ts', 'queries/audit.ts'];
    const outside = core.filter((i) => i.from !== 'store/event-reads.ts' && !i.from.startsWith('queries/'));
    const bad = outside.filter(
      (i) =>
        (rawReads.includes(i.to) && !i.typeOnly) ||
        (i.to === 'queries/read-all.ts' && i.names.includes('readAllPage')) ||
        (i.to === 'queries/rows.ts' && i.names.includes('toRecordedEvent')),
    );
    expect(bad.map((i) => `${i.from} imports ${i.names.join(', ')} from ${i.to}`)).toEqual([]);
  });

  it('advisory locks are taken only through db/locks.ts', () => {
    const offenders = sourceFiles(src)
      .filter((file) => !file.endsWith(join('db', 'locks.ts')))
      .filter((file) => /pg_(try_)?advisory_(xact_)?(un)?lock/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(src, file));
    expect(offenders).toEqual([]);
  });

  it('the expected-version codes are written only in expected-version.ts', () => {
    const offenders = sourceFiles(src)
      .filter((file) => !file.endsWith('expected-version.ts'))
      .filter((file) =>
        /expectedCode\s*(===|!==|==)\s*-\d|case -[123]:|return -[123];/.test(readFileSync(file, 'utf8')),
      )
      .map((file) => relative(src, file));
    expect(offenders).toEqual([]);
  });

  it('every background worker uses the shared worker loop', () => {
    const workers = [
      'subscriptions/subscription.ts',
      'subscriptions/consumer-group.ts',
      'projections/projection-runner.ts',
      'integrity/sealer.ts',
    ];
    for (const worker of workers) {
      const imports = core.filter((i) => i.from === worker).map((i) => i.to);
      expect(imports, worker).toContain('workers/worker-loop.ts');
      expect(readFileSync(join(src, worker), 'utf8'), worker).not.toMatch(/new Wakeup\(|new PositionWaiters\(/);
    }
  });

  it('PGlite is loaded only by the @annals/core/pglite entry point', () => {
    const users = core.filter((i) => i.to.startsWith('@electric-sql/pglite')).map((i) => i.from);
    expect(users).toEqual(['db/pglite-client.ts']);
    const main = core.filter((i) => i.from === 'index.ts').map((i) => i.to);
    expect(main).not.toContain('db/pglite-client.ts');
  });

  it('the event store object keeps to the event store', () => {
    const methods = Object.getOwnPropertyNames(EventStore.prototype)
      .filter((name) => name !== 'constructor')
      .sort();
    expect(methods).toEqual(
      [
        'append',
        'appendMulti',
        'capabilities',
        'close',
        'getEvent',
        'getStream',
        'headPosition',
        'logHolders',
        'positionAt',
        'readAll',
        'readStream',
        'setStreamMetadata',
      ].sort(),
    );
  });
});

describe('the clients of @annals/core', () => {
  const clients = ['packages/cli/src', 'packages/nats/src', 'examples', 'bench']
    .flatMap((dir) => sourceFiles(join(repo, dir)))
    .flatMap((file) => importsOf(file, repo));

  it('import only its public entry points, never its sources', () => {
    expect(clients.length).toBeGreaterThan(30);
    const reachIn = clients.filter(
      (i) =>
        (i.to.startsWith('@annals/core') &&
          !['@annals/core', '@annals/core/pglite', '@annals/core/testing'].includes(i.to)) ||
        i.path?.startsWith(src) === true,
    );
    expect(reachIn.map((i) => `${i.from} imports ${i.to}`)).toEqual([]);
  });
});
