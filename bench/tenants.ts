/**
 * The `tenants` section of `npm run bench`: appends to many tenants' stores on the one pool a
 * multi-tenant server holds (createTenantClients), against appends to one tenant's store.
 *
 * - single-event appends from 64 concurrent callers to random streams (of 10k), expected
 *   version 'any': (a) all into one tenant's store, (b) spread over T tenants' stores, all on
 *   ONE pool of 10 connections logged in as the server role (each tenant's client runs as its
 *   own role: SET ROLE on a connection whenever the last tenant on it was another);
 * - the same load into one tenant through that pool against a plain store (its own pool,
 *   logged in as the database owner): the cost of the tenant client when it never switches.
 *
 * T is 100 at scale 1 (BENCH_TENANTS overrides it). Creating a tenant (schema, three roles,
 * migrations, one at a time under the tenancy lock) took 0.1-0.3 s here, 11 s for 100; the
 * last row says how long it took. Roles are cluster-wide while the bench database
 * is recreated per run: every role and schema made here is named with a prefix of its own,
 * dropped at the end whatever happened, and leftovers of an aborted run dropped at the start.
 */
import {
  createPostgresClient,
  createTenant,
  createTenantClients,
  dropTenant,
  type EventStore,
  openEventStore,
} from '@annals/core';
import { type Measurement, measure, type Row, row } from './measure.js';

const schemaPrefix = 'bt_';
const directory = 'bench_control';
const serverRole = 'bench_server_role';
const tenancy = { directory, schemaPrefix, serverRole };
/** Every role this section may have made: the server role and each tenant's three. */
const ourRoles = `rolname = '${serverRole}' or rolname ~ '^bt_t[0-9]+_(owner|app|reader)$'`;

/** Tenants created by default: 100 at scale 1. */
const defaultTenants = (scale: number) => Math.max(2, Math.round(100 * Math.min(1, scale)));

