/**
 * Projections (invariant 6): read-model writes and checkpoint commit together, so counts stay
 * exact under concurrent writers, crashes mid-batch and failover between runners.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createPostgresClient,
  type EventStore,
  InvalidInputError,
  openEventStore,
  type Projection,
  type ProjectionRunner,
  type ProjectionRunnerOptions,
  projections,
  type SqlQueryable,
  subscriptions,
} from '../src/index.js';
import {
  backends,
  databaseUrl,
  openTestStore,
  postgresBackend,
  rawConnection,
  sleep,
  type TestStore,
  waitUntil,
} from './support/backends.js';

/**
 * Counts deposits per account and in total, in a table of the test's schema: event by event,
 * or (`setBased`) with one statement per batch, as a projection over many events would.
 */
function countingProjection(
  schema: string,
  options: { failAt?: () => number | undefined; setBased?: boolean } = {},
): Projection {
  const add = async (tx: SqlQueryable, account: string, amount: number) => {
    await tx.query(
      `insert into "${schema}".rm_balances (account, deposits, total) values ($1, 1, $2)
       on conflict (account) do update set deposits = rm_balances.deposits + 1, total = rm_balances.total + $2`,
      [account, amount],
    );
  };
  const setup = (tx: SqlQueryable) =>
    tx.exec(`create table if not exists "${schema}".rm_balances (
        account text primary key, deposits bigint not null, total bigint not null)`);
  if (options.setBased) {
    return {
      name: 'balances',
      categories: ['account'],
      eventTypes: ['Deposited'],
      setup,
      handleBatch: async (events, tx) => {
        await tx.query(
          `insert into "${schema}".rm_balances (account, deposits, total)
           select account, count(*), sum(amount) from unnest($1::text[], $2::bigint[]) as e(account, amount)
           group by account
           on conflict (account) do update
             set deposits = rm_balances.deposits + excluded.deposits, total = rm_balances.total + excluded.total`,
          [events.map((e) => e.streamId), events.map((e) => Number((e.data as { amount: number }).amount))],
        );
      },
    };
  }
  return {
    name: 'balances',
    categories: ['account'],
    setup,
    handlers: {
      Deposited: async (event, tx) => {
        await add(tx, event.streamId, Number((event.data as { amount: number }).amount));
        if (options.failAt?.() === event.position) throw new Error(`crash at ${event.position}`);
      },
    },
  };
}

async function readModel(client: SqlQueryable, schema: string) {
  const [row] = await client.query<{ deposits: string | null; total: string | null; accounts: string }>(
    `select sum(deposits) as deposits, sum(total) as total, count(*) as accounts from "${schema}".rm_balances`,
  );
  return { deposits: Number(row?.deposits ?? 0), total: Number(row?.total ?? 0), accounts: Number(row?.accounts) };
}

/** Application names of the sessions holding a projection lease (a session-level advisory lock). */
async function leaseHolders(db: SqlQueryable): Promise<string[]> {
  const rows = await db.query<{ name: string }>(
    `select a.application_name as name from pg_locks l join pg_stat_activity a using (pid)
      where l.locktype = 'advisory' and l.granted and l.classid = hashtext('annals.projection')::oid
        and l.database = (select oid from pg_database where datname = current_database())`,
  );
  return rows.map((row) => row.name);
}

/**
 * Waits until the runner of `applicationName` was refused the lease `times` times: a standby
 * tries, unlocks and gives its connection back, which `pg_stat_activity` shows as idle after
 * `pg_advisory_unlock`.
 */
async function waitForLeaseTries(db: SqlQueryable, applicationName: string, times: number): Promise<void> {
  const tries = new Set<string>();
  await waitUntil(
    async () => {
      const rows = await db.query<{ pid: number; at: Date }>(
        `select pid, state_change as at from pg_stat_activity
          where application_name = $1 and state = 'idle' and query like '%pg_advisory_unlock%'`,
        [applicationName],
      );
      for (const row of rows) tries.add(`${row.pid}@${row.at.toISOString()}`);
      return tries.size >= times;
    },
    { message: `${applicationName} was refused the lease ${times} times` },
  );
}

