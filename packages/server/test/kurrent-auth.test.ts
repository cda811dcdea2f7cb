/**
 * The KurrentDB protocol over TLS with a certificate of the test's own (the client trusts it
 * through `tlsCAFile`), with auth on: the official client's username/password, the password an
 * Annals API key, on each backend.
 */
import { readFileSync } from 'node:fs';
import {
  AccessDeniedError,
  jsonEvent,
  KurrentDBClient,
  persistentSubscriptionToAllSettingsFromDefaults,
  persistentSubscriptionToStreamSettingsFromDefaults,
  START,
} from '@kurrent/kurrentdb-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema } from '../../core/test/support/backends.js';
import { revokeApiKey, setupApiKeys } from '../src/index.js';
import { makeKey } from './auth-support.js';
import { collect, type KurrentServer, startKurrentServer, testCertificate, until } from './kurrent-support.js';
import { backends } from './support.js';

const { certFile, keyFile, caFile } = testCertificate();

describe.each(backends)('KurrentDB protocol over TLS with API keys on $name', (backend) => {
  const directory = freshSchema('keys');
  let server: KurrentServer;
  let admin: string;
  let reader: string;
  const clients: KurrentDBClient[] = [];
  const connect = (credentials?: { username: string; password: string }) => {
    const port = server.grpc?.port;
    const auth = credentials
      ? `${encodeURIComponent(credentials.username)}:${encodeURIComponent(credentials.password)}@`
      : '';
    const client = KurrentDBClient.connectionString`kurrentdb://${auth}127.0.0.1:${String(port)}?tls=true&tlsCAFile=${caFile}&keepAliveInterval=10000&keepAliveTimeout=10000`;
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    const client = backend.client();
    await setupApiKeys(client, { directory, serverRoles: [] });
    admin = (await makeKey(client, directory, { scopes: ['admin'], actor: 'ops@example.com' })).secret;
    reader = (await makeKey(client, directory, { scopes: ['read'] })).secret;
    server = await startKurrentServer(backend, {
      auth: { directory, cacheMs: 60_000 },
      grpc: { port: 0, tls: { cert: readFileSync(certFile), key: readFileSync(keyFile) } },
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.dispose()));
    await server?.client.exec(`drop schema if exists "${directory}" cascade`);
    await server?.cleanup();
  });

  it('appends and reads with a key as the password, stamping the key’s actor', async () => {
    const kurrent = connect({ username: 'ops', password: admin });
    await kurrent.appendToStream('tls-1', jsonEvent({ type: 'Opened', data: { ok: true } }));
    const [read] = await collect(kurrent.readStream('tls-1'));
    expect(read?.event?.data).toEqual({ ok: true });
    expect(read?.event?.metadata).toEqual({ actor: 'ops@example.com' });
  });

  it('refuses a wrong password, no credentials, and a key without the scope', async () => {
    const wrong = connect({ username: 'ops', password: `${admin.slice(0, -2)}xx` });
    await expect(wrong.appendToStream('tls-2', jsonEvent({ type: 'X', data: {} }))).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    const anonymous = connect();
    await expect(anonymous.appendToStream('tls-2', jsonEvent({ type: 'X', data: {} }))).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    await expect(collect(anonymous.readStream('tls-1'))).rejects.toThrow();
    const readOnly = connect({ username: 'reader', password: reader });
    await expect(readOnly.appendToStream('tls-2', jsonEvent({ type: 'X', data: {} }))).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    expect(await collect(readOnly.readStream('tls-1'))).toHaveLength(1);
    expect((await server.request('GET', '/streams/tls-2/events')).status).toBe(401);
  });

  it('ends a subscription and refuses appends once its key is revoked', async () => {
    const key = await makeKey(server.client, directory, { scopes: ['read', 'append', 'subscribe'] });
    const kurrent = connect({ username: 'k', password: key.secret });
    await kurrent.appendToStream('tls-3', jsonEvent({ type: 'Opened', data: {} }));
    const subscription = kurrent.subscribeToStream('tls-3');
    const ended = new Promise<unknown>((resolve) => subscription.on('error', resolve));
    await until(() => server.grpc?.openSubscriptions() === 1, 10_000, 'the subscription');
    expect(await revokeApiKey(server.client, key.id, null, { directory })).toBe(true);
    expect(await ended).toBeInstanceOf(AccessDeniedError);
    await until(() => server.grpc?.openSubscriptions() === 0, 5000, 'the subscription to end');
    await expect(kurrent.appendToStream('tls-3', jsonEvent({ type: 'X', data: {} }))).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
  });

  it('persistent subscriptions: admin defines (its actor recorded), subscribe consumes, read may not define, categories bound', async () => {
    const settings = persistentSubscriptionToStreamSettingsFromDefaults({ startFrom: START });
    const readOnly = connect({ username: 'reader', password: reader });
    await expect(readOnly.createPersistentSubscriptionToStream('tls-ps', 'g', settings)).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    const kurrent = connect({ username: 'ops', password: admin });
    await kurrent.appendToStream('tls-ps', jsonEvent({ type: 'Opened', data: { n: 1 } }));
    await kurrent.createPersistentSubscriptionToStream('tls-ps', 'g', settings);
    const [defined] = await collect(kurrent.readStream('$persistent-subscriptions'));
    expect(defined?.event?.metadata).toEqual({ actor: 'ops@example.com' });
    // A read key sees the group but may not consume it.
    expect((await readOnly.getPersistentSubscriptionToStreamInfo('tls-ps', 'g')).groupName).toBe('g');
    const refused = readOnly.subscribeToPersistentSubscriptionToStream('tls-ps', 'g');
    const refusal = await new Promise<unknown>((resolve) => refused.on('error', resolve));
    expect(refusal).toBeInstanceOf(AccessDeniedError);

    const worker = await makeKey(server.client, directory, { scopes: ['subscribe'], categories: ['tls'] });
    const consumer = connect({ username: 'w', password: worker.secret });
    const subscription = consumer.subscribeToPersistentSubscriptionToStream('tls-ps', 'g');
    const ended = new Promise<unknown>((resolve) => subscription.on('error', resolve));
    for await (const event of subscription) {
      expect(event.event?.data).toEqual({ n: 1 });
      await subscription.ack(event);
      break;
    }
    // Its categories hold no $all group.
    await kurrent.createPersistentSubscriptionToAll('all-g', persistentSubscriptionToAllSettingsFromDefaults());
    const all = consumer.subscribeToPersistentSubscriptionToAll('all-g');
    expect(await new Promise<unknown>((resolve) => all.on('error', resolve))).toBeInstanceOf(AccessDeniedError);
    // Revoked: its consumer is ended.
    const again = consumer.subscribeToPersistentSubscriptionToStream('tls-ps', 'g');
    const revoked = new Promise<unknown>((resolve) => again.on('error', resolve));
    await until(() => server.grpc?.openSubscriptions() === 1, 10_000, 'the consumer');
    expect(await revokeApiKey(server.client, worker.id, null, { directory })).toBe(true);
    expect(await revoked).toBeInstanceOf(AccessDeniedError);
    void ended;
  });
});
