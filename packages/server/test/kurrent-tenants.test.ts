/**
 * Tenants over the KurrentDB protocol, with the official client over TLS on a real socket: one
 * server, logged in as the NOINHERIT server role, serving tenants `a` and `b`. A call reaches
 * its key's tenant's store and nothing else — reads of a stream and of `$all`, subscriptions,
 * appends, deletes — whatever stream names of B it is given; a key of a tenant that does not
 * exist is refused. Every string only B has carries B's marker, so a leak shows as the marker.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createTenant,
  createTenantClients,
  type SqlClient,
  type TenancyOptions,
  type TenantClients,
  tenantNames,
} from '@annals/core';
import {
  AccessDeniedError,
  jsonEvent,
  KurrentDBClient,
  PersistentSubscriptionDoesNotExistError,
  persistentSubscriptionToAllSettingsFromDefaults,
  persistentSubscriptionToStreamSettingsFromDefaults,
  type ResolvedEvent,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
} from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, postgresBackend } from '../../core/test/support/backends.js';
import { createApiKey, type RunningServer, setupApiKeys, startServer } from '../src/index.js';
import { collect, testCertificate, until } from './kurrent-support.js';
import { dropTenantFixture, urlAs } from './tenant-support.js';

const tag = randomBytes(4).toString('hex');
const options: TenancyOptions = { directory: `kctl_${tag}`, schemaPrefix: `k${tag}_`, serverRole: `ksrv_${tag}` };
const directory = options.directory as string;
const serverRole = options.serverRole as string;
const marker = `B-SECRET-${tag}`;
const { certFile, keyFile, caFile } = testCertificate();

describe.skipIf(!databaseUrl)('tenants over the KurrentDB protocol', () => {
  let admin: SqlClient;
  let clients: TenantClients;
  let server: RunningServer;
  const kurrent: Partial<Record<'a' | 'b' | 'ghost', KurrentDBClient>> = {};
  const asA = () => kurrent.a as KurrentDBClient;
  const asB = () => kurrent.b as KurrentDBClient;
  const betaStreams = ['account-1', `bonly-${marker}`];

  const count = async (tenant: 'a' | 'b') => {
    const [row] = await admin.query<{ n: string }>(
      `select count(*) as n from "${tenantNames(tenant, options).schema}".events`,
    );
    return Number(row?.n);
  };
  const data = (events: ResolvedEvent[]) => JSON.stringify(events.map((e) => [e.event?.streamId, e.event?.data]));

  beforeAll(async () => {
    admin = postgresBackend.client();
    await createTenant(admin, 'a', options);
    await createTenant(admin, 'b', options);
    await setupApiKeys(admin, { directory, serverRoles: [serverRole] });
    const scopes = ['read', 'append', 'subscribe', 'admin'] as const;
    const secrets = {
      a: (await createApiKey(admin, { name: 'a-admin', tenant: 'a', scopes: [...scopes] }, { directory })).secret,
      b: (await createApiKey(admin, { name: 'b-admin', tenant: 'b', scopes: [...scopes] }, { directory })).secret,
      ghost: (await createApiKey(admin, { name: 'ghost', tenant: 'ghost', scopes: [...scopes] }, { directory })).secret,
    };
    clients = createTenantClients({ connectionString: urlAs(serverRole), maxConnections: 8, ...options });
    server = await startServer({
      client: clients.control,
      tenants: { clients, options },
      auth: { directory },
      port: 0,
      grpc: { port: 0, tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) } },
    });
    const port = String(server.grpc?.port);
    for (const who of ['a', 'b', 'ghost'] as const) {
      kurrent[who] =
        KurrentDBClient.connectionString`kurrentdb://${who}:${encodeURIComponent(secrets[who])}@127.0.0.1:${port}?tls=true&tlsCAFile=${caFile}`;
    }
    for (const stream of betaStreams) {
      await asB().appendToStream(stream, [
        jsonEvent({ type: `Opened_${marker}`, data: { owner: marker } }),
        jsonEvent({ type: 'Deposited', data: { note: `${marker} data` } }),
      ]);
    }
    await asA().appendToStream('account-1', jsonEvent({ type: 'Opened', data: { owner: 'alice' } }));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(Object.values(kurrent).map((client) => client?.dispose()));
    await server?.close().catch(() => {});
    await clients?.close().catch(() => {});
    if (!admin) return;
    await dropTenantFixture(admin, options, ['a', 'b']);
    await admin.close();
  });

  it('B reads its own events under the same stream name (the marker check is live)', async () => {
    expect(data(await collect(asB().readStream('account-1')))).toContain(marker);
    expect(await collect(asB().readAll())).toHaveLength(4);
  });

  it('with A’s key, reads of a stream and of $all answer A’s events only', async () => {
    const own = await collect(asA().readStream('account-1'));
    expect(own.map((e) => e.event?.data)).toEqual([{ owner: 'alice' }]);
    await expect(collect(asA().readStream(`bonly-${marker}`))).rejects.toBeInstanceOf(StreamNotFoundError);
    const all = await collect(asA().readAll());
    expect(all.map((e) => e.event?.position?.commit)).toEqual([1n]);
    expect(data(all)).not.toContain(marker);
    const backwards = await collect(asA().readAll({ direction: 'backwards', fromPosition: 'end' }));
    expect(data(backwards)).not.toContain(marker);
    // B's `$$` metadata stream name is A's own (empty) one.
    await expect(collect(asA().readStream(`$$bonly-${marker}`))).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('A’s appends and deletes land in A’s log, whatever stream of B they name', async () => {
    const before = await count('b');
    const appended = await asA().appendToStream(
      `bonly-${marker}`.replace(marker, 'x'),
      jsonEvent({ type: 'T', data: {} }),
    );
    expect(appended.success).toBe(true);
    // A stream name only B has: to A it does not exist, so an expected revision of B's conflicts.
    await expect(
      asA().appendToStream(`bonly-${marker}`, jsonEvent({ type: 'T', data: {} }), { streamState: 1n }),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    await asA().tombstoneStream('account-1');
    expect(await count('b')).toBe(before);
    expect(data(await collect(asB().readStream('account-1')))).toContain(marker);
    await expect(collect(asA().readStream('account-1'))).rejects.toThrow();
  });

  it('A’s live subscription to $all receives none of B’s events while B appends', async () => {
    const seen: ResolvedEvent[] = [];
    const subscription = asA().subscribeToAll({ fromPosition: START });
    subscription.on('data', (event) => seen.push(event));
    try {
      for (let i = 0; i < 20; i++)
        await asB().appendToStream(`live-${marker}`, jsonEvent({ type: 'B', data: { marker, i } }));
      await asA().appendToStream('live-a', jsonEvent({ type: 'A', data: { done: true } }));
      await until(() => seen.some((e) => e.event?.streamId === 'live-a'), 15_000, 'A’s own live event');
    } finally {
      await subscription.unsubscribe();
    }
    expect(data(seen)).not.toContain(marker);
    expect(seen.every((e) => !e.event?.streamId.includes(marker))).toBe(true);
  });

  it('a key of a tenant that does not exist is refused, and changes nothing', async () => {
    const before = [await count('a'), await count('b')];
    await expect(
      (kurrent.ghost as KurrentDBClient).appendToStream('account-1', jsonEvent({ type: 'T', data: {} })),
    ).rejects.toBeInstanceOf(AccessDeniedError);
    await expect(collect((kurrent.ghost as KurrentDBClient).readAll())).rejects.toThrow();
    expect([await count('a'), await count('b')]).toEqual(before);
  });

  it('persistent subscription groups are per tenant: A neither sees nor consumes B’s, and A’s group gets A’s events only', async () => {
    const settings = persistentSubscriptionToStreamSettingsFromDefaults({ startFrom: START });
    await asB().createPersistentSubscriptionToStream('account-1', `g-${marker}`, settings);
    await asB().createPersistentSubscriptionToAll(`all-${marker}`, persistentSubscriptionToAllSettingsFromDefaults());
    expect(JSON.stringify(await asA().listAllPersistentSubscriptions())).not.toContain(marker);
    await expect(asA().getPersistentSubscriptionToStreamInfo('account-1', `g-${marker}`)).rejects.toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
    await expect(asA().deletePersistentSubscriptionToStream('account-1', `g-${marker}`)).rejects.toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
    const theirs = asA().subscribeToPersistentSubscriptionToStream('account-1', `g-${marker}`);
    expect(await new Promise<unknown>((resolve) => theirs.on('error', resolve))).toBeInstanceOf(
      PersistentSubscriptionDoesNotExistError,
    );
    // The same stream and group names in both: A's group, A's events.
    await asB().appendToStream('shared-ps', jsonEvent({ type: 'Opened', data: { owner: marker } }));
    await asB().createPersistentSubscriptionToStream('shared-ps', `g-${marker}`, settings);
    await asA().appendToStream('shared-ps', jsonEvent({ type: 'Opened', data: { owner: 'alice' } }));
    await asA().createPersistentSubscriptionToStream('shared-ps', `g-${marker}`, settings);
    const mine = asA().subscribeToPersistentSubscriptionToStream('shared-ps', `g-${marker}`);
    const got: ResolvedEvent[] = [];
    for await (const event of mine) {
      got.push(event);
      await mine.ack(event);
      break;
    }
    await mine.unsubscribe();
    expect(data(got)).not.toContain(marker);
    expect(got[0]?.event?.data).toEqual({ owner: 'alice' });
    expect((await asB().listAllPersistentSubscriptions()).map((g) => g.groupName).sort()).toEqual(
      [`all-${marker}`, `g-${marker}`, `g-${marker}`].sort(),
    );
  });
});
