/**
 * Tamper evidence: seals chained per stream, written behind the appends; `verify` recomputes
 * them from the stored events and names the first broken link. Tampering goes through a
 * superuser connection with triggers off — the one way past the immutability trigger.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidInputError,
  integrity,
  type SqlQueryable,
  StreamNotFoundError,
  TamperDetectedError,
} from '../src/index.js';
import { genesisHash, sealHash } from '../src/integrity/seal-hash.js';
import { type CanonicalEvent, readCanonicalPage } from '../src/queries/seals.js';

/** The seal of the golden event below, as first computed: it must never change. */
const GOLDEN = 'cfb472f28cf4f244ea158349550005d0f47a8166a4f690516fe5ee448d918a40';

import { backends, databaseUrl, openTestStore, postgresBackend, useTestStore, waitUntil } from './support/backends.js';

/** Runs `sql` with triggers off, as only a superuser can. */
async function asSuperuser(db: { transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> }, sql: string) {
  await db.transaction(async (tx) => {
    await tx.exec(`set local session_replication_role = replica; ${sql}`);
  });
}

describe.each(backends)('seals and verify on $name', (backend) => {
  const t = useTestStore(backend);

  async function fill() {
    await t.store.append('account-a', [
      { type: 'Opened', data: { owner: 'Ada', limit: 1.5 }, metadata: { actor: 'teller' } },
      { type: 'Deposited', data: { amount: 100 } },
    ]);
    await t.store.append('account-b', [{ type: 'Opened', data: { owner: 'Bob' } }]);
    await t.store.append('account-a', [{ type: 'Withdrawn', data: { amount: 30 } }]);
    await t.store.append('account-b', [{ type: 'Deposited', data: { amount: 5 } }]);
  }

  it('an untouched store verifies, and sealing twice seals nothing twice', async () => {
    await fill();
    expect(await integrity(t.store).seal()).toBe(5);
    expect(await integrity(t.store).seal()).toBe(0);
    const report = await integrity(t.store).verify();
    expect(report).toMatchObject({ ok: true, checked: 5, sealedUpTo: 5, unsealed: 0, brokenCount: 0, broken: [] });
    expect(report.headHash).toMatch(/^[0-9a-f]{64}$/);
    await t.store.append('account-a', [{ type: 'Deposited', data: { amount: 1 } }]);
    expect(await integrity(t.store).verify()).toMatchObject({ ok: true, checked: 5, unsealed: 1 });
    expect(await integrity(t.store).seal({ batchSize: 1 })).toBe(1);
    expect(await integrity(t.store).verify({ streamId: 'account-a' })).toMatchObject({ ok: true, checked: 4 });
  });

  it('names an event edited past the trigger, and only that one', async () => {
    await fill();
    await integrity(t.store).seal({ batchSize: 2 });
    await asSuperuser(t.client, `update "${t.schema}".events set data = '{"amount": 1000000}' where position = 2`);
    const report = await integrity(t.store).verify();
    expect(report.ok).toBe(false);
    expect(report.brokenCount).toBe(1);
    expect(report.broken[0]).toMatchObject({
      position: 2,
      streamId: 'account-a',
      streamVersion: 2,
      problem: 'event-changed',
    });
    expect(report.broken[0]?.message).toContain('position 2');
    expect((await integrity(t.store).verify({ streamId: 'account-b' })).ok).toBe(true);
    expect((await integrity(t.store).verify({ streamId: 'account-a' })).broken[0]?.position).toBe(2);
    // Keeps the first `maxBroken` links, lowest position first, and counts them all.
    await asSuperuser(t.client, `update "${t.schema}".events set data = '{}' where position in (3, 5)`);
    const capped = await integrity(t.store).verify({ maxBroken: 1, pageSize: 1 });
    expect(capped).toMatchObject({ ok: false, brokenCount: 3 });
    expect(capped.broken.map((b) => b.position)).toEqual([2]);
  });

  it.each([
    ['metadata', `update "{s}".events set metadata = '{"actor": "someone-else"}' where position = 1`],
    ['type', `update "{s}".events set event_type = 'Closed' where position = 1`],
    ['time', `update "{s}".events set recorded_at = recorded_at - interval '1 microsecond' where position = 1`],
    [
      'a number spelled differently',
      `update "{s}".events set data = '{"limit": 1.50, "owner": "Ada"}' where position = 1`,
    ],
  ])('catches a change of %s', async (_, sql) => {
    await fill();
    await integrity(t.store).seal();
    await asSuperuser(t.client, sql.replace('{s}', t.schema));
    const report = await integrity(t.store).verify();
    expect(report.broken[0]).toMatchObject({ position: 1, problem: 'event-changed' });
  });

  it('catches a deleted event, a reforged seal and a deleted event with its seal', async () => {
    await fill();
    await integrity(t.store).seal();
    const s = `"${t.schema}"`;
    await asSuperuser(t.client, `delete from ${s}.events where position = 4`);
    expect((await integrity(t.store).verify()).broken[0]).toMatchObject({ position: 4, problem: 'event-missing' });

    // The forger recomputes the edited event's own seal, but not the chain after it.
    await asSuperuser(
      t.client,
      `update ${s}.seals set hash = decode(repeat('ab', 32), 'hex') where position = 2;
       update ${s}.events set data = '{"amount": 7}' where position = 2`,
    );
    const forged = await integrity(t.store).verify();
    expect(forged.broken.map((b) => [b.position, b.problem])).toEqual([
      [2, 'event-changed'],
      [2, 'seal-changed'],
      [4, 'event-missing'],
    ]);

    await asSuperuser(
      t.client,
      `delete from ${s}.events where position = 3; delete from ${s}.seals where position = 3`,
    );
    const gap = await integrity(t.store).verify();
    expect(gap.broken).toContainEqual(expect.objectContaining({ position: 3, problem: 'seal-missing' }));
  });

  /** Recomputes the seal of the event at `position` as a forger would: correctly. */
  async function reseal(position: number) {
    const [event] = await readCanonicalPage(t.client, t.schema, position - 1, 1);
    const [prev] = await t.client.query<{ hash: Uint8Array }>(
      `select hash from "${t.schema}".seals where stream_id = $1 and stream_version = $2`,
      [event?.streamId, (event?.streamVersion ?? 1) - 1],
    );
    const hash = sealHash(event as CanonicalEvent, prev ? Buffer.from(prev.hash) : genesisHash);
    await asSuperuser(
      t.client,
      `update "${t.schema}".seals set hash = '\\x${hash.toString('hex')}' where position = ${position}`,
    );
  }

  it('catches an edited event whose stream seal was correctly recomputed: the log chain breaks', async () => {
    await fill();
    await integrity(t.store).seal();
    // account-b's last event: no later seal in its stream would show the forgery.
    await asSuperuser(t.client, `update "${t.schema}".events set data = '{"amount": 5000}' where position = 5`);
    await reseal(5);
    expect((await integrity(t.store).verify({ streamId: 'account-b' })).ok).toBe(true);
    expect((await integrity(t.store).verify()).broken).toEqual([
      expect.objectContaining({ position: 5, problem: 'seal-changed' }),
    ]);
  });

  it('an anchor kept from an earlier verify catches a rewritten or cut tail', async () => {
    await fill();
    await integrity(t.store).seal();
    const { sealedUpTo, headHash } = await integrity(t.store).verify();
    const anchor = { position: sealedUpTo, hash: headHash as string };
    expect((await integrity(t.store).verify({ anchor })).ok).toBe(true);
    await t.store.append('account-a', [{ type: 'Deposited', data: { amount: 1 } }]);
    await integrity(t.store).seal();
    expect((await integrity(t.store).verify({ anchor })).ok).toBe(true);

    // Remove the newest events with their seals: the chains all hold, only the anchor tells.
    await asSuperuser(
      t.client,
      `delete from "${t.schema}".seals where position >= 5; delete from "${t.schema}".events where position >= 5`,
    );
    expect((await integrity(t.store).verify()).ok).toBe(true);
    expect((await integrity(t.store).verify({ anchor })).broken).toEqual([
      expect.objectContaining({ position: 5, problem: 'anchor-mismatch' }),
    ]);
  });

  it('a seal written directly stops sealing with TAMPER_DETECTED instead of chaining onto it', async () => {
    await fill();
    await integrity(t.store).seal();
    await t.store.append('account-a', [{ type: 'Deposited', data: { amount: 1 } }]);
    await t.client.query(
      `insert into "${t.schema}".seals (position, stream_id, stream_version, hash, log_hash)
       values (1000000000, 'account-a', 99, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))`,
    );
    await expect(integrity(t.store).seal()).rejects.toBeInstanceOf(TamperDetectedError);
    expect((await integrity(t.store).verify()).ok).toBe(false);
    const sealer = integrity(t.store).runSealer({ pollIntervalMs: 10 });
    await waitUntil(async () => (await sealer.status()).state === 'blocked', { message: 'the sealer is blocked' });
    expect(await sealer.status()).toMatchObject({ state: 'blocked', lastError: expect.stringContaining('1000000000') });
    await sealer.stop();
  });

  it('verify of one stream names a missing newest seal', async () => {
    await fill();
    await integrity(t.store).seal();
    await asSuperuser(t.client, `delete from "${t.schema}".seals where position = 4`);
    expect((await integrity(t.store).verify({ streamId: 'account-a' })).broken).toEqual([
      expect.objectContaining({ position: 4, streamVersion: 3, problem: 'seal-missing' }),
    ]);
  });

  it('hashes the stored form the same way on every backend (a changed encoding breaks every seal)', async () => {
    await t.store.append('golden-1', [
      {
        type: 'Golden',
        data: { b: 1.5, a: [1, 'é', null, true], big: 1.2345678901234567e19, tiny: 5e-324, s: 'line\u2028sep' },
        metadata: { actor: 'x' },
        id: '0190a000-0000-7000-8000-00000000a001',
      },
    ]);
    const [event] = await readCanonicalPage(t.client, t.schema, 0, 1);
    expect(event?.data).toBe(
      `{"a": [1, "é", null, true], "b": 1.5, "s": "line\u2028sep", "big": 12345678901234567000, "tiny": ${'0.'.padEnd(325, '0')}5}`,
    );
    expect(event?.metadata).toBe('{"actor": "x"}');
    const fixed = { ...(event as CanonicalEvent), recordedAt: '1798761600000000' };
    expect(sealHash(fixed, genesisHash).toString('hex')).toBe(GOLDEN);
  });

  it('chains per stream: any interleaving of appends seals and verifies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('s-a', 's-b', 's-c'), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 1, max: 7 }),
        async (streams, batch) => {
          const store = await openTestStore(backend);
          try {
            for (const [i, stream] of streams.entries()) await store.store.append(stream, [{ type: 'E', data: { i } }]);
            expect(await integrity(store.store).seal({ batchSize: batch })).toBe(streams.length);
            expect((await integrity(store.store).verify({ pageSize: batch })).ok).toBe(true);
            const victim = (streams.length >> 1) + 1;
            await asSuperuser(
              store.client,
              `update "${store.schema}".events set data = '{"i": -1}' where position = ${victim}`,
            );
            const report = await integrity(store.store).verify({ pageSize: batch });
            expect(report.brokenCount).toBe(1);
            expect(report.broken[0]?.position).toBe(victim);
          } finally {
            await store.cleanup();
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it('a running sealer keeps up with appends and verify passes', async () => {
    const sealer = integrity(t.store).runSealer({ batchSize: 3, pollIntervalMs: 50 });
    for (let i = 0; i < 10; i++) await t.store.append(`s-${i % 3}`, [{ type: 'E', data: { i } }]);
    await sealer.waitFor(10);
    expect(await sealer.status()).toMatchObject({ sealed: 10, head: 10, unsealed: 0 });
    await sealer.stop();
    expect((await sealer.status()).state).toBe('stopped');
    expect(await integrity(t.store).verify()).toMatchObject({ ok: true, checked: 10 });
  });

  it('seal() ends at the head it started from while writers keep appending', async () => {
    for (let i = 0; i < 40; i++) await t.store.append(`w-${i % 4}`, [{ type: 'E', data: { i } }]);
    let stop = false;
    let written = 0;
    const writers = Array.from({ length: 4 }, async (_, w) => {
      while (!stop) {
        await t.store.append(`w-${w}`, [{ type: 'E', data: { w } }]);
        written++;
      }
    });
    try {
      while (written < 8) await new Promise((resolve) => setTimeout(resolve, 5));
      // One event per step: writers that never pause out-run it, so only a bound ends it.
      const sealed = await integrity(t.store).seal({ batchSize: 1 });
      expect(sealed).toBeGreaterThanOrEqual(48);
      expect((await integrity(t.store).status()).sealedUpTo).toBe(sealed);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect((await integrity(t.store).verify()).ok).toBe(true);
  });

  it('verify beside a running sealer reports the log hash at the position it reports, an anchor that holds', async () => {
    for (let i = 0; i < 30; i++) await t.store.append(`v-${i % 3}`, [{ type: 'E', data: { i } }]);
    await integrity(t.store).seal();
    const sealer = integrity(t.store).runSealer({ batchSize: 1, pollIntervalMs: 5 });
    let stop = false;
    const writers = Array.from({ length: 3 }, async (_, w) => {
      while (!stop) await t.store.append(`v-${w}`, [{ type: 'E', data: { w } }]);
    });
    let report: Awaited<ReturnType<ReturnType<typeof integrity>['verify']>>;
    try {
      // One seal a page: the sealer seals more while this walks.
      report = await integrity(t.store).verify({ pageSize: 1 });
    } finally {
      stop = true;
      await Promise.all(writers);
      await sealer.stop();
    }
    expect(report.ok).toBe(true);
    expect(report.sealedUpTo).toBeGreaterThanOrEqual(30);
    const anchor = { position: report.sealedUpTo, hash: report.headHash as string };
    await integrity(t.store).seal();
    const again = await integrity(t.store).verify({ anchor });
    expect(again.broken).toEqual([]);
    expect(again.ok).toBe(true);
  });

  it('seals cannot be changed or removed by the application', async () => {
    await fill();
    await integrity(t.store).seal();
    for (const sql of [`update "{s}".seals set hash = hash`, `delete from "{s}".seals`, `truncate "{s}".seals`]) {
      await expect(t.client.query(sql.replace('{s}', t.schema))).rejects.toMatchObject({ code: 'AN001' });
    }
    expect((await integrity(t.store).verify()).checked).toBe(5);
  });

  it('refuses bad input to verify', async () => {
    await expect(integrity(t.store).verify({ streamId: 'nope' })).rejects.toBeInstanceOf(StreamNotFoundError);
    await expect(integrity(t.store).verify({ streamId: '' })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(integrity(t.store).verify({ pageSize: 0 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(integrity(t.store).verify({ onProgress: 'x' as never })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(integrity(t.store).verify(null as never)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(integrity(t.store).seal({ batchSize: -1 })).rejects.toBeInstanceOf(InvalidInputError);
    expect(() => integrity(t.store).runSealer({ batchSize: 1.5 })).toThrow(InvalidInputError);
  });
});

describe.skipIf(!databaseUrl)('sealing under concurrency on postgres', () => {
  const t = useTestStore(postgresBackend);

  it('two sealers racing parallel appenders seal every event once, in one chain per stream', async () => {
    const sealers = [
      integrity(t.store).runSealer({ batchSize: 7, pollIntervalMs: 20 }),
      integrity(t.store).runSealer({ batchSize: 13, pollIntervalMs: 20 }),
    ];
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 40; i++) await t.store.append(`acct-${(w * 7 + i) % 5}`, [{ type: 'E', data: { w, i } }]);
      })(),
    );
    await Promise.all(writers);
    const head = await t.store.headPosition();
    expect(head).toBe(320);
    await Promise.all(sealers.map((s) => s.waitFor(head)));
    await Promise.all(sealers.map((s) => s.stop()));
    const report = await integrity(t.store).verify({ pageSize: 50 });
    expect(report).toMatchObject({ ok: true, checked: 320, sealedUpTo: 320, unsealed: 0 });
  });
});
