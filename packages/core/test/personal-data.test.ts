/**
 * Erasure without rewriting history: personal fields are stored encrypted with a key per
 * subject; forgetting the subject deletes the key, so they read as null everywhere while the
 * events (and their seals) stay as they were.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  auditTrail,
  defineEvents,
  type EventStore,
  InvalidInputError,
  integrity,
  type JsonValue,
  openEventStore,
  PayloadTooLargeError,
  type PersonalDataPolicy,
  personalData,
  type RecordedEvent,
  snapshots,
  subscriptions,
  toArray,
} from '../src/index.js';
import {
  backends,
  databaseUrl,
  openTestStore,
  postgresBackend,
  rawConnection,
  type TestBackend,
  testSchema,
  waitUntil,
} from './support/backends.js';

const policy: PersonalDataPolicy = {
  CustomerRegistered: { subject: 'customerId', fields: ['name', 'email', 'address.street'] },
  EmailChanged: { subject: (e) => String((e.data as { customer: string }).customer), fields: ['email'] },
};

const registered = (customerId: string, name: string) => ({
  type: 'CustomerRegistered',
  data: {
    customerId,
    name,
    email: `${name.toLowerCase()}@example.org`,
    address: { street: '1 Main St', city: 'Oslo' },
    tier: 'gold',
  },
  metadata: { actor: 'signup' },
});

async function openWithPolicy(
  backend: TestBackend,
  extra: Parameters<typeof openEventStore>[0] extends infer O ? Partial<O> : never = {},
) {
  const opened = await openTestStore(backend);
  await opened.store.close();
  const store = await openEventStore({
    client: backend.client(),
    closeClient: false,
    schema: opened.schema,
    personalData: policy,
    ...extra,
  });
  return {
    ...opened,
    store,
    cleanup: async () => {
      await store.close();
      await opened.cleanup();
    },
  };
}

describe.each(backends)('personal data on $name', (backend) => {
  it('stores personal fields encrypted and reads them back on every path', async () => {
    const t = await openWithPolicy(backend);
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      await t.store.append('customer-1', [{ type: 'EmailChanged', data: { customer: 'c1', email: 'ada@new.org' } }]);
      const [raw] = await t.client.query<{ data: string; metadata: string }>(
        `select data::text as data, metadata::text as metadata from "${t.schema}".events where position = 1`,
      );
      expect(raw?.data).not.toMatch(/Ada|example\.org|Main St/);
      expect(raw?.data).toContain('Oslo');
      expect(raw?.data).toContain('$encrypted');
      expect(JSON.parse(raw?.metadata ?? '{}')).toMatchObject({
        actor: 'signup',
        $personal: { subject: 'c1', fields: ['name', 'email', 'address.street'] },
      });

      const expectPlain = (event: RecordedEvent | null | undefined) =>
        expect(event?.data).toMatchObject({
          name: 'Ada',
          email: 'ada@example.org',
          address: { street: '1 Main St', city: 'Oslo' },
        });
      const [first] = await toArray(t.store.readStream('customer-1'));
      expectPlain(first);
      expect(first?.redacted).toBeUndefined();
      expectPlain((await toArray(t.store.readAll()))[0]);
      expectPlain(await t.store.getEvent(first?.id as string));
      expectPlain((await toArray(auditTrail(t.store).byMetadata('actor', 'signup')))[0]);
      expectPlain((await toArray((await snapshots(t.store).loadStream('customer-1')).events))[0]);
      const seen: RecordedEvent[] = [];
      const subscription = subscriptions(t.store).subscribe({ handler: (events) => void seen.push(...events) });
      await subscription.waitFor(2);
      await subscription.stop();
      expectPlain(seen[0]);
      expect(seen[1]?.data).toMatchObject({ email: 'ada@new.org' });

      // A process without the policy reads them too: the events say what they hold.
      const plain = await openEventStore({ client: t.client, closeClient: false, schema: t.schema });
      expectPlain((await toArray(plain.readStream('customer-1')))[0]);
      await plain.close();
    } finally {
      await t.cleanup();
    }
  });

  it('forgetting a subject redacts its fields everywhere, keeps the rest, records it, and verify still passes', async () => {
    const t = await openWithPolicy(backend);
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      await t.store.append('customer-2', [registered('c2', 'Bob')]);
      await t.store.append('customer-1', [{ type: 'EmailChanged', data: { customer: 'c1', email: 'ada@new.org' } }]);
      await snapshots(t.store).save({
        streamId: 'customer-1',
        decider: 'customer',
        modelVersion: 1,
        streamVersion: 2,
        state: { name: 'Ada' },
      });
      await snapshots(t.store).save({
        streamId: 'customer-2',
        decider: 'customer',
        modelVersion: 1,
        streamVersion: 1,
        state: { name: 'Bob' },
      });
      await integrity(t.store).seal();
      const before = await t.client.query<{ data: string }>(
        `select data::text as data from "${t.schema}".events order by position`,
      );

      const held = await toArray(auditTrail(t.store).bySubject('c1'));
      expect(held.map((e) => [e.position, (e.data as { email: string }).email])).toEqual([
        [1, 'ada@example.org'],
        [3, 'ada@new.org'],
      ]);

      const result = await personalData(t.store).forget('c1', { actor: 'dpo', reason: 'erasure request #7' });
      expect((await toArray(auditTrail(t.store).bySubject('c1'))).map((e) => e.redacted)).toEqual([
        ['name', 'email', 'address.street'],
        ['email'],
      ]);
      expect(result).toMatchObject({ forgotten: true, events: 2, snapshotsDropped: 1, position: 4 });

      const events = await toArray(t.store.readStream('customer-1'));
      expect(events[0]?.data).toEqual({
        customerId: 'c1',
        name: null,
        email: null,
        address: { street: null, city: 'Oslo' },
        tier: 'gold',
      });
      expect(events[0]?.redacted).toEqual(['name', 'email', 'address.street']);
      expect(events[0]?.metadata.actor).toBe('signup');
      expect(events[1]?.data).toEqual({ customer: 'c1', email: null });
      expect((await toArray(t.store.readAll({ eventTypes: ['CustomerRegistered'] })))[1]?.data).toMatchObject({
        name: 'Bob',
      });
      expect(await snapshots(t.store).load('customer-1', 'customer')).toBeNull();
      expect(await snapshots(t.store).load('customer-2', 'customer')).not.toBeNull();

      const [record] = await toArray(t.store.readStream('$subject-c1'));
      expect(record).toMatchObject({
        type: 'SubjectForgotten',
        data: { subjectId: 'c1' },
        metadata: { actor: 'dpo', reason: 'erasure request #7' },
      });

      const after = await t.client.query<{ data: string }>(
        `select data::text as data from "${t.schema}".events where position <= 3 order by position`,
      );
      expect(after).toEqual(before);
      await integrity(t.store).seal();
      expect(await integrity(t.store).verify()).toMatchObject({ ok: true, checked: 4 });
      // A key deleted without an erasure record is not a lawful erasure: verify says so.
      await t.client.query(`delete from "${t.schema}".subject_keys where subject_id = 'c2'`);
      expect(await integrity(t.store).verify()).toMatchObject({ ok: false, broken: [], lostKeys: ['c2'] });

      expect(await personalData(t.store).forget('c1')).toMatchObject({ forgotten: false, position: null });
      expect(await t.store.headPosition()).toBe(4);

      // A returning subject starts over with a new key; the old fields stay unreadable.
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      const again = await toArray(t.store.readStream('customer-1'));
      expect(again[0]?.data).toMatchObject({ name: null });
      expect(again[2]?.data).toMatchObject({ name: 'Ada' });
    } finally {
      await t.cleanup();
    }
  });

  it('event schemas accept the nulls of a forgotten subject, and only those', async () => {
    const t = await openWithPolicy(backend);
    try {
      const registry = defineEvents({
        CustomerRegistered: {
          schema: z.object({
            customerId: z.string(),
            name: z.string(),
            email: z.string(),
            address: z.object({ street: z.string(), city: z.string() }),
            tier: z.string(),
          }),
        },
      });
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      const [event] = await toArray(t.store.readStream('customer-1'));
      expect(await registry.decode(event as RecordedEvent)).toMatchObject({ data: { name: 'Ada' } });
      await personalData(t.store).forget('c1');
      const [forgotten] = await toArray(t.store.readStream('customer-1'));
      expect(await registry.decode(forgotten as RecordedEvent)).toMatchObject({
        data: { name: null, email: null, address: { street: null, city: 'Oslo' } },
      });
      // A field that is not redacted must still be valid.
      const broken = { ...(forgotten as RecordedEvent), data: { ...(forgotten?.data as object), tier: 7 } };
      await expect(registry.decode(broken)).rejects.toMatchObject({ code: 'INVALID_EVENT' });
      // An upcaster that renames a redacted field: its null still passes under the new name.
      const renamed = defineEvents({
        CustomerRegistered: {
          version: 2,
          upcasters: { 1: (d) => ({ ...(d as object), fullName: (d as { name: JsonValue }).name }) },
          schema: z.object({ customerId: z.string(), fullName: z.string(), email: z.string() }),
        },
      });
      expect(await renamed.decode(forgotten as RecordedEvent)).toMatchObject({ data: { fullName: null } });
    } finally {
      await t.cleanup();
    }
  });

  it('no snapshot of a stream is written once one of its subjects is forgotten', async () => {
    const t = await openWithPolicy(backend);
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada'), registered('c2', 'Bob')]);
      await t.store.append('plain-1', [{ type: 'Note', data: {} }]);
      const snapshot = (streamId: string) => ({
        streamId,
        decider: 'd',
        modelVersion: 1,
        streamVersion: 1,
        state: { name: 'Ada' },
      });
      await snapshots(t.store).save(snapshot('customer-1'));
      expect(await snapshots(t.store).load('customer-1', 'd')).not.toBeNull();
      expect(await personalData(t.store).forget('c2')).toMatchObject({ forgotten: true, snapshotsDropped: 1 });
      // A state folded before the erasure, saved after it, is refused.
      await snapshots(t.store).save(snapshot('customer-1'));
      expect(await snapshots(t.store).load('customer-1', 'd')).toBeNull();
      await snapshots(t.store).save(snapshot('plain-1'));
      expect(await snapshots(t.store).load('plain-1', 'd')).not.toBeNull();
      // Forgetting a subject without a key touches no snapshot.
      expect(await personalData(t.store).forget('c2')).toMatchObject({ forgotten: false, snapshotsDropped: 0 });
      expect(await snapshots(t.store).load('plain-1', 'd')).not.toBeNull();
    } finally {
      await t.cleanup();
    }
  });

  it('forgetting blanks the errors of parked events that may quote the personal data', async () => {
    const t = await openWithPolicy(backend);
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      await t.store.append('other-1', [{ type: 'Note', data: {} }]);
      const subscription = subscriptions(t.store).subscribe({
        name: 'mailer',
        retry: { attempts: 1, backoffMs: 1 },
        handler: (events) => {
          const [event] = events as [RecordedEvent];
          const name = (event.data as { name?: string }).name;
          throw new Error(`cannot mail ${name ?? 'nobody'}`);
        },
      });
      await subscription.waitFor(2);
      await subscription.stop();
      expect((await subscriptions(t.store).parked('mailer')).map((p) => p.error)).toEqual([
        'cannot mail Ada',
        'cannot mail nobody',
      ]);
      await personalData(t.store).forget('c1');
      expect((await subscriptions(t.store).parked('mailer')).map((p) => p.error)).toEqual([
        '(erased with its data subject)',
        'cannot mail nobody',
      ]);
    } finally {
      await t.cleanup();
    }
  });

  it('a retried append with the same event id is still a duplicate', async () => {
    const t = await openWithPolicy(backend);
    try {
      const event = { ...registered('c1', 'Ada'), id: '0190a000-0000-7000-8000-000000000001' };
      const first = await t.store.append('customer-1', [event]);
      const retry = await t.store.append('customer-1', [event]);
      expect(retry).toMatchObject({ duplicate: true, positions: first.positions });
      await expect(
        t.store.append('customer-1', [{ ...event, data: { ...event.data, name: 'Eve' } }]),
      ).rejects.toMatchObject({ code: 'EVENT_ID_REUSED' });
    } finally {
      await t.cleanup();
    }
  });

  it('inline projections see the plain values, and the erasure', async () => {
    const names: unknown[] = [];
    const t = await openWithPolicy(backend, {
      inlineProjections: [
        {
          name: 'names',
          handlers: {
            CustomerRegistered: async (e) => {
              names.push((e.data as { name: string }).name);
            },
            SubjectForgotten: async (e) => {
              names.push(`forgot ${(e.data as { subjectId: string }).subjectId}`);
            },
          },
        },
      ],
    });
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      await personalData(t.store).forget('c1');
      expect(names).toEqual(['Ada', 'forgot c1']);
    } finally {
      await t.cleanup();
    }
  });

  it('a tampered ciphertext reads as redacted, not as garbage', async () => {
    const t = await openWithPolicy(backend);
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      await t.store.append('customer-2', [registered('c2', 'Bob')]);
      // Bob's name ciphertext copied into Ada's event: it is bound to its subject, event and field.
      await t.client.transaction(async (tx) => {
        await tx.exec(`set local session_replication_role = replica;
          update "${t.schema}".events a set data = jsonb_set(a.data, '{name}', b.data -> 'name')
            from "${t.schema}".events b where a.position = 1 and b.position = 2`);
      });
      const [event] = await toArray(t.store.readStream('customer-1'));
      expect(event?.data).toMatchObject({ name: null, email: 'ada@example.org' });
      expect(event?.redacted).toEqual(['name']);
    } finally {
      await t.cleanup();
    }
  });

  it('refuses bad policies and bad personal events, storing nothing', async () => {
    const t = await openWithPolicy(backend);
    try {
      for (const bad of [
        'nope',
        { X: { subject: 'id', fields: [] } },
        { X: { subject: 'id', fields: ['a..b'] } },
        { X: { subject: 'name', fields: ['name'] } },
        { X: { subject: 42, fields: ['name'] } },
      ]) {
        await expect(
          openEventStore({ client: t.client, closeClient: false, schema: t.schema, personalData: bad as never }),
        ).rejects.toBeInstanceOf(InvalidInputError);
      }
      for (const data of [
        { name: 'Ada' },
        { customerId: '', name: 'Ada' },
        { customerId: 7, name: 'Ada' },
        { customerId: 'x'.repeat(201), name: 'Ada' },
      ]) {
        await expect(
          t.store.append('customer-1', [{ type: 'CustomerRegistered', data: data as JsonValue }]),
        ).rejects.toBeInstanceOf(InvalidInputError);
      }
      await expect(
        t.store.append('customer-1', [
          { type: 'Note', data: {}, metadata: { $personal: { subject: 'c1', fields: [] } } },
        ]),
      ).rejects.toBeInstanceOf(InvalidInputError);
      // Under the limit as plain text, over it once encrypted: refused before anything is stored.
      const small = await openEventStore({
        client: t.client,
        closeClient: false,
        schema: t.schema,
        personalData: policy,
        maxEventBytes: 400,
      });
      await expect(
        small.append('customer-1', [{ type: 'CustomerRegistered', data: { customerId: 'c9', name: 'x'.repeat(250) } }]),
      ).rejects.toBeInstanceOf(PayloadTooLargeError);
      await small.close();
      expect(await t.store.headPosition()).toBe(0);
      await expect(personalData(t.store).forget('')).rejects.toBeInstanceOf(InvalidInputError);
      await expect(personalData(t.store).forget('a\u0000b')).rejects.toBeInstanceOf(InvalidInputError);
      await expect(personalData(t.store).forget("c1'; drop table events; --")).resolves.toMatchObject({
        forgotten: false,
      });
      expect(await t.store.headPosition()).toBe(0);
    } finally {
      await t.cleanup();
    }
  });
});

describe.skipIf(!databaseUrl)('personal data under concurrency on postgres', () => {
  it('an erasure waits for a snapshot write holding the key, then drops that snapshot', async () => {
    const t = await openWithPolicy(postgresBackend);
    const raw = await rawConnection();
    try {
      await t.store.append('customer-1', [registered('c1', 'Ada')]);
      // A snapshot write in flight: it holds the key (FOR KEY SHARE) until it commits.
      await raw.query('begin');
      await raw.query(`select 1 from "${t.schema}".subject_keys where subject_id = 'c1' for key share`);
      let settled = false;
      const forgetting = personalData(t.store)
        .forget('c1')
        .finally(() => {
          settled = true;
        });
      // The erasure waits on the snapshot write's lock.
      const [{ pid }] = (await raw.query('select pg_backend_pid() as pid')).rows;
      await waitUntil(
        async () =>
          (await t.client.query('select 1 from pg_stat_activity where $1 = any(pg_blocking_pids(pid))', [pid])).length >
          0,
        { message: 'the erasure waits for the snapshot write' },
      );
      expect(settled).toBe(false);
      await raw.query(
        `insert into "${t.schema}".snapshots (stream_id, decider, model_version, stream_version, state)
         values ('customer-1', 'd', 1, 1, '{"name": "Ada"}')`,
      );
      await raw.query('commit');
      expect(await forgetting).toMatchObject({ forgotten: true, snapshotsDropped: 1 });
      expect(await snapshots(t.store).load('customer-1', 'd')).toBeNull();
    } finally {
      await raw.end();
      await t.cleanup();
    }
  });

  it('parallel first appends of one subject share one key; a racing forget leaves nothing readable under its key', async () => {
    const schema = testSchema(postgresBackend);
    const open = () =>
      openEventStore({ client: postgresBackend.client(), closeClient: false, schema, personalData: policy });
    const stores: EventStore[] = [await open(), await open(), await open()];
    try {
      await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          (stores[i % 3] as EventStore).append(`customer-${i}`, [registered('shared', `N${i}`)]),
        ),
      );
      const all = await toArray((stores[0] as EventStore).readAll());
      expect(all).toHaveLength(24);
      expect(all.every((e) => (e.data as { name: string }).name.startsWith('N'))).toBe(true);
      const [{ count } = { count: '0' }] = await postgresBackend
        .client()
        .query<{ count: string }>(`select count(*)::text as count from "${schema}".subject_keys`);
      expect(count).toBe('1');

      const appending = Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          (stores[i % 3] as EventStore).append(`customer-x${i}`, [registered('shared', `M${i}`)]),
        ),
      );
      const forgot = await personalData(stores[1] as EventStore).forget('shared');
      await appending;
      expect(forgot.forgotten).toBe(true);
      // Events committed before the forget are redacted; any after it got a new key.
      const events = await toArray((stores[2] as EventStore).readAll({ eventTypes: ['CustomerRegistered'] }));
      // Appends hold the key until they commit, so the erasure lands after every event
      // encrypted under it: everything before it is redacted, everything after readable.
      const before = events.filter((e) => e.position < (forgot.position as number));
      const after = events.filter((e) => e.position > (forgot.position as number));
      expect(before.length).toBeGreaterThanOrEqual(24);
      expect(before.every((e) => (e.data as { name: string | null }).name === null)).toBe(true);
      expect(after.every((e) => typeof (e.data as { name: string | null }).name === 'string')).toBe(true);
    } finally {
      for (const store of stores) await store.close();
      await postgresBackend.client().exec(`drop schema if exists "${schema}" cascade`);
    }
  });
});
