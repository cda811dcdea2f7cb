/**
 * `annals serve --append-coordinator`: two servers on one database, as two instances behind a
 * load balancer run. One holds the role and the other hands it its appends; both report it in
 * /metrics; every append is stored once, each stream's versions dense; bad flags are refused.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseUrl, freshSchema } from '../../core/test/support/backends.js';
import { annals, httpUrlIn, spawnAnnals } from './support/bin.js';

/** `annals serve` in a child process; resolves with its URL once it listens with the coordinator on. */
async function serve(schema: string, extra: string[]): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
  const { child, found } = await spawnAnnals(
    ['serve', '--schema', schema, '--port', '0', '--auth', 'off', ...extra],
    (output) => (output.includes('append coordinator: on') ? httpUrlIn(output) : undefined),
  );
  return { url: found, child };
}

/** The coordinator gauges of a server's /metrics. */
async function coordinator(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string, label: string) =>
    Number(new RegExp(`^${name}\\{${label}\\} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    role: (['holder', 'linked', 'direct'] as const).find(
      (role) => value('annals_append_coordinator_role', `role="${role}"`) === 1,
    ),
    forwarded: value('annals_append_coordinator_appends', 'way="forwarded_batches"'),
    served: value('annals_append_coordinator_appends', 'way="served"'),
  };
}

const stop = async (child: ChildProcessWithoutNullStreams) => {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
};

describe.skipIf(!databaseUrl)('annals serve --append-coordinator', () => {
  const schema = freshSchema('coord');
  const children: ChildProcessWithoutNullStreams[] = [];
  afterAll(async () => {
    await Promise.all(children.map(stop));
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`);
    await client.end();
  });

  it('lets one of two servers hold the role and the other hand it its appends, each stored once', async () => {
    const first = await serve(schema, ['--append-coordinator']);
    children.push(first.child);
    const second = await serve(schema, ['--append-coordinator', '127.0.0.1:0']);
    children.push(second.child);
    // The second looks up the holder within its lease retry (1 s).
    const deadline = Date.now() + 15_000;
    let roles: string[] = [];
    while (Date.now() < deadline) {
      roles = [(await coordinator(first.url)).role ?? '', (await coordinator(second.url)).role ?? ''].sort();
      if (roles.join() === 'holder,linked') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(roles).toEqual(['holder', 'linked']);

    const append = (base: string, stream: string, i: number) =>
      fetch(`${base}/streams/${stream}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: [{ type: 'Placed', data: { i } }] }),
      });
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => append(i % 2 === 0 ? first.url : second.url, `order-${i % 10}`, i)),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 201));

    const [a, b] = [await coordinator(first.url), await coordinator(second.url)];
    const linked = a.role === 'linked' ? a : b;
    const holder = a.role === 'holder' ? a : b;
    expect(linked.forwarded).toBeGreaterThan(0);
    expect(holder.served).toBeGreaterThan(0);

    // Every append once, each stream's versions dense.
    const events: { streamId: string; streamVersion: number; position: number }[] = [];
    for (let after = 0; ; ) {
      const page = (await (await fetch(`${first.url}/events?after=${after}&limit=100`)).json()) as {
        events: { streamId: string; streamVersion: number; position: number }[];
      };
      if (page.events.length === 0) break;
      events.push(...page.events);
      after = (page.events.at(-1) as { position: number }).position;
    }
    expect(events.length).toBe(200);
    expect(events.map((e) => e.position)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    for (let s = 0; s < 10; s++) {
      const versions = events.filter((e) => e.streamId === `order-${s}`).map((e) => e.streamVersion);
      expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    }
  });

  it('refuses a bad address with a clear error', async () => {
    for (const bad of ['nowhere', '127.0.0.1:99999']) {
      const run = await annals(['--schema', schema, 'serve', '--port', '0', '--append-coordinator', bad]);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/--append-coordinator: must be host:port/);
    }
    const advertise = await annals([
      '--schema',
      schema,
      'serve',
      '--port',
      '0',
      '--append-coordinator',
      '--append-coordinator-advertise',
      'x',
    ]);
    expect(advertise.stderr).toMatch(/--append-coordinator-advertise: must be host:port/);
  });
});