const deposits = (n: number, amount = 1) => Array.from({ length: n }, () => ({ type: 'Deposited', data: { amount } }));

describe.each(backends)('projections on $name', (backend) => {
  let t: TestStore & { cleanup: () => Promise<void> };
  let store: EventStore;
  const runners: ProjectionRunner[] = [];
  beforeEach(async () => {
    t = await openTestStore(backend);
    store = t.store;
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
    await t.cleanup();
  });
  const run = (projection: Projection, options?: ProjectionRunnerOptions) => {
    const runner = projections(store).run(projection, options);
    runners.push(runner);
    return runner;
  };

  it('builds a table from the log, catches up, follows live, and skips other categories and types', async () => {
    await store.append('account-1', deposits(30, 2));
    await store.append('order-1', deposits(5));
    await store.append('account-2', [{ type: 'Opened', data: {} }]);
    const runner = run(countingProjection(t.schema), { batchSize: 7, pollIntervalMs: 60_000 });
    await runner.waitFor(await store.headPosition());
    await store.append('account-2', deposits(3, 10));
    await runner.waitFor(await store.headPosition());
    expect(await readModel(t.client, t.schema)).toEqual({ deposits: 33, total: 90, accounts: 2 });
    expect(await runner.status()).toMatchObject({ name: 'balances', leader: true, position: 39, head: 39, lag: 0 });
  });

  it('rolls back a batch that fails midway: after recovery every event is applied exactly once', async () => {
    await store.append('account-1', deposits(20));
    let crashAt: number | undefined = 15;
    const runner = run(countingProjection(t.schema, { failAt: () => crashAt }), { batchSize: 10 });
    // The batch 11..20 fails at 15 (after writing 11..15), is rolled back and retried.
    await waitUntil(async () => (await runner.status()).lastError !== undefined, { message: 'the batch failed' });
    expect((await runner.status()).lastError).toBe('crash at 15');
    expect(await readModel(t.client, t.schema)).toMatchObject({ deposits: 10 });
    crashAt = undefined;
    await runner.waitFor(20);
    expect(await readModel(t.client, t.schema)).toMatchObject({ deposits: 20, total: 20 });
  });

  it('keeps document-style read models: JSON documents by id, queried by containment', async () => {
    await store.append('account-1', [{ type: 'Opened', data: { owner: 'Ada', tier: 'gold' } }, ...deposits(2, 5)]);
    await store.append('account-2', [{ type: 'Opened', data: { owner: 'Bob', tier: 'basic' } }]);
    type Summary = { owner: string; tier: string; balance: number };
    const runner = run({
      name: 'summaries',
      categories: ['account'],
      handlers: {
        Opened: async (event, _tx, docs) => {
          const { owner, tier } = event.data as { owner: string; tier: string };
          await docs.put('account-summaries', event.streamId, { owner, tier, balance: 0 });
        },
        Deposited: async (event, _tx, docs) => {
          await docs.update<Summary>(
            'account-summaries',
            event.streamId,
            { owner: '?', tier: '?', balance: 0 },
            (d) => ({
              ...d,
              balance: d.balance + (event.data as { amount: number }).amount,
            }),
          );
        },
      },
    });
    await runner.waitFor(4);
    expect(await projections(store).documents.get('account-summaries', 'account-1')).toEqual({
      owner: 'Ada',
      tier: 'gold',
      balance: 10,
    });
    expect(await projections(store).documents.find('account-summaries', { match: { tier: 'basic' } })).toEqual([
      { id: 'account-2', data: { owner: 'Bob', tier: 'basic', balance: 0 } },
    ]);
    expect(await projections(store).documents.get('account-summaries', 'nobody')).toBeNull();
    await expect(projections(store).documents.find('account-summaries', { limit: 0 })).rejects.toMatchObject({
      field: 'limit',
    });
  });

  it('stops as faulted after too many failures in a row', async () => {
    await store.append('account-1', deposits(3));
    const runner = run(countingProjection(t.schema, { failAt: () => 2 }), { maxFailures: 2 });
    await runner.done;
    expect(await runner.status()).toMatchObject({ state: 'faulted', position: 0, lastError: 'crash at 2' });
  });
});

