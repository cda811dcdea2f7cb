/**
 * The append coordinator (docs/ordering.md, "Appends from many processes"): one process runs
 * the plain appends of the others; nothing about the outcome of an append may change.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameReader, frame, ProtocolError } from '../src/coordinator/wire.js';
import {
  type AppendResult,
  appendCoordinatorStatus,
  createPostgresClient,
  type EventStore,
  type ExpectedVersion,
  InvalidInputError,
  lifecycle,
  openEventStore,
} from '../src/index.js';
import { backends, capabilities, databaseUrl, freshSchema, openTestStore, waitUntil } from './support/backends.js';

describe('coordinator frames', () => {
  it('reads frames split anywhere and several in one chunk, and refuses an oversize one', () => {
    const frames = Buffer.concat([frame({ t: 'welcome' }), frame({ t: 'result', id: 7, outcomes: [null] })]);
    for (const size of [1, 3, 5, frames.length]) {
      const reader = new FrameReader(1024);
      const got: unknown[] = [];
      for (let at = 0; at < frames.length; at += size) got.push(...reader.push(frames.subarray(at, at + size)));
      expect(got).toEqual([{ t: 'welcome' }, { t: 'result', id: 7, outcomes: [null] }]);
    }
    expect(() => new FrameReader(10).push(frame({ t: 'hello', token: 'x'.repeat(64) }))).toThrow(ProtocolError);
  });
});

const fast = { leaseRetryMs: 50, forwardTimeoutMs: 2000 };

describe.each(backends)('append coordinator options on $name', (backend) => {
  it('refuses malformed options before touching the database', async () => {
    const schema = freshSchema();
    for (const bad of [
      'yes',
      [],
      { port: -1 },
      { port: 70_000 },
      { port: 'x' },
      { host: '' },
      { advertise: 'no-port' },
      { advertise: "x'; drop table events; --:1" },
      { leaseRetryMs: 0 },
      { forwardTimeoutMs: Number.NaN },
    ]) {
      await expect(
        openEventStore({ client: backend.client(), closeClient: false, schema, appendCoordinator: bad as never }),
      ).rejects.toBeInstanceOf(InvalidInputError);
    }
    const [row] = await backend
      .client()
      .query<{ n: number }>('select count(*)::int as n from pg_namespace where nspname = $1', [schema]);
    expect(row?.n).toBe(0);
  });

  it.runIf(!capabilities(backend).concurrentConnections)('is ignored where there is one connection', async () => {
    const t = await openTestStore(backend, { appendCoordinator: fast } as never);
    try {
      expect(appendCoordinatorStatus(t.store)).toBeUndefined();
      await t.store.append('s-1', [{ type: 'E', data: {} }]);
    } finally {
      await t.cleanup();
    }
  });
});

describe.skipIf(!databaseUrl)('append coordinator on PostgreSQL', () => {
  const open: EventStore[] = [];
  const schemas: string[] = [];
  const openStore = async (schema: string, options: object = fast) => {
    const store = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 6 }),
      schema,
      appendCoordinator: options,
    });
    open.push(store);
    return store;
  };
  /** Two processes' stores on one log: the first holds the role, the second is linked to it. */
  const pair = async () => {
    const schema = freshSchema();
    schemas.push(schema);
    const holder = await openStore(schema);
    await waitUntil(() => appendCoordinatorStatus(holder)?.role === 'holder');
    const linked = await openStore(schema);
    await waitUntil(() => appendCoordinatorStatus(linked)?.role === 'linked');
    return { schema, holder, linked };
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((store) => store.close()));
    const admin = createPostgresClient({ connectionString: databaseUrl as string });
    for (const schema of schemas.splice(0)) await admin.exec(`drop schema if exists "${schema}" cascade`);
    await admin.close();
  });

  it('forwards appends to the holder, with results and typed errors as if appended directly', async () => {
    const { holder, linked } = await pair();
    const first = await linked.append('acc-1', [{ type: 'Opened', data: { n: 1 } }], { expectedVersion: 'no-stream' });
    expect(first).toMatchObject({ streamVersion: 1, positions: [1], duplicate: false });
    const [own] = await holder.append('acc-2', [{ type: 'Opened', data: { n: 2 } }]).then((r) => [r]);
    expect(own?.positions).toEqual([2]);
    await expect(
      linked.append('acc-1', [{ type: 'Deposited', data: {} }], { expectedVersion: 5 }),
    ).rejects.toMatchObject({ code: 'CONCURRENCY_CONFLICT', actual: 1, expected: 5 });
    const id = randomUUID();
    const once = await linked.append('acc-1', [{ id, type: 'Deposited', data: { a: 1 } }], { expectedVersion: 1 });
    const again = await linked.append('acc-1', [{ id, type: 'Deposited', data: { a: 1 } }], { expectedVersion: 1 });
    expect(again).toMatchObject({ duplicate: true, positions: once.positions, streamVersion: 2 });
    await expect(linked.append('acc-2', [{ id, type: 'Other', data: {} }])).rejects.toMatchObject({
      code: 'EVENT_ID_REUSED',
    });
    await lifecycle(holder).tombstone('acc-2', { reason: 'closed' });
    await expect(linked.append('acc-2', [{ type: 'E', data: {} }])).rejects.toMatchObject({
      code: 'STREAM_TOMBSTONED',
    });
    const status = appendCoordinatorStatus(linked);
    expect(status?.forwardedBatches).toBeGreaterThanOrEqual(5);
    expect(status?.directAppends).toBe(0);
    expect(appendCoordinatorStatus(holder)?.servedAppends).toBeGreaterThanOrEqual(5);
  });

  it('hands the role over when the holder closes, and appends go on throughout', async () => {
    const { holder, linked } = await pair();
    let stop = false;
    const acked: AppendResult[] = [];
    const writer = (async () => {
      for (let i = 0; !stop; i++) acked.push(await linked.append(`w-${i % 20}`, [{ type: 'E', data: { i } }]));
    })();
    await waitUntil(() => acked.length > 50);
    await holder.close();
    await waitUntil(() => appendCoordinatorStatus(linked)?.role === 'holder', { timeoutMs: 5000 });
    const after = acked.length;
    await waitUntil(() => acked.length > after + 50);
    stop = true;
    await writer;
    const events = await toArray(linked.readAll());
    expect(events.map((e) => e.position)).toEqual(events.map((_, i) => i + 1));
    expect(events.length).toBe(acked.length);
  });

  it('closes connections that do not present the token, and keeps serving', async () => {
    const { linked, holder } = await pair();
    const address = appendCoordinatorStatus(holder)?.address as string;
    const port = Number(address.split(':').at(-1));
    const tryPeer = (bytes: Buffer) =>
      new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port });
        let answered = '';
        socket.on('connect', () => socket.write(bytes));
        socket.on('data', (chunk) => {
          answered += chunk.toString('utf8');
        });
        socket.on('close', () => resolve(answered));
        socket.on('error', () => {});
      });
    const frameOf = (value: unknown) => {
      const body = Buffer.from(JSON.stringify(value));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      return Buffer.concat([head, body]);
    };
    expect(await tryPeer(frameOf({ t: 'hello', token: 'x'.repeat(64) }))).toBe('');
    expect(await tryPeer(frameOf({ t: 'append', id: 1, appends: [] }))).toBe('');
    expect(await tryPeer(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]))).toBe('');
    expect(await tryPeer(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toBe('');
    const result = await linked.append('after-1', [{ type: 'E', data: {} }]);
    expect(result.positions).toEqual([1]);
    expect(appendCoordinatorStatus(linked)?.directAppends).toBe(0);
  });

  it('the reader role may not read the token', async () => {
    const { rolesSql } = await import('../src/index.js');
    const { grants } = rolesSql({ schema: 'annals' });
    expect(grants).toContain('grant select, insert, update on table "annals".append_coordinator to "annals_app"');
    expect(grants).not.toContain('append_coordinator to "annals_reader"');
  });

  it('gives the same outcomes as direct appends for any mix of appends, conflicts, duplicates and reused ids', async () => {
    const { holder, linked } = await pair();
    const directSchema = freshSchema();
    schemas.push(directSchema);
    const direct = await openEventStore({
      client: createPostgresClient({ connectionString: databaseUrl as string, maxConnections: 6 }),
      schema: directSchema,
    });
    open.push(direct);
    const ids = Array.from({ length: 6 }, () => randomUUID());
    const op = fc.record({
      stream: fc.constantFrom('a', 'b', 'c', 'd'),
      expected: fc.oneof(
        fc.constant<ExpectedVersion>('any'),
        fc.constant<ExpectedVersion>('no-stream'),
        fc.constant<ExpectedVersion>('stream-exists'),
        fc.integer({ min: 0, max: 4 }),
      ),
      events: fc.array(
        fc.record({ id: fc.option(fc.constantFrom(...ids), { nil: undefined }), kind: fc.constantFrom('X', 'Y') }),
        { minLength: 1, maxLength: 3 },
      ),
    });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        async (chunks) => {
          round++;
          // Each chunk runs concurrently; within a chunk streams differ, so outcomes are fixed.
          for (const chunk of chunks) {
            const seen = new Set<string>();
            const ops = chunk.filter((o) => !seen.has(o.stream) && seen.add(o.stream));
            const usedIds = new Set<string>();
            const run = (store: EventStore) =>
              Promise.all(
                ops.map((o) =>
                  store
                    .append(
                      `${o.stream}-${round}`,
                      o.events.map((e, k) => {
                        // An id from the pool at most once per chunk: which of two would win is a race.
                        const id = e.id && !usedIds.has(`${e.id}`) ? e.id : undefined;
                        if (id) usedIds.add(id);
                        return { id: id ?? randomUUID(), type: e.kind, data: { k } };
                      }),
                      { expectedVersion: o.expected },
                    )
                    .then(
                      (r) => ({
                        ok: true,
                        version: r.streamVersion,
                        count: r.positions.length,
                        duplicate: r.duplicate,
                      }),
                      (error: { code?: string; actual?: number }) => ({
                        ok: false,
                        code: error.code,
                        actual: error.actual,
                      }),
                    ),
                ),
              );
            usedIds.clear();
            const viaDirect = await run(direct);
            usedIds.clear();
            const viaCoordinator = await run(linked);
            expect(viaCoordinator).toEqual(viaDirect);
          }
        },
      ),
      { numRuns: 25 },
    );
    const [a, b] = await Promise.all([toArray(direct.readAll()), toArray(holder.readAll())]);
    expect(b.length).toBe(a.length);
    expect(b.map((e) => [e.streamId, e.streamVersion, e.type])).toEqual(
      a.map((e) => [e.streamId, e.streamVersion, e.type]),
    );
    expect(b.map((e) => e.position)).toEqual(b.map((_, i) => i + 1));
    expect(appendCoordinatorStatus(linked)?.directAppends).toBe(0);
  });
});

