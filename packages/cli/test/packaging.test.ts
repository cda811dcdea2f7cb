/**
 * The packages as a user gets them: built from scratch, packed with `npm pack`, installed from
 * the tarballs into a project outside the workspace, and run with plain `node` (no tsx, no
 * `@annals/source` condition). Catches what the source-based tests cannot: a missing file in a
 * tarball, an `exports` entry pointing nowhere, migrations not found from `dist/`, a dependency
 * only the workspace provides, a bin without its shebang.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const workspace = fileURLToPath(new URL('../../../', import.meta.url));
const packages = ['packages/core', 'examples/bank', 'packages/web', 'packages/server', 'packages/nats', 'packages/cli'];
const timeout = 180_000;

// The children must not inherit what the outer `npm test` and Vitest set: the workspace's npm
// prefix, its package's lifecycle variables, or a `--conditions=@annals/source` in NODE_OPTIONS.
const env = Object.fromEntries(
  Object.entries(process.env).filter(
    ([name]) => !/^(npm_(package_|lifecycle_|command$|config_local_prefix$)|NODE_OPTIONS$|INIT_CWD$)/i.test(name),
  ),
);

function run(command: string, args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout }, (error, stdout, stderr) => {
      if (error)
        reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const node = (args: string[], cwd: string) => run(process.execPath, args, cwd);

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

describe('the packed packages, installed outside the workspace', () => {
  let temp: string;
  let project: string;

  beforeAll(async () => {
    // A clean build: no output of a since renamed or deleted source can reach a tarball.
    await Promise.all(packages.map((dir) => rm(join(workspace, dir, 'dist'), { recursive: true, force: true })));
    await run('npm', ['run', 'build'], workspace);

    temp = await mkdtemp(join(tmpdir(), 'annals-packaging-'));
    const tarballs = join(temp, 'tarballs');
    project = join(temp, 'project');
    await mkdir(tarballs);
    await mkdir(project);
    const packed = JSON.parse(
      await run(
        'npm',
        [
          'pack',
          '--ignore-scripts',
          '--json',
          '--pack-destination',
          tarballs,
          ...packages.flatMap((dir) => ['-w', dir]),
        ],
        workspace,
      ),
    ) as { filename: string }[];
    expect(packed.map((p) => p.filename).sort()).toEqual([
      'annals-cli-0.1.0.tgz',
      'annals-core-0.1.0.tgz',
      'annals-example-bank-0.1.0.tgz',
      'annals-nats-0.1.0.tgz',
      'annals-server-0.1.0.tgz',
      'annals-web-0.1.0.tgz',
    ]);

    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'annals-packaging-check', private: true, type: 'module' }, null, 2)}\n`,
    );
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        ...packed.map((p) => join(tarballs, p.filename)),
      ],
      project,
    );
  }, timeout);

  afterAll(async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it(
    'imports the three entry points of @annals/core with plain node and stores an event on PGlite',
    async () => {
      const dataDir = join(temp, 'data');
      await writeFile(
        join(project, 'check.mjs'),
        `
import * as core from '@annals/core';
import * as pglite from '@annals/core/pglite';
import * as testing from '@annals/core/testing';
import * as bank from '@annals/example-bank';
import * as nats from '@annals/nats';

const store = await core.openEventStore({ client: pglite.createPgliteClient({ dataDir: process.argv[2] }) });
const appended = await store.append('account-1', [{ type: 'AccountOpened', data: { owner: 'Ada' } }], {
  expectedVersion: 'no-stream',
});
const events = await core.toArray(store.readStream('account-1'));
await store.close();
console.log(JSON.stringify({
  resolved: import.meta.resolve('@annals/core'),
  core: [typeof core.openEventStore, typeof core.createPostgresClient, typeof core.ConcurrencyError],
  pglite: typeof pglite.createPgliteClient,
  testing: typeof testing.deciderSpecification,
  bank: typeof bank.bankAccount.decide,
  nats: typeof nats.startNatsRelay,
  appended: [appended.streamVersion, appended.positions],
  events: events.map((e) => [e.streamVersion, e.type, e.data]),
}));
`,
      );
      const out = JSON.parse(await node(['check.mjs', dataDir], project));
      expect(out).toEqual({
        resolved: expect.stringMatching(/\/node_modules\/@annals\/core\/dist\/index\.js$/),
        core: ['function', 'function', 'function'],
        pglite: 'function',
        testing: 'function',
        bank: 'function',
        nats: 'function',
        appended: [1, [1]],
        events: [[1, 'AccountOpened', { owner: 'Ada' }]],
      });
    },
    timeout,
  );

  it(
    'type-checks a consumer against the published declarations',
    async () => {
      await writeFile(
        join(project, 'consumer.ts'),
        `
import { type EventStore, openEventStore } from '@annals/core';
import { createPgliteClient } from '@annals/core/pglite';
import { deciderSpecification } from '@annals/core/testing';
import { bankAccount } from '@annals/example-bank';

export const open: () => Promise<EventStore> = () => openEventStore({ client: createPgliteClient() });
export const spec = deciderSpecification(bankAccount);
// @ts-expect-error: the version must be a number or one of the named expectations
export const wrong = (store: EventStore) => store.append('a-1', [], { expectedVersion: 'latest' });
`,
      );
      const compilerOptions = {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2023',
        types: [],
      };
      await writeFile(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
      await node([join(workspace, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project);
    },
    timeout,
  );

  it(
    'runs the annals bin (built JavaScript with a shebang) with plain node',
    async () => {
      const bin = join(project, 'node_modules/@annals/cli/dist/main.js');
      expect((await readFile(bin, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node');
      expect((await stat(bin)).mode & 0o111).not.toBe(0);
      const help = await run(join(project, 'node_modules/.bin/annals'), ['--help'], project);
      expect(help).toContain('Usage: annals [options] [command]');
      expect(help).toContain('Annals: event sourcing on PostgreSQL');
      for (const command of ['demo', 'migrate', 'read', 'history', 'verify', 'forget']) expect(help).toContain(command);
    },
    timeout,
  );

  it(
    'serves HTTP from the installed bin with plain node, and drains on SIGTERM',
    async () => {
      const child = spawn(
        join(project, 'node_modules/.bin/annals'),
        ['serve', '--port', '0', '--data-dir', join(temp, 'serve-data')],
        // Without DATABASE_URL: the embedded default, as a new user starts it.
        { cwd: project, env: { ...env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.on('data', (chunk) => {
        output += chunk;
      });
      child.stderr.on('data', (chunk) => {
        output += chunk;
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const deadline = Date.now() + 60_000;
        while (!/http:\/\/127\.0\.0\.1:\d+/.test(output)) {
          if (Date.now() > deadline || child.exitCode !== null)
            throw new Error(`annals serve did not start: ${output}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const url = (/http:\/\/127\.0\.0\.1:\d+/.exec(output) as RegExpExecArray)[0];
        expect(output).toContain('development only');
        const appended = await fetch(`${url}/streams/order-1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: [{ type: 'Placed', data: { total: 3 } }], expectedVersion: 'no-stream' }),
        });
        expect(appended.status).toBe(201);
        const read = (await (await fetch(`${url}/streams/order-1/events`)).json()) as { events: { type: string }[] };
        expect(read.events.map((e) => e.type)).toEqual(['Placed']);
        // The admin UI comes with the installed packages, built.
        const ui = await fetch(`${url}/ui/`);
        expect(ui.status).toBe(200);
        expect(ui.headers.get('content-type')).toMatch(/^text\/html/);
        const asset = /\/ui\/assets\/[^"]+\.js/.exec(await ui.text())?.[0];
        expect(asset).toBeDefined();
        expect((await fetch(`${url}${asset}`)).status).toBe(200);
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(output).toContain('SIGTERM, draining');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
    timeout,
  );

  it('ships PGlite as an optional peer of @annals/core, loaded only by @annals/core/pglite', async () => {
    const core = join(project, 'node_modules/@annals/core');
    const manifest = JSON.parse(await readFile(join(core, 'package.json'), 'utf8'));
    expect(manifest.dependencies).not.toHaveProperty('@electric-sql/pglite');
    expect(manifest.peerDependencies).toHaveProperty('@electric-sql/pglite');
    expect(manifest.peerDependenciesMeta['@electric-sql/pglite']).toEqual({ optional: true });
    const files = await filesUnder(join(core, 'dist'));
    const mentions: string[] = [];
    for (const file of files.filter((f) => !f.endsWith('.map'))) {
      if ((await readFile(join(core, 'dist', file), 'utf8')).includes('@electric-sql/pglite')) mentions.push(file);
    }
    expect(mentions.sort()).toEqual(['db/pglite-client.d.ts', 'db/pglite-client.js']);
    // What the tarball holds: built code, declarations, migrations; no build info.
    expect(files).toContain('index.js');
    expect(files).toContain('index.d.ts');
    expect(files.some((f) => f.endsWith('.tsbuildinfo'))).toBe(false);
    expect((await readdir(join(core, 'sql'))).filter((f) => f.endsWith('.sql')).length).toBeGreaterThan(0);
  });
});