describe.skipIf(!databaseUrl)('projections on PostgreSQL under load, crashes and failover', () => {
  let t: TestStore & { cleanup: () => Promise<void> };
  const stores: EventStore[] = [];
  beforeEach(async () => {
    t = await openTestStore(postgresBackend);
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await t.cleanup();
  });
  /** A store of its own, as another process would have. */
  const process = async (applicationName: string) => {
    const s = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string, applicationName }),
      schema: t.schema,
    });
    stores.push(s);
    return s;
  };
  it('counts exactly 100k events appended by concurrent writers while it runs', async () => {
    const runnerProcess = await process('annals_projection_a');
    // Set-based, so that the runner keeps up with the writers instead of mostly running after them.
    const runner = projections(runnerProcess).run(countingProjection(t.schema, { setBased: true }), {
      batchSize: 1000,
    });
    const writers = await Promise.all([1, 2, 3, 4].map((i) => process(`annals_writer_${i}`)));
    await Promise.all(
      writers.map(async (writer, w) => {
        for (let i = 0; i < 250; i++) {
          await writer.append(`account-${w}-${i % 20}`, deposits(100, 1 + (i % 3)));
        }
      }),
    );
    await runner.waitFor(100_000);
    const model = await readModel(t.client, t.schema);
    let total = 0;
    for (let i = 0; i < 250; i++) total += 4 * 100 * (1 + (i % 3));
    expect(model).toEqual({ deposits: 100_000, total, accounts: 80 });
  });

  it('loses nothing and doubles nothing when its connections are killed mid-batch', async () => {
    const a = await process('annals_projection_kill');
    await t.store.append('account-1', deposits(5000));
    let slow = true;
    const projection = countingProjection(t.schema);
    const handlers = projection.handlers as NonNullable<Projection['handlers']>;
    const deposited = handlers.Deposited as NonNullable<(typeof handlers)[string]>;
    handlers.Deposited = async (event, tx, docs) => {
      await deposited(event, tx, docs);
      if (slow && event.position % 500 === 0) await sleep(50);
    };
    const runner = projections(a).run(projection, { batchSize: 1000, leaseRetryMs: 100 });
    // Kill every backend of that process once a batch is open: the batch transaction and the lease with it.
    const admin = await rawConnection();
    await waitUntil(
      async () =>
        (
          await admin.query(
            `select 1 from pg_stat_activity where application_name = $1 and xact_start is not null
              and query like '%rm_balances%'`,
            ['annals_projection_kill'],
          )
        ).rows.length > 0,
      { message: 'a batch transaction is open' },
    );
    await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, [
      'annals_projection_kill',
    ]);
    await admin.end();
    slow = false;
    await runner.waitFor(5000);
    expect(await readModel(t.client, t.schema)).toMatchObject({ deposits: 5000, total: 5000 });
  });

  it('runs on one of two processes at a time, and the other takes over within seconds when it stops', async () => {
    const [a, b] = [await process('annals_runner_a'), await process('annals_runner_b')];
    await t.store.append('account-1', deposits(100));
    const first = projections(a).run(countingProjection(t.schema), { leaseRetryMs: 200, pollIntervalMs: 200 });
    await first.waitFor(100);
    const second = projections(b).run(countingProjection(t.schema), { leaseRetryMs: 200, pollIntervalMs: 200 });
    // Twice, the standby tried for the lease and was refused (it gives its connection back after each try).
    await waitForLeaseTries(t.client, 'annals_runner_b', 2);
    expect((await first.status()).leader).toBe(true);
    expect(await second.status()).toMatchObject({ leader: false, state: 'standby' });

    await first.stop();
    // Stopping gave the lease up, so the standby's next try (within leaseRetryMs) wins.
    expect(await leaseHolders(t.client)).not.toContain('annals_runner_a');
    await t.store.append('account-2', deposits(50));
    await second.waitFor(150);
    expect((await second.status()).leader).toBe(true);
    expect(await leaseHolders(t.client)).toEqual(['annals_runner_b']);
    expect(await readModel(t.client, t.schema)).toMatchObject({ deposits: 150, accounts: 2 });
  });
});

