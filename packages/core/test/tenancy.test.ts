/**
 * Tenants isolated by PostgreSQL roles (docs/tenancy.md), at the library: each tenant a schema
 * and roles of its own, clients connected as the NOINHERIT server role and SET ROLE to a
 * tenant's application role. Overlapping stream ids stay apart; the database itself refuses
 * cross-tenant SQL (42501), whatever the library is asked; many tenants share one small pool.
 * Roles are cluster-wide: every name carries this run's random tag, all dropped afterwards.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditTrail,
  createTenant,
  createTenantClients,
  DatabaseError,
  dropTenant,
  type EventStore,
  getTenant,
  listTenants,
  mergeDecider,
  migrateTenants,
  openEventStore,
  type RecordedEvent,
  type SqlClient,
  type TenancyOptions,
  type TenantClients,
  tenantNames,
  timeTravel,
  toArray,
} from '../src/index.js';
import { databaseUrl, postgresBackend } from './support/backends.js';

const tag = randomBytes(4).toString('hex');
const options: TenancyOptions = { directory: `ctl_${tag}`, schemaPrefix: `t${tag}_`, serverRole: `srv_${tag}` };
const serverRole = options.serverRole as string;

const urlAs = (role: string) => {
  const url = new URL(databaseUrl as string);
  url.username = role;
  url.password = '';
  return url.toString();
};

/** The SQLSTATE `work` failed with (undefined: it ran). */
async function sqlState(work: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await work();
    return undefined;
  } catch (error) {
    const e = error as { code?: string; sqlState?: string; cause?: { code?: string } };
    return e.sqlState ?? (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : e.cause?.code);
  }
}

const injections = (schema: string) => [
  `x'; select * from "${schema}".events; --`,
  `x" ; select * from "${schema}".events; --`,
  `' or 1=1 --`,
  `account-1' union select * from "${schema}".events --`,
  `${schema}.events`,
  `"${schema}".events`,
  `$1; drop table "${schema}".events; --`,
  `x\\'; reset role; select * from "${schema}".events; --`,
  `%' or '1'='1`,
];