export async function tenantsSection(url: string, n: (count: number) => number, scale: number): Promise<Row[]> {
  const rows: Row[] = [];
  const callers = 64;
  const streams = 10_000;
  const events = n(40_000);
  const admin = createPostgresClient({ connectionString: url, maxConnections: 2 });
  const created: string[] = [];
  let clients: ReturnType<typeof createTenantClients> | undefined;
  const stores: EventStore[] = [];
  try {
    await dropLeftovers(admin);
    const wanted = Number(process.env.BENCH_TENANTS ?? defaultTenants(scale));
    if (!Number.isSafeInteger(wanted) || wanted < 1) throw new Error(`BENCH_TENANTS must be >= 1, got ${wanted}`);
    const started = performance.now();
    for (let i = 0; i < wanted; i++) {
      await createTenant(admin, `t${i}`, tenancy);
      created.push(`t${i}`);
    }
    const creationSeconds = (performance.now() - started) / 1000;
    const count = created.length;
    console.log(
      `tenants: created ${count} in ${creationSeconds.toFixed(1)} s (${((1000 * creationSeconds) / count).toFixed(0)} ms each)`,
    );

    // One pool for every tenant, logged in as the server role (NOINHERIT, trust auth, no password).
    const asServer = new URL(url);
    asServer.username = serverRole;
    asServer.password = '';
    clients = createTenantClients({ connectionString: asServer.toString(), maxConnections: 10, ...tenancy });
    for (const id of created) {
      stores.push(
        await openEventStore({ client: clients.forTenant(id), schema: `${schemaPrefix}${id}`, migrate: false }),
      );
    }
    const plain = await openEventStore({
      client: createPostgresClient({ connectionString: url, maxConnections: 10 }),
      schema: 'bench_tenants_plain',
    });
    stores.push(plain);

    const appendTo = (pick: () => EventStore) =>
      measure(events, callers, async (caller, i) => {
        await pick().append(
          `account-${Math.floor(Math.random() * streams)}`,
          [{ type: 'Deposited', data: { amount: i, caller } }],
          { expectedVersion: 'any' },
        );
      });
    const one = stores[0] as EventStore;
    const random = () => stores[Math.floor(Math.random() * count)] as EventStore;
    // Warm-up: JIT, the pools' connections, every tenant's store (and a role on each connection).
    const warm = n(3_000);
    await measure(warm, callers, async (caller, i) => {
      await plain.append(`warm-${caller}`, [{ type: 'Warm', data: { i } }]);
    });
    await measure(Math.max(warm, 2 * count), callers, async (caller, i, _, op) => {
      await (stores[op % count] as EventStore).append(`warm-${caller}`, [{ type: 'Warm', data: { i } }]);
    });

    // One tenant against the plain store in turns (the row shows each side's median round),
    // then the spread load once: at ~1 event a commit it is the long one.
    const rounds = Math.max(1, Number(process.env.BENCH_TENANT_ROUNDS ?? 3));
    const plainRuns: Measurement[] = [];
    const oneRuns: Measurement[] = [];
    for (let round = 0; round < rounds; round++) {
      plainRuns.push(await appendTo(() => plain));
      oneRuns.push(await appendTo(() => one));
    }
    const median = (runs: Measurement[]) =>
      [...runs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond)[Math.floor(runs.length / 2)] as Measurement;
    const rates = (runs: Measurement[]) => runs.map((m) => Math.round(m.eventsPerSecond)).join(', ');
    console.log(`tenants: appends/s by round, plain store: ${rates(plainRuns)}; 1 tenant: ${rates(oneRuns)}`);
    const plainRun = median(plainRuns);
    const oneRun = median(oneRuns);
    const spreadRun = await appendTo(random);
    // The same spread load with each tenant committing alone (no group commit), on a pool of its own.
    const alone = createTenantClients({
      connectionString: asServer.toString(),
      maxConnections: 10,
      groupCommit: false,
      ...tenancy,
    });
    const aloneStores: EventStore[] = [];
    let aloneRun: Measurement;
    try {
      for (const id of created) {
        aloneStores.push(
          await openEventStore({ client: alone.forTenant(id), schema: `${schemaPrefix}${id}`, migrate: false }),
        );
      }
      await measure(Math.max(warm, 2 * count), callers, async (caller, i, _, op) => {
        await (aloneStores[op % count] as EventStore).append(`warm-${caller}`, [{ type: 'Warm', data: { i } }]);
      });
      aloneRun = await appendTo(() => aloneStores[Math.floor(Math.random() * count)] as EventStore);
    } finally {
      for (const store of aloneStores) await store.close().catch(() => {});
      await alone.close().catch(() => {});
    }
    rows.push(
      row(
        `1 event/append, 'any', ${callers} callers, 10k random streams: spread over ${count} tenants (vs all into 1), one pool of 10 as the server role`,
        { ...oneRun, name: '1 tenant' },
        spreadRun,
        '',
      ),
    );
    rows.push(
      row(
        `  same spread over ${count} tenants: their appends sharing commits (group commit, vs each tenant committing alone)`,
        { ...aloneRun, name: 'alone' },
        spreadRun,
        '',
      ),
    );
    rows.push(
      row(
        `  same, all into 1 tenant through createTenantClients (vs a plain store, own pool of 10), median of ${rounds} alternating rounds`,
        { ...plainRun, name: 'plain store' },
        oneRun,
        '~1.0x',
      ),
    );
    rows.push({
      workload: `  setup: creating ${count} tenants took ${creationSeconds.toFixed(1)} s (${((1000 * creationSeconds) / count).toFixed(0)} ms each)`,
      raw: { name: '-', eventsPerSecond: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN, seconds: creationSeconds },
      annals: { eventsPerSecond: Number.NaN, p50Ms: Number.NaN, p99Ms: Number.NaN, seconds: creationSeconds },
      ratio: Number.NaN,
      target: '',
    });
  } finally {
    for (const store of stores) await store.close().catch(() => {});
    await clients?.close().catch(() => {});
    const dropping = performance.now();
    for (const id of created) await dropTenant(admin, id, tenancy).catch(() => {});
    await admin.exec(`drop schema if exists "${directory}" cascade`).catch(() => {});
    await dropLeftovers(admin).catch(() => {});
    if (created.length > 0) {
      console.log(`tenants: dropped ${created.length} in ${((performance.now() - dropping) / 1000).toFixed(1)} s`);
    }
    await admin.close();
  }
  return rows;
}

/** Drops the roles of this section left by an earlier run (and their grants in this database). */
async function dropLeftovers(admin: ReturnType<typeof createPostgresClient>): Promise<void> {
  const roles = await admin.query<{ rolname: string }>(`select rolname from pg_roles where ${ourRoles}`);
  for (const { rolname } of roles) {
    await admin.exec(`drop owned by "${rolname}"; drop role "${rolname}"`);
  }
}
