/**
 * Group commit across tenants (pg-group-commit.ts): appends of different tenants arriving
 * together share one transaction, yet each tenant's log stays dense and gap-free with its own
 * events only, each append gets its own answer (conflicts included), and a tenant whose log
 * lock is held elsewhere holds up nobody else for long. PostgreSQL only (roles).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  createTenant,
  createTenantClients,
  dropTenant,
  type EventStore,
  openEventStore,
  type SqlClient,
  type TenancyOptions,
  type TenantClients,
  tenantNames,
} from '../src/index.js';
import { databaseUrl, postgresBackend } from './support/backends.js';

const tag = randomBytes(4).toString('hex');
const options: TenancyOptions = { directory: `gc_${tag}`, schemaPrefix: `g${tag}_`, serverRole: `gsrv_${tag}` };
const tenants = Array.from({ length: 8 }, (_, i) => `t${i}`);

describe.skipIf(!databaseUrl)('group commit across tenants, on PostgreSQL', () => {
  let admin: SqlClient;
  let clients: TenantClients;
  const stores = new Map<string, EventStore>();

  beforeAll(async () => {
    admin = postgresBackend.client();
    for (const id of tenants) await createTenant(admin, id, options);
    const url = new URL(databaseUrl as string);
    url.username = options.serverRole as string;
    clients = createTenantClients({ connectionString: url.toString(), maxConnections: 6, ...options });
    for (const id of tenants) {
      const store = await openEventStore({
        client: clients.forTenant(id),
        schema: tenantNames(id, options).schema,
        migrate: false,
      });
      stores.set(id, store);
    }
  }, 120_000);

  afterAll(async () => {
    for (const store of stores.values()) await store.close();
    await clients?.close();
    for (const id of tenants) await dropTenant(admin, id, options);
    await admin.exec(`drop schema if exists "${options.directory}" cascade`);
    await admin.exec(`drop owned by "${options.serverRole}"; drop role "${options.serverRole}"`);
  }, 120_000);

  const storeOf = (id: string) => stores.get(id) as EventStore;
  const schemaOf = (id: string) => tenantNames(id, options).schema;

  it('concurrent appends of many tenants: shared commits, each log dense with its own events, each answer its own', async () => {
    // Racing exact-version appends on few streams per tenant: conflicts must be reported to
    // exactly the losers, whoever shared their commit.
    const outcomes = await Promise.all(
      Array.from({ length: 600 }, async (_, i) => {
        const id = tenants[i % tenants.length] as string;
        const stream = `acct-${i % 3}`;
        const store = storeOf(id);
        const version = (await store.getStream(stream))?.version ?? 0;
        try {
          const result = await store.append(stream, [{ type: 'Posted', data: { tenant: id, i } }], {
            expectedVersion: version === 0 ? 'no-stream' : version,
          });
          return { id, stream, ok: true as const, version: result.streamVersion, position: result.positions[0] };
        } catch (error) {
          if (!(error instanceof ConcurrencyError)) throw error;
          return { id, stream, ok: false as const };
        }
      }),
    );
    expect(outcomes.some((o) => o.ok)).toBe(true);
    for (const id of tenants) {
      const rows = await admin.query<{
        position: string;
        stream_id: string;
        stream_version: string;
        data: { tenant: string };
      }>(`select position, stream_id, stream_version, data from "${schemaOf(id)}".events order by position`);
      const wins = outcomes.filter((o) => o.id === id && o.ok);
      // Dense positions 1..n, only this tenant's events, exactly the acknowledged ones.
      expect(rows.map((r) => Number(r.position))).toEqual(rows.map((_, k) => k + 1));
      expect(rows.every((r) => r.data.tenant === id)).toBe(true);
      expect(rows).toHaveLength(wins.length);
      for (const stream of ['acct-0', 'acct-1', 'acct-2']) {
        const versions = rows.filter((r) => r.stream_id === stream).map((r) => Number(r.stream_version));
        expect(versions).toEqual(versions.map((_, k) => k + 1));
        const acknowledged = wins.filter((o) => o.stream === stream).map((o) => o.version as number);
        expect([...acknowledged].sort((a, b) => a - b)).toEqual(versions);
      }
    }
    // And commits were shared: some transaction (xmin) stored events of several tenants.
    const union = tenants
      .map((id) => `select xmin::text as tx, '${id}' as tenant from "${schemaOf(id)}".events`)
      .join(' union all ');
    const [shared] = await admin.query<{ n: string }>(
      `select count(*) as n from (select tx from (${union}) e group by tx having count(distinct tenant) > 1) s`,
    );
    expect(Number(shared?.n)).toBeGreaterThan(0);
  }, 120_000);

  it('a tenant whose log lock is held elsewhere holds up nobody else for long; its append lands after', async () => {
    const blocked = 't0';
    const session = await admin.session();
    try {
      await session.query('begin');
      await session.query(`select * from "${schemaOf(blocked)}".log_head for update`);
      // Rounds where the blocked tenant's appends arrive among the others', so that some share
      // their groups: none of the others may wait for the lock.
      const late: Promise<unknown>[] = [];
      const others = tenants.filter((id) => id !== blocked);
      const started = performance.now();
      for (let round = 0; round < 10; round++) {
        const batch = others.map((id) => storeOf(id).append('acct-9', [{ type: 'OnTime', data: { tenant: id } }]));
        late.push(storeOf(blocked).append(`acct-late-${round}`, [{ type: 'Late', data: { tenant: blocked } }]));
        batch.push(...others.map((id) => storeOf(id).append('acct-9', [{ type: 'OnTime', data: { tenant: id } }])));
        const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('held up by the lock')), 3000));
        await Promise.race([Promise.all(batch), timeout]);
      }
      expect(performance.now() - started).toBeLessThan(5000);
      const settled = await Promise.race([
        Promise.all(late).then(() => 'landed'),
        new Promise((resolve) => setTimeout(() => resolve('waiting'), 200)),
      ]);
      expect(settled).toBe('waiting');
      await session.query('commit');
      const results = (await Promise.all(late)) as { streamVersion: number }[];
      expect(results.map((r) => r.streamVersion)).toEqual(results.map(() => 1));
    } finally {
      await session.query('rollback').catch(() => undefined);
      await session.release();
    }
    const [row] = await admin.query<{ n: string }>(
      `select count(*) as n from "${schemaOf(blocked)}".events where stream_id like 'acct-late-%'`,
    );
    expect(Number(row?.n)).toBe(10);
  }, 60_000);
});