describe.skipIf(!databaseUrl)('tenants isolated by PostgreSQL roles (library)', () => {
  let admin: SqlClient;
  let clients: TenantClients;
  const created = new Set<string>();
  const alpha = tenantNames('alpha', options);
  const beta = tenantNames('beta', options);
  let alphaStore: EventStore;
  let betaStore: EventStore;
  let betaEvents: RecordedEvent[] = [];
  const marker = `BETA-SECRET-${tag}`;

  const countEvents = async (schema: string) => {
    const [row] = await admin.query<{ n: string }>(`select count(*) as n from "${schema}".events`);
    return Number(row?.n);
  };

  beforeAll(async () => {
    admin = postgresBackend.client();
    const t0 = Date.now();
    const first = await createTenant(admin, 'alpha', options);
    created.add('alpha');
    await createTenant(admin, 'beta', options);
    created.add('beta');
    console.log(`[tenancy] two tenants created in ${Date.now() - t0} ms`);
    expect(first.applied.length).toBeGreaterThan(0);
    clients = createTenantClients({ connectionString: urlAs(serverRole), maxConnections: 6, ...options });
    alphaStore = await openEventStore({ client: clients.forTenant('alpha'), schema: alpha.schema, migrate: false });
    betaStore = await openEventStore({ client: clients.forTenant('beta'), schema: beta.schema, migrate: false });
  });

  afterAll(async () => {
    await alphaStore?.close().catch(() => {});
    await betaStore?.close().catch(() => {});
    await clients?.close().catch(() => {});
    if (!admin) return;
    for (const id of created) await dropTenant(admin, id, options).catch(() => {});
    await admin.exec(`drop schema if exists "${options.directory}" cascade`);
    await admin.exec(`do $$ begin
  if exists (select from pg_roles where rolname = '${serverRole}') then
    execute 'drop owned by "${serverRole}"'; execute 'drop role "${serverRole}"';
  end if;
end $$;`);
  });

  it('createTenant is idempotent; listTenants and tenantNames name schema and roles', async () => {
    const again = await createTenant(admin, 'alpha', options);
    expect(again.applied).toEqual([]);
    expect(again.schema).toBe(`t${tag}_alpha`);
    expect(alpha).toEqual({
      id: 'alpha',
      schema: `t${tag}_alpha`,
      roles: { owner: `t${tag}_alpha_owner`, app: `t${tag}_alpha_app`, reader: `t${tag}_alpha_reader` },
    });
    const listed = await listTenants(admin, options);
    expect(listed.map((t) => t.id)).toEqual(['alpha', 'beta']);
    expect(listed.map((t) => t.schema)).toEqual([alpha.schema, beta.schema]);
    expect(listed[0]?.roles).toEqual(alpha.roles);
    expect(listed[0]?.createdAt).toBeInstanceOf(Date);
    // The server role (what clients log in as) may read the directory too.
    expect((await listTenants(clients.control, options)).map((t) => t.id)).toEqual(['alpha', 'beta']);
    const [role] = await admin.query<{ rolinherit: boolean; rolcanlogin: boolean; rolsuper: boolean }>(
      'select rolinherit, rolcanlogin, rolsuper from pg_roles where rolname = $1',
      [serverRole],
    );
    expect(role).toEqual({ rolinherit: false, rolcanlogin: true, rolsuper: false });
  });

  it('overlapping stream ids: each tenant its own log, positions from 1, every read its own', async () => {
    const alphaCorrelation = `corr-${tag}`;
    const betaCorrelation = `corr-${tag}`; // the same correlation id in both tenants
    const a1 = await alphaStore.append('account-1', [
      { type: 'Opened', data: { owner: 'alpha-owner' }, metadata: { actor: 'ada', correlationId: alphaCorrelation } },
      { type: 'Deposited', data: { amount: 10 }, metadata: { actor: 'ada', correlationId: alphaCorrelation } },
    ]);
    const b1 = await betaStore.append('account-1', [
      { type: 'Opened', data: { owner: marker }, metadata: { actor: 'ada', correlationId: betaCorrelation, marker } },
      { type: 'Deposited', data: { amount: 999, marker }, metadata: { actor: 'ada', correlationId: betaCorrelation } },
      { type: 'Deposited', data: { amount: 1, marker }, metadata: { actor: 'ada', correlationId: betaCorrelation } },
    ]);
    await betaStore.append(`beta_only-${tag}`, [{ type: 'Secret', data: { marker }, metadata: { actor: 'bob' } }]);
    expect(a1.positions).toEqual([1, 2]);
    expect(b1.positions).toEqual([1, 2, 3]);
    expect(a1.streamVersion).toBe(2);
    expect(b1.streamVersion).toBe(3);

    const alphaAll = await toArray(alphaStore.readAll());
    betaEvents = await toArray(betaStore.readAll());
    expect(alphaAll.map((e) => e.position)).toEqual([1, 2]);
    expect(betaEvents.map((e) => e.position)).toEqual([1, 2, 3, 4]);
    expect(JSON.stringify(alphaAll)).not.toContain(marker);
    expect(await alphaStore.headPosition()).toBe(2);
    expect(await betaStore.headPosition()).toBe(4);

    const alphaStream = await toArray(alphaStore.readStream('account-1'));
    expect(alphaStream.map((e) => e.data)).toEqual([{ owner: 'alpha-owner' }, { amount: 10 }]);
    expect(await toArray(alphaStore.readStream(`beta_only-${tag}`))).toEqual([]);
    expect(await alphaStore.getStream(`beta_only-${tag}`)).toBeNull();
    expect((await alphaStore.getStream('account-1'))?.version).toBe(2);

    for (const event of betaEvents) expect(await alphaStore.getEvent(event.id)).toBeNull();
    for (const event of alphaAll) {
      expect(await betaStore.getEvent(event.id)).toBeNull();
      expect((await alphaStore.getEvent(event.id))?.data).toEqual(event.data);
    }

    const audit = auditTrail(alphaStore);
    const history = await toArray(audit.history('account-1'));
    expect(history).toHaveLength(2);
    expect(JSON.stringify(history)).not.toContain(marker);
    const byActor = await toArray(audit.byActor('ada'));
    expect(byActor.map((e) => e.position)).toEqual([1, 2]);
    expect(await toArray(audit.byActor('bob'))).toEqual([]);
    const tree = await audit.causalTree(alphaCorrelation);
    expect(JSON.stringify(tree)).not.toContain(marker);
    expect(tree.length).toBe(2);
    const inRange = await toArray(audit.inRange({}));
    expect(inRange.map((e) => e.position)).toEqual([1, 2]);

    const travel = timeTravel(alphaStore, mergeDecider);
    const state = await travel.stateAt('account-1', { position: 4 });
    expect(state.state).toMatchObject({ owner: 'alpha-owner', amount: 10 });
    expect(state.streamVersion).toBe(2);
    const betaState = await timeTravel(betaStore, mergeDecider).stateAt('account-1', { version: 3 });
    expect(betaState.state).toMatchObject({ owner: marker, amount: 1 });
    const steps = [];
    for await (const step of travel.replay('account-1')) steps.push(step);
    expect(steps).toHaveLength(2);
    expect(JSON.stringify(steps)).not.toContain(marker);
    const changes = await travel.changesBetween(0, 10);
    expect(JSON.stringify(changes)).not.toContain(marker);
  });

  it('the database refuses alpha’s client every table and function of beta (42501)', async () => {
    const alphaClient = clients.forTenant('alpha');
    const before = await countEvents(beta.schema);
    const b = `"${beta.schema}"`;
    for (const sql of [
      `select * from ${b}.events`,
      `select * from ${b}.subject_keys`,
      `select * from ${b}.checkpoints`,
      `select * from ${b}.seals`,
      `select * from ${b}.streams`,
      `select * from ${b}.log_head`,
      `select * from ${b}.migrations`,
      `insert into ${b}.checkpoints (name) values ('x')`,
      `select ${b}.append_events(null, null, null, null, null, null, null, null, null, null)`,
      `select ${b}.change_stream_state('account-1', 'deleted', null)`,
    ]) {
      expect(await sqlState(() => alphaClient.query(sql)), sql).toBe('42501');
    }
    // Its own schema it reads.
    expect(await sqlState(() => alphaClient.query(`select * from "${alpha.schema}".events limit 1`))).toBeUndefined();
    // A store of alpha's client on beta's schema: opening or using it fails typed, stores nothing.
    let refused: unknown;
    try {
      const wrong = await openEventStore({
        client: alphaClient,
        schema: beta.schema,
        migrate: false,
        closeClient: false,
      });
      try {
        await expect(toArray(wrong.readAll())).rejects.toBeInstanceOf(DatabaseError);
        await expect(wrong.append('account-1', [{ type: 'Injected', data: { by: 'alpha' } }])).rejects.toThrow();
        await expect(wrong.getEvent(betaEvents[0]?.id as string)).rejects.toBeInstanceOf(DatabaseError);
      } finally {
        await wrong.close();
      }
    } catch (error) {
      refused = error;
    }
    if (refused) {
      expect(refused).toBeInstanceOf(DatabaseError);
      expect((refused as DatabaseError).sqlState).toBe('42501');
    }
    expect(await countEvents(beta.schema)).toBe(before);

    // The bare server role (RESET ROLE, NOINHERIT) reaches no tenant's data.
    for (const schema of [alpha.schema, beta.schema]) {
      expect(await sqlState(() => clients.control.query(`select * from "${schema}".events`))).toBe('42501');
      expect(await sqlState(() => clients.control.query(`select * from "${schema}".subject_keys`))).toBe('42501');
    }
    const [who] = await clients.control.query<{ current_user: string }>('select current_user');
    expect(who?.current_user).toBe(serverRole);
    const [asAlpha] = await alphaClient.query<{ current_user: string }>('select current_user');
    expect(asAlpha?.current_user).toBe(alpha.roles.app);
  });

  it('SQL-injection strings as stream, event and correlation ids reach nothing of beta', async () => {
    const before = await countEvents(beta.schema);
    const betaHead = await betaStore.headPosition();
    const audit = auditTrail(alphaStore);
    for (const evil of injections(beta.schema)) {
      expect(await toArray(alphaStore.readStream(evil))).toEqual([]);
      expect(await alphaStore.getStream(evil)).toBeNull();
      expect(JSON.stringify(await toArray(alphaStore.readAll({ streamIds: [evil], categories: [evil] })))).toBe('[]');
      expect(await audit.causalTree(evil)).toEqual([]);
      expect(await toArray(audit.byActor(evil))).toEqual([]);
      const asId = await (async () => alphaStore.getEvent(evil))().catch((error: unknown) => error);
      expect(asId === null || (asId instanceof Error && !(asId instanceof DatabaseError)), String(asId)).toBe(true);
      // Stored in alpha, as a plain stream id; beta untouched.
      const result = await alphaStore.append(evil, [
        { type: 'Evil', data: { evil }, metadata: { correlationId: evil, actor: evil } },
      ]);
      expect(result.streamVersion).toBe(1);
      const back = await toArray(alphaStore.readStream(evil));
      expect(back.map((e) => e.streamId)).toEqual([evil]);
      expect((await audit.causalTree(evil)).map((n) => n.event.streamId)).toEqual([evil]);
    }
    expect(await countEvents(beta.schema)).toBe(before);
    expect(await betaStore.headPosition()).toBe(betaHead);
    expect(JSON.stringify(await toArray(alphaStore.readAll()))).not.toContain(marker);
    // Every table of beta still there.
    const [exists] = await admin.query<{ n: string }>(
      `select count(*) as n from information_schema.tables where table_schema = $1 and table_name = 'events'`,
      [beta.schema],
    );
    expect(Number(exists?.n)).toBe(1);
  });

  it('guessed ids and positions of beta, looked up through alpha, give null or alpha’s own', async () => {
    const alphaAll = await toArray(alphaStore.readAll());
    const alphaIds = new Set(alphaAll.map((e) => e.id));
    for (const event of betaEvents) {
      expect(await alphaStore.getEvent(event.id)).toBeNull();
      const [at] = await toArray(alphaStore.readAll({ after: event.position - 1, limit: 1 }));
      if (at) {
        expect(alphaIds.has(at.id)).toBe(true);
        expect(at.position).toBe(event.position);
        expect(JSON.stringify(at)).not.toContain(marker);
      }
      const travel = timeTravel(alphaStore, mergeDecider);
      expect(JSON.stringify(await travel.stateAt('account-1', { position: event.position }))).not.toContain(marker);
    }
    expect(await alphaStore.getEvent(randomUUID())).toBeNull();
  });

  it('migrateTenants: every tenant, nothing to apply once current', async () => {
    const results = await migrateTenants(admin, options);
    expect(results.map((r) => r.tenant)).toEqual(['alpha', 'beta']);
    for (const result of results) {
      expect(result.applied).toEqual([]);
      expect(result.current).toBeTruthy();
    }
  });

  it('dropTenant removes the schema, the roles and the directory row; a second drop is false', async () => {
    await betaStore.close();
    expect(await dropTenant(admin, 'beta', options)).toBe(true);
    created.delete('beta');
    const schemas = await admin.query('select from pg_namespace where nspname = $1', [beta.schema]);
    expect(schemas).toHaveLength(0);
    const roles = await admin.query('select rolname from pg_roles where rolname = any($1)', [
      [beta.roles.app, beta.roles.owner, beta.roles.reader],
    ]);
    expect(roles).toEqual([]);
    expect(await getTenant(admin, 'beta', options)).toBeUndefined();
    expect(await getTenant(clients.control, 'beta', options)).toBeUndefined();
    expect((await listTenants(admin, options)).map((t) => t.id)).toEqual(['alpha']);
    expect(await dropTenant(admin, 'beta', options)).toBe(false);
    // Alpha is untouched; beta's client now fails at SET ROLE (the role is gone).
    expect(await alphaStore.headPosition()).toBeGreaterThanOrEqual(2);
    expect(await sqlState(() => clients.forTenant('beta').query('select 1'))).toBeDefined();
  });

  it('many tenants on one pool of 4: 200 concurrent appends, each log dense with its own events', async () => {
    const count = 20;
    const ids = Array.from({ length: count }, (_, i) => `many${i}`);
    const t0 = Date.now();
    for (const id of ids) {
      await createTenant(admin, id, options);
      created.add(id);
    }
    const createMs = Date.now() - t0;
    console.log(`[tenancy] ${count} tenants created in ${createMs} ms (${Math.round(createMs / count)} ms each)`);
    const shared = createTenantClients({ connectionString: urlAs(serverRole), maxConnections: 4, ...options });
    try {
      const stores = new Map<string, EventStore>();
      for (const id of ids) {
        stores.set(
          id,
          await openEventStore({
            client: shared.forTenant(id),
            schema: tenantNames(id, options).schema,
            migrate: false,
          }),
        );
      }
      let peak = 0;
      const sample = setInterval(() => {
        peak = Math.max(peak, shared.control.poolStats?.().total ?? 0);
      }, 2);
      const t1 = Date.now();
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => {
          const id = ids[i % count] as string;
          return (stores.get(id) as EventStore).append(`account-${i % 3}`, [
            { type: 'Deposited', data: { tenant: id, i } },
          ]);
        }),
      );
      clearInterval(sample);
      console.log(`[tenancy] 200 appends over ${count} tenants on 4 connections in ${Date.now() - t1} ms`);
      peak = Math.max(peak, shared.control.poolStats?.().total ?? 0);
      expect(peak).toBeLessThanOrEqual(4);
      for (const id of ids) {
        const events = await toArray((stores.get(id) as EventStore).readAll());
        expect(events.map((e) => e.position)).toEqual(Array.from({ length: 200 / count }, (_, k) => k + 1));
        for (const event of events) expect((event.data as { tenant: string }).tenant).toBe(id);
        // Rows as the database holds them (not only as the store reads them).
        const [row] = await admin.query<{ n: string; max: string }>(
          `select count(*) as n, max(position) as max from "${tenantNames(id, options).schema}".events`,
        );
        expect(Number(row?.n)).toBe(200 / count);
        expect(Number(row?.max)).toBe(200 / count);
      }
      for (const store of stores.values()) await store.close();
    } finally {
      await shared.close();
    }
  });
});
