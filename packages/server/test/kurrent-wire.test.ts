/**
 * The KurrentDB protocol against requests no official client sends: malformed, empty,
 * oversized or of methods not served. Each gets a clean gRPC status and the server goes on.
 * Sent with grpc-js and the protocol's own service definitions, over a real socket.
 */
import { randomUUID } from 'node:crypto';
import { credentials, type Client as GrpcClient, Metadata, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { protocol } from '../src/grpc/protocol.js';
import { collect, type KurrentServer, startKurrentServer, until } from './kurrent-support.js';
import { backends } from './support.js';

// biome-ignore lint/suspicious/noExplicitAny: the loaded services are untyped.
type Untyped = GrpcClient & Record<string, any>;

interface Outcome {
  code: number;
  details: string;
  exception?: string;
  // biome-ignore lint/suspicious/noExplicitAny: answers of every shape.
  answer?: any;
}

const appendOf = (client: Untyped, messages: unknown[]) =>
  new Promise<Outcome>((resolve) => {
    const call = client.Append(
      new Metadata(),
      (error: (Error & { code: number; details: string; metadata: Metadata }) | null, answer: unknown) => {
        if (error)
          resolve({
            code: error.code,
            details: error.details,
            exception: String(error.metadata.get('exception')[0] ?? ''),
          });
        else resolve({ code: status.OK, details: '', answer });
      },
    );
    for (const message of messages) call.write(message);
    call.end();
  });

const readOf = (client: Untyped, request: unknown) =>
  new Promise<Outcome & { messages: unknown[] }>((resolve) => {
    const messages: unknown[] = [];
    const call = client.Read(request);
    call.on('data', (message: unknown) => messages.push(message));
    call.on('error', (error: Error & { code: number; details: string }) =>
      resolve({ code: error.code, details: error.details, messages }),
    );
    call.on('end', () => resolve({ code: status.OK, details: '', messages }));
  });

const name = (stream: string) => ({ stream_name: Buffer.from(stream) });
const proposed = (data: Buffer, id: string = randomUUID()) => ({
  proposed_message: { id: { string: id }, metadata: { type: 'T', 'content-type': 'application/octet-stream' }, data },
});

describe.each(backends)('KurrentDB protocol, malformed and unserved requests, on $name', (backend) => {
  let server: KurrentServer;
  let streams: Untyped;
  let address: string;
  beforeAll(async () => {
    server = await startKurrentServer(backend, { grpc: { port: 0, maxAppendBytes: 64 * 1024 } });
    address = `127.0.0.1:${server.grpc?.port}`;
    streams = new (protocol().streams)(address, credentials.createInsecure()) as Untyped;
  });
  afterAll(async () => {
    streams?.close();
    await server?.cleanup();
  });

  it('answers INVALID_ARGUMENT to appends without options, with an empty or overlong name, a bad id', async () => {
    const noOptions = await appendOf(streams, [proposed(Buffer.from('x'))]);
    expect(noOptions.code).toBe(status.INVALID_ARGUMENT);
    const empty = await appendOf(streams, [
      { options: { stream_identifier: name(''), any: {} } },
      proposed(Buffer.from('x')),
    ]);
    expect(empty.code).toBe(status.INVALID_ARGUMENT);
    const long = await appendOf(streams, [{ options: { stream_identifier: name('s'.repeat(5000)), any: {} } }]);
    expect(long.code).toBe(status.INVALID_ARGUMENT);
    const badId = await appendOf(streams, [
      { options: { stream_identifier: name('wire-1'), any: {} } },
      proposed(Buffer.from('x'), 'not-a-uuid'),
    ]);
    expect(badId.code).toBe(status.INVALID_ARGUMENT);
    const noType = await appendOf(streams, [
      { options: { stream_identifier: name('wire-1'), any: {} } },
      { proposed_message: { id: { string: randomUUID() }, metadata: {}, data: Buffer.from('x') } },
    ]);
    expect(noType.code).toBe(status.INVALID_ARGUMENT);
    const badRevision = await appendOf(streams, [
      { options: { stream_identifier: name('wire-1'), revision: '18446744073709551615' } },
      proposed(Buffer.from('x')),
    ]);
    expect(badRevision.code).toBe(status.INVALID_ARGUMENT);
  });

  it('refuses an append over its size, and a message over the transport limit, then goes on', async () => {
    const big = await appendOf(streams, [
      { options: { stream_identifier: name('wire-2'), any: {} } },
      ...Array.from({ length: 5 }, () => proposed(Buffer.alloc(20_000, 1))),
    ]);
    expect(big.code).toBe(status.INVALID_ARGUMENT);
    expect(big.exception).toBe('maximum-append-size-exceeded');
    const huge = await appendOf(streams, [
      { options: { stream_identifier: name('wire-2'), any: {} } },
      proposed(Buffer.alloc(1024 * 1024, 2)),
    ]);
    expect(huge.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(await collect(server.kurrent.readStream('wire-2')).catch((e: Error) => e.constructor.name)).toBe(
      'StreamNotFoundError',
    );
    const fine = await appendOf(streams, [
      { options: { stream_identifier: name('wire-2'), no_stream: {} } },
      proposed(Buffer.from([1, 2, 3])),
    ]);
    expect(fine.code).toBe(status.OK);
    expect(fine.answer.success.current_revision).toBe('0');
  });

  it('answers INVALID_ARGUMENT to reads without options, of an empty name, with a bad regex', async () => {
    expect((await readOf(streams, {})).code).toBe(status.INVALID_ARGUMENT);
    const empty = await readOf(streams, {
      options: { stream: { stream_identifier: name(''), start: {} }, count: '10' },
    });
    expect(empty.code).toBe(status.INVALID_ARGUMENT);
    const regex = await readOf(streams, {
      options: { all: { start: {} }, subscription: {}, filter: { event_type: { regex: '(' }, count: {} } },
    });
    expect(regex.code).toBe(status.INVALID_ARGUMENT);
    expect(server.grpc?.openSubscriptions()).toBe(0);
  });

  it('answers garbage bytes with a status, and methods it does not serve (projections) with UNIMPLEMENTED', async () => {
    const raw = makeGenericClientConstructor(
      {
        Read: {
          path: '/event_store.client.streams.Streams/Read',
          requestStream: false,
          responseStream: true,
          requestSerialize: (value: Buffer) => value,
          requestDeserialize: (value: Buffer) => value,
          responseSerialize: (value: Buffer) => value,
          responseDeserialize: (value: Buffer) => value,
        },
        Projections: {
          path: '/event_store.client.projections.Projections/Statistics',
          requestStream: false,
          responseStream: true,
          requestSerialize: (value: Buffer) => value,
          requestDeserialize: (value: Buffer) => value,
          responseSerialize: (value: Buffer) => value,
          responseDeserialize: (value: Buffer) => value,
        },
      },
      'Raw',
    );
    const client = new raw(address, credentials.createInsecure()) as Untyped;
    try {
      const garbage = await readOf(client, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
      expect([status.INTERNAL, status.INVALID_ARGUMENT]).toContain(garbage.code);
      const projections = await new Promise<number>((resolve) => {
        const call = client.Projections(Buffer.alloc(0));
        call.on('error', (error: { code: number }) => resolve(error.code));
        call.on('end', () => resolve(status.OK));
      });
      expect(projections).toBe(status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
    expect(await collect(server.kurrent.readStream('wire-2'))).toHaveLength(1);
  });

  it('answers malformed persistent-subscription requests with INVALID_ARGUMENT, defining nothing', async () => {
    const persistent = new (protocol().persistentSubscriptions)(address, credentials.createInsecure()) as Untyped;
    const unaryOf = (method: string, request: unknown) =>
      new Promise<number>((resolve) => {
        persistent[method](request, (error: { code: number } | null) => resolve(error ? error.code : status.OK));
      });
    const settings = { live_buffer_size: 500, read_batch_size: 20, history_buffer_size: 500, max_checkpoint_count: 10 };
    const stream = { stream_identifier: name('wire-ps') };
    try {
      expect(await unaryOf('Create', {})).toBe(status.INVALID_ARGUMENT);
      expect(await unaryOf('Create', { options: { ...stream, group_name: 'g' } })).toBe(status.INVALID_ARGUMENT);
      for (const group of ['', 'x'.repeat(300), 'bad\u0001name', 'bad\u0085name']) {
        expect(await unaryOf('Create', { options: { ...stream, group_name: group, settings } })).toBe(
          status.INVALID_ARGUMENT,
        );
      }
      expect(
        await unaryOf('Create', {
          options: { stream_identifier: name(''), group_name: 'g', settings },
        }),
      ).toBe(status.INVALID_ARGUMENT);
      expect(
        await unaryOf('Create', {
          options: { ...stream, group_name: 'g', settings: { ...settings, live_buffer_size: 0 } },
        }),
      ).toBe(status.INVALID_ARGUMENT);
      expect(
        await unaryOf('Create', {
          options: { ...stream, group_name: 'g', settings: { ...settings, max_retry_count: -1 } },
        }),
      ).toBe(status.INVALID_ARGUMENT);
      expect(
        await unaryOf('Create', {
          options: {
            ...stream,
            group_name: 'g',
            settings: { ...settings, consumer_strategy: "'; drop table events; --" },
          },
        }),
      ).toBe(status.INVALID_ARGUMENT);
      expect(await unaryOf('Create', { options: { ...stream, group_name: 'g', settings } })).toBe(status.OK);
      expect(await unaryOf('ReplayParked', { options: { ...stream, group_name: 'g', stop_at: '-5' } })).toBe(
        status.INVALID_ARGUMENT,
      );
      expect(await unaryOf('GetInfo', { options: { ...stream, group_name: 'nope' } })).toBe(status.NOT_FOUND);

      const readOfPersistent = (first: unknown, then: unknown[] = []) =>
        new Promise<{ code: number; messages: unknown[] }>((resolve) => {
          const messages: unknown[] = [];
          const call = persistent.Read();
          call.on('data', (message: unknown) => {
            messages.push(message);
            for (const next of then) call.write(next);
            if (then.length > 0) setTimeout(() => call.cancel(), 100);
          });
          call.on('error', (error: { code: number }) => resolve({ code: error.code, messages }));
          call.on('end', () => resolve({ code: status.OK, messages }));
          call.write(first);
        });
      // An ack before any options; options naming no group.
      expect((await readOfPersistent({ ack: { ids: [{ string: randomUUID() }] } })).code).toBe(status.INVALID_ARGUMENT);
      expect((await readOfPersistent({ options: { ...stream, group_name: '' } })).code).toBe(status.INVALID_ARGUMENT);
      // A real group: acks and nacks of ids it never sent, or that are not UUIDs, are ignored.
      const held = await readOfPersistent({ options: { ...stream, group_name: 'g', buffer_size: 2 ** 31 - 1 } }, [
        { ack: { ids: [{ string: randomUUID() }, { string: 'not-a-uuid' }] } },
        {
          nack: { ids: [{ structured: { most_significant_bits: 'x', least_significant_bits: '1' } }], action: 'Park' },
        },
      ]);
      expect(held.code).toBe(status.CANCELLED);
      expect(held.messages).toHaveLength(1);
      await until(() => server.grpc?.openSubscriptions() === 0, 5000, 'the consumer to be gone');
      const listed = await new Promise<{ subscriptions?: { group_name: string }[] }>((resolve, reject) => {
        persistent.List({ options: { list_all_subscriptions: {} } }, (error: Error | null, answer: never) =>
          error ? reject(error) : resolve(answer),
        );
      });
      expect((listed.subscriptions ?? []).map((g) => g.group_name)).toEqual(['g']);
    } finally {
      persistent.close();
    }
  });

  it('answers BatchAppend batches by correlation id: split batches, conflicts and oversized ones', async () => {
    const call = streams.BatchAppend();
    // biome-ignore lint/suspicious/noExplicitAny: answers of every shape.
    const answers = new Map<string, any>();
    call.on('data', (answer: { correlation_id: { string: string } }) =>
      answers.set(answer.correlation_id.string, answer),
    );
    const ended = new Promise<void>((resolve) => call.on('end', resolve));
    const id = () => ({ string: randomUUID() });
    const message = (n: number) => ({
      id: id(),
      metadata: { type: 'Batched', 'content-type': 'application/json' },
      data: Buffer.from(JSON.stringify({ n })),
    });
    const split = id();
    call.write({
      correlation_id: split,
      options: { stream_identifier: name('batch-1'), no_stream: {} },
      proposed_messages: [message(1)],
      is_final: false,
    });
    call.write({ correlation_id: split, proposed_messages: [message(2)], is_final: true });
    await until(() => answers.has(split.string), 10_000, 'the split batch');
    const conflict = id();
    call.write({
      correlation_id: conflict,
      options: { stream_identifier: name('batch-1'), stream_position: '0' },
      proposed_messages: [message(3)],
      is_final: true,
    });
    const big = id();
    call.write({
      correlation_id: big,
      options: { stream_identifier: name('batch-1'), any: {} },
      proposed_messages: Array.from({ length: 5 }, () => ({ ...message(4), data: Buffer.alloc(20_000, 0x20) })),
      is_final: true,
    });
    call.end();
    await ended;
    expect(answers.get(split.string).success.current_revision).toBe('1');
    const refused = answers.get(conflict.string).error;
    expect(refused.details.type_url).toBe('type.googleapis.com/event_store.client.WrongExpectedVersion');
    // current revision 1 (field 1), expected position 0 (field 3)
    expect([...refused.details.value]).toEqual([0x08, 0x01, 0x18, 0x00]);
    expect(answers.get(big.string).error.details.type_url).toBe(
      'type.googleapis.com/event_store.client.MaximumAppendSizeExceeded',
    );
    const stored = await collect(server.kurrent.readStream('batch-1'));
    expect(stored.map((e) => (e.event?.data as { n: number } | undefined)?.n)).toEqual([1, 2]);
  });

  it('lists exactly the methods it serves', async () => {
    const features = new (protocol().serverFeatures)(address, credentials.createInsecure()) as Untyped;
    try {
      const answer = await new Promise<{ methods: { method_name: string; service_name: string }[] }>(
        (resolve, reject) =>
          features.GetSupportedMethods({}, (error: Error | null, value: never) =>
            error ? reject(error) : resolve(value),
          ),
      );
      const persistent = 'event_store.client.persistent_subscriptions.PersistentSubscriptions';
      expect(answer.methods.map((m) => `${m.service_name}/${m.method_name}`).sort()).toEqual([
        ...['create', 'delete', 'getinfo', 'list', 'read', 'replayparked', 'restartsubsystem', 'update'].map(
          (method) => `${persistent}/${method}`,
        ),
        'event_store.client.server_features.ServerFeatures/getsupportedmethods',
        'event_store.client.streams.Streams/append',
        'event_store.client.streams.Streams/batchappend',
        'event_store.client.streams.Streams/delete',
        'event_store.client.streams.Streams/read',
        'event_store.client.streams.Streams/tombstone',
      ]);
    } finally {
      features.close();
    }
  });
});