describe.skipIf(!databaseUrl)('append coordinator across processes', () => {
  it('survives the holder killed mid-run: every acknowledged append once, none half-stored, a new holder in seconds', async () => {
    const { spawn } = await import('node:child_process');
    const admin = createPostgresClient({ connectionString: databaseUrl as string });
    const schema = freshSchema();
    const setup = await openEventStore({ client: admin, closeClient: false, schema });
    type Child = {
      process: ReturnType<typeof spawn>;
      role: string;
      acked: string[];
      failed: string[];
      closed: boolean;
      status?: { forwardedBatches: number; servedAppends: number };
    };
    const children: Child[] = [];
    const roles: { at: number; child: number; role: string }[] = [];
    try {
      for (let c = 0; c < 6; c++) {
        const child: Child = {
          process: spawn(
            process.execPath,
            [
              '--import',
              'tsx',
              new URL('./support/coordinator-child.ts', import.meta.url).pathname,
              databaseUrl as string,
              schema,
            ],
            { stdio: ['pipe', 'pipe', 'inherit'] },
          ),
          role: '',
          acked: [],
          failed: [],
          closed: false,
        };
        let buffered = '';
        child.process.stdout?.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          for (const line of lines) {
            const m = JSON.parse(line) as {
              role?: string;
              acked?: string[];
              failed?: string;
              closed?: boolean;
              status?: Child['status'];
            };
            if (m.status) child.status = m.status;
            if (m.role) {
              child.role = m.role;
              roles.push({ at: Date.now(), child: c, role: m.role });
            }
            if (m.acked) child.acked.push(...m.acked);
            if (m.failed) child.failed.push(m.failed);
            if (m.closed) child.closed = true;
          }
        });
        children.push(child);
      }
      // A reader follows the log the whole time: every event continues at checkpoint + 1.
      let reading = true;
      let checkpoint = 0;
      const reader = (async () => {
        while (reading) {
          for await (const event of setup.readAll({ after: checkpoint, pageSize: 200 })) {
            if (event.position !== checkpoint + 1) throw new Error(`read ${event.position} after ${checkpoint}`);
            checkpoint = event.position;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await waitUntil(() => children.every((c) => c.role === 'holder' || c.role === 'linked'), { timeoutMs: 30_000 });
      await waitUntil(() => children.every((c) => c.acked.length > 20), { timeoutMs: 30_000 });
      const victim = children.findIndex((c) => c.role === 'holder');
      expect(victim).toBeGreaterThanOrEqual(0);
      const before = children.map((c) => c.acked.length);
      children[victim]?.process.kill('SIGKILL');
      const killedAt = Date.now();
      await waitUntil(() => roles.some((r) => r.at >= killedAt && r.role === 'holder' && r.child !== victim), {
        timeoutMs: 10_000,
        message: 'another process takes the role',
      });
      const takeoverMs = (roles.find((r) => r.at >= killedAt && r.role === 'holder')?.at ?? 0) - killedAt;
      expect(takeoverMs).toBeLessThan(5000);
      const survivors = children.filter((_, c) => c !== victim);
      // Every survivor finds the new holder (at its next lease round; later on a loaded machine)
      // before the appends that must go through it are counted.
      const survivorIds = children.map((_, c) => c).filter((c) => c !== victim);
      await waitUntil(
        () =>
          survivorIds.every((c) =>
            roles.some((r) => r.child === c && r.at >= killedAt && (r.role === 'holder' || r.role === 'linked')),
          ),
        { timeoutMs: 30_000, message: 'every survivor links to the new holder' },
      );
      const linked = survivors.map((c) => c.acked.length);
      await waitUntil(
        () =>
          survivors.every(
            (c, i) => c.acked.length > Math.max(linked[i] ?? 0, before.filter((_, b) => b !== victim)[i] ?? 0) + 20,
          ),
        {
          timeoutMs: 30_000,
        },
      );
      for (const c of survivors) c.process.stdin?.end();
      await waitUntil(() => survivors.every((c) => c.closed), { timeoutMs: 30_000 });
      const head = await setup.headPosition();
      await waitUntil(() => checkpoint === head, { timeoutMs: 10_000 });
      reading = false;
      await reader;

      const rows = await admin.query<{
        position: string;
        stream_id: string;
        stream_version: string;
        event_id: string;
        event_type: string;
        data: { of?: string };
      }>(
        `select position, stream_id, stream_version, event_id, event_type, data from "${schema}".events order by position`,
      );
      expect(rows.map((r) => Number(r.position))).toEqual(rows.map((_, i) => i + 1));
      const firsts = new Map<string, number>();
      rows.forEach((r, i) => {
        if (r.event_type === 'First') {
          expect(firsts.has(r.event_id)).toBe(false);
          firsts.set(r.event_id, i);
          // Never half-stored: its second event follows it in the same stream.
          const next = rows[i + 1];
          expect(next?.event_type).toBe('Second');
          expect(next?.data.of).toBe(r.event_id);
          expect(next?.stream_id).toBe(r.stream_id);
          expect(Number(next?.stream_version)).toBe(Number(r.stream_version) + 1);
        }
      });
      expect(rows.filter((r) => r.event_type === 'Second').length).toBe(firsts.size);
      const acked = children.flatMap((c) => c.acked);
      expect(new Set(acked).size).toBe(acked.length);
      for (const id of acked) expect(firsts.has(id)).toBe(true);
      for (const c of survivors) expect(c.failed).toEqual([]);
      // The appends did go through the coordinator: forwarded by some survivors, served by the new holder.
      expect(survivors.some((c) => (c.status?.forwardedBatches ?? 0) > 0)).toBe(true);
      expect(survivors.some((c) => (c.status?.servedAppends ?? 0) > 0)).toBe(true);
    } finally {
      for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
      await setup.close();
      await admin.exec(`drop schema if exists "${schema}" cascade`);
      await admin.close();
    }
  }, 120_000);
});

async function toArray<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