describe.each(backends)('inline projections on $name', (backend) => {
  it('update the read model in the append transaction: read-your-writes, and all or nothing', async () => {
    const schema = `i_${Math.random().toString(16).slice(2, 10)}`;
    const counting = countingProjection(schema, { failAt: () => undefined });
    const handlers = counting.handlers as NonNullable<Projection['handlers']>;
    const deposited = handlers.Deposited as NonNullable<(typeof handlers)[string]>;
    handlers.Deposited = async (event, tx, docs) => {
      if ((event.data as { amount: number }).amount < 0) throw new Error('negative deposit');
      await deposited(event, tx, docs);
    };
    const store = await openEventStore({
      client: backend.client(),
      closeClient: false,
      schema,
      inlineProjections: [counting],
    });
    try {
      await store.append('account-1', deposits(3, 5));
      // Visible as soon as the append resolved.
      expect(await readModel(backend.client(), schema)).toEqual({ deposits: 3, total: 15, accounts: 1 });
      // Concurrent appends share a transaction; the one its projection refuses fails alone.
      const results = await Promise.allSettled([
        store.append('account-2', deposits(2, 1)),
        store.append('account-3', deposits(1, -1)),
        store.append('account-4', deposits(1, 7)),
        store.append('order-1', deposits(1, -1)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
        code: 'PROJECTION_FAILED',
        projection: 'balances',
      });
      expect((await store.getStream('account-3'))?.exists ?? false).toBe(false);
      expect(await readModel(backend.client(), schema)).toEqual({ deposits: 6, total: 24, accounts: 3 });
      expect(await store.headPosition()).toBe(7);
    } finally {
      await store.close();
      await backend.client().exec(`drop schema "${schema}" cascade`);
    }
  });
});

describe.each(backends)('rebuilding a projection on $name', (backend) => {
  it('builds a new version beside the old one, which keeps serving, reporting progress', async () => {
    const t = await openTestStore(backend);
    try {
      const { store, schema } = t;
      await store.append('account-1', deposits(300, 2));
      const v1 = projections(store).run(countingProjection(schema), { batchSize: 50 });
      await v1.waitFor(300);
      // Version 2 counts into a table of its own.
      const v2: Projection = {
        name: 'balances',
        version: 2,
        categories: ['account'],
        setup: (tx) =>
          tx.exec(
            `create table if not exists "${schema}".rm_balances_v2 (account text primary key, deposits bigint not null)`,
          ),
        handleBatch: async (events, tx) => {
          await tx.query(
            `insert into "${schema}".rm_balances_v2 (account, deposits)
             select a, count(*) from unnest($1::text[]) as s(a) group by a
             on conflict (account) do update set deposits = rm_balances_v2.deposits + excluded.deposits`,
            [events.map((e) => e.streamId)],
          );
        },
      };
      const progress: number[] = [];
      const appending = store.append('account-2', deposits(10, 1));
      const done = await projections(store).rebuild(v2, {
        batchSize: 20,
        progressIntervalMs: 5,
        onProgress: (s) => progress.push(s.position),
      });
      await appending;
      // The old version served throughout and keeps following the log.
      await v1.waitFor(310);
      expect(await readModel(t.client, schema)).toMatchObject({ deposits: 310 });
      expect(done).toMatchObject({ name: 'balances', version: 2, leader: true });
      expect(done.position).toBeGreaterThanOrEqual(300);
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
      expect(progress.at(-1)).toBe(done.position);
      // What version 2 wrote matches its checkpoint exactly (it may have gone on past the target).
      const [v2Rows] = await t.client.query<{ n: string }>(`select sum(deposits) as n from "${schema}".rm_balances_v2`);
      const checkpoints = await subscriptions(store).checkpoints();
      expect(checkpoints.map((c) => c.name)).toEqual(['projection:balances:v1', 'projection:balances:v2']);
      expect(Number(v2Rows?.n)).toBe(checkpoints[1]?.position);
      await v1.stop();
    } finally {
      await t.cleanup();
    }
  });
});

describe.each(backends)('switching readers to a rebuilt version on $name', (backend) => {
  it('switches only on a rebuild that reaches the head, and back to a version that was built', async () => {
    const t = await openTestStore(backend);
    try {
      const { store, schema } = t;
      await store.append('account-1', deposits(40, 2));
      const built = (version: number, fail = false): Projection => ({
        name: 'totals',
        version,
        categories: ['account'],
        setup: (tx) => tx.exec(`create table if not exists "${schema}".rm_totals_v${version} (n bigint)`),
        handleBatch: async (events, tx) => {
          if (fail) throw new Error('the read model refused the batch');
          await tx.query(`insert into "${schema}".rm_totals_v${version} values ($1)`, [events.length]);
        },
      });
      const facet = projections(store);
      expect(await facet.servingVersion('totals')).toBeNull();
      await facet.rebuild(built(1), { switchOnSuccess: true, actor: 'ops@example.com' });
      expect(await facet.servingVersion('totals')).toMatchObject({ version: 1, switchedBy: 'ops@example.com' });
      // Built without switching: readers stay on version 1.
      await facet.rebuild(built(2));
      expect((await facet.servingVersion('totals'))?.version).toBe(1);
      // A rebuild that cannot reach the head switches nothing.
      await expect(facet.rebuild(built(3, true), { switchOnSuccess: true, maxFailures: 1 })).rejects.toThrow();
      expect((await facet.servingVersion('totals'))?.version).toBe(1);
      expect(await facet.switchTo('totals', 2)).toMatchObject({ name: 'totals', version: 2, switchedBy: null });
      await expect(facet.switchTo('totals', 9)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(facet.switchTo('', 1)).rejects.toBeInstanceOf(InvalidInputError);
      await expect(facet.switchTo('totals', 0)).rejects.toBeInstanceOf(InvalidInputError);
      expect((await facet.servingVersion('totals'))?.version).toBe(2);
    } finally {
      await t.cleanup();
    }
  });
});

describe.skipIf(!databaseUrl)('a projection process killed mid-batch (SIGKILL)', () => {
  it('is replaced by a standby in another process, and every event counts exactly once', async () => {
    const { spawn } = await import('node:child_process');
    const t = await openTestStore(postgresBackend);
    const standbyStore = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string, applicationName: 'annals_standby' }),
      schema: t.schema,
    });
    try {
      await t.client.exec(`create table "${t.schema}".rm_balances (
        account text primary key, deposits bigint not null, total bigint not null)`);
      for (let i = 0; i < 10; i++) await t.store.append(`account-${i}`, deposits(1000, 1 + (i % 2)));
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          new URL('./support/projection-child.ts', import.meta.url).pathname,
          databaseUrl as string,
          t.schema,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
      // Let it commit some batches and start another, then kill it without warning.
      const until = Date.now() + 20_000;
      for (;;) {
        const [row] = await t.client.query<{ position: string }>(
          `select position from "${t.schema}".checkpoints where name = 'projection:balances:v1'`,
        );
        if (Number(row?.position ?? 0) >= 1000 || Date.now() > until) break;
        await sleep(20);
      }
      const standby = projections(standbyStore).run(countingProjection(t.schema), {
        leaseRetryMs: 100,
        batchSize: 500,
      });
      await waitForLeaseTries(t.client, 'annals_standby', 2);
      expect((await standby.status()).leader).toBe(false);
      expect(await leaseHolders(t.client)).toEqual(['annals_child']);
      // Kill it while it has a batch transaction open.
      for (let tries = 0; tries < 200; tries++) {
        const open = await t.client.query(
          `select 1 from pg_stat_activity where application_name = 'annals_child' and xact_start is not null
              and query like '%rm_balances%'`,
        );
        if (open.length > 0) break;
        await sleep(5);
      }
      const [before] = await t.client.query<{ position: string }>(
        `select position from "${t.schema}".checkpoints where name = 'projection:balances:v1'`,
      );
      child.kill('SIGKILL');
      expect(Number(before?.position)).toBeLessThan(10_000);
      // The server drops the dead process's lease with its connection; the standby takes it.
      await standby.waitFor(10_000);
      expect((await standby.status()).leader).toBe(true);
      expect(await leaseHolders(t.client)).toEqual(['annals_standby']);
      expect(await readModel(t.client, t.schema)).toEqual({ deposits: 10_000, total: 15_000, accounts: 10 });
    } finally {
      await standbyStore.close();
      await t.cleanup();
    }
  });
});
