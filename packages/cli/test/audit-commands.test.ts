/**
 * The audit, time-travel and integrity commands on an embedded database, as a user runs them:
 * what they print for people, what `--json` gives scripts, and the errors for bad input.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError, openEventStore, StreamNotFoundError } from '@annals/core';
import { bankPersonalData } from '@annals/example-bank';
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { auditCommand, historyCommand } from '../src/commands/audit.js';
import { forgetCommand, sealCommand, verifyCommand } from '../src/commands/integrity.js';
import { changesCommand, replayCommand, stateCommand } from '../src/commands/time-travel.js';
import { type ConnectionFlags, connect } from '../src/config.js';
import { capture } from './support/capture.js';

/**
 * Every command connects, opens the store and closes it, as the CLI does, but the embedded
 * database of a directory is started once and shared by the commands (starting PGlite takes
 * about a second, and this file runs some thirty commands). A new directory starts from the
 * test run's migrated template instead of initdb. The set-up closes it, so the first command
 * reads what the set-up wrote back from disk.
 */
const pglites = vi.hoisted(() => new Map<string, PGlite>());
vi.mock('@annals/core/pglite', async (importOriginal) => {
  const real = await importOriginal<typeof import('@annals/core/pglite')>();
  const { pgliteFromTemplate } = await import('../../core/test/support/templates.js');
  return {
    ...real,
    createPgliteClient: (options: Parameters<typeof real.createPgliteClient>[0] = {}) => {
      const { dataDir } = options;
      if (dataDir === undefined || options.db) return real.createPgliteClient(options);
      let db = pglites.get(dataDir);
      if (!db) {
        db = pgliteFromTemplate(dataDir);
        pglites.set(dataDir, db);
      }
      return real.createPgliteClient({ db });
    },
  };
});
const closePglites = async () => {
  for (const db of pglites.values()) await db.close();
  pglites.clear();
};

let flags: ConnectionFlags;
let dataDir: string;
let times: Date[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'annals-cli-'));
  vi.stubEnv('DATABASE_URL', '');
  flags = { dataDir };
  const { client, schema } = await connect(flags);
  const store = await openEventStore({ client, schema, personalData: bankPersonalData });
  const ctx = (actor: string, reason: string, extra = {}) => ({ actor, reason, ...extra });
  const results = [
    await store.append('account-1', [
      { type: 'AccountOpened', data: { owner: 'Ada', overdraftLimit: 0 }, metadata: ctx('teller', 'OpenAccount') },
    ]),
    await store.append('account-1', [
      { type: 'MoneyDeposited', data: { amount: 100 }, metadata: ctx('ada', 'Deposit') },
    ]),
    await store.append('account-1', [
      {
        type: 'TransferDebited',
        data: { amount: 30, to: 'account-2', transferId: 't1' },
        metadata: ctx('ada', 'Transfer', { correlationId: 't1', causationId: 'cmd-1' }),
        id: '0190a000-0000-7000-8000-0000000000d1',
      },
    ]),
    await store.append('account-2', [
      {
        type: 'TransferCredited',
        data: { amount: 30, from: 'account-1', transferId: 't1' },
        metadata: ctx('ada', 'Transfer', { correlationId: 't1', causationId: '0190a000-0000-7000-8000-0000000000d1' }),
      },
    ]),
    await store.append('customer-c1', [
      { type: 'CustomerRegistered', data: { customerId: 'c1', name: 'Ada', email: 'ada@example.org' } },
    ]),
  ];
  times = results.map((r) => r.recordedAt);
  await store.close();
  await closePglites();
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await closePglites();
  await rm(dataDir, { recursive: true, force: true });
});

describe('annals history and audit', () => {
  it('history shows who, when and why per event', async () => {
    const out = await capture(() => historyCommand('account-1', flags));
    expect(out.split('\n')).toHaveLength(3);
    expect(out).toMatch(/^account-1 {2}v1 {2}#1 {2}\S+Z {2}AccountOpened {2}by teller {2}for OpenAccount/);
    const json = (await capture(() => historyCommand('account-1', { ...flags, json: true, from: 2, limit: 1 })))
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(json).toMatchObject([{ streamVersion: 2, actor: 'ada', reason: 'Deposit', data: { amount: 100 } }]);
    await expect(historyCommand('account-9', flags)).rejects.toBeInstanceOf(StreamNotFoundError);
  });

  it('audit by actor in a time range, by type, and the causal tree of a request', async () => {
    const byAda = await capture(() => auditCommand({ ...flags, actor: 'ada', json: true }));
    expect(byAda.split('\n').map((l) => JSON.parse(l).position)).toEqual([2, 3, 4]);
    const from = (times[2] as Date).toISOString();
    const ranged = await capture(() => auditCommand({ ...flags, actor: 'ada', from, json: true }));
    expect(ranged.split('\n').map((l) => JSON.parse(l).position)).toEqual([3, 4]);
    const typed = await capture(() => auditCommand({ ...flags, type: ['TransferCredited'], json: true }));
    expect(JSON.parse(typed)).toMatchObject({ streamId: 'account-2', type: 'TransferCredited' });
    expect(await capture(() => auditCommand({ ...flags, actor: 'nobody' }))).toBe('no event matches');

    const tree = JSON.parse(await capture(() => auditCommand({ ...flags, correlation: 't1', json: true })));
    expect(tree).toMatchObject([{ position: 3, caused: [{ position: 4, caused: [] }] }]);
    const text = await capture(() => auditCommand({ ...flags, correlation: 't1' }));
    expect(text.split('\n')[1]).toMatch(/^└─ account-2 {2}v1 {2}#4/);
  });

  it.each([
    [{ from: 'yesterday' }],
    [{ from: '2026-13-45' }],
    [{ to: '2026-02-30T25:00:00Z' }],
    [{ from: '2026-11-28', to: '2026-11-01' }],
    [{ actor: 'ada', subject: 'c1' }],
    [{ correlation: 't1', actor: 'ada' }],
  ])('audit refuses %j', async (range) => {
    await expect(auditCommand({ ...flags, ...range })).rejects.toBeInstanceOf(InvalidInputError);
  });
});

describe('annals state and replay', () => {
  it('state as of a version, a position and a time, with the default fold or a decider', async () => {
    const merged = JSON.parse(await capture(() => stateCommand('account-1', { ...flags, at: '2', json: true })));
    expect(merged).toMatchObject({
      streamVersion: 2,
      state: { owner: 'Ada', amount: 100, lastEvent: 'MoneyDeposited' },
    });
    const decider = join(import.meta.dirname, '../../../examples/bank/account.ts#bankAccount');
    const atPosition = JSON.parse(
      await capture(() => stateCommand('account-1', { ...flags, at: 'position:3', decider, json: true })),
    );
    expect(atPosition).toMatchObject({ streamVersion: 3, state: { status: 'open', balance: 70 } });
    const atTime = await capture(() =>
      stateCommand('account-1', { ...flags, at: (times[1] as Date).toISOString(), decider }),
    );
    expect(atTime).toMatch(/^account-1 as of version 2 \(position 2, /);
    expect(atTime).toContain('"balance": 100');
  });

  it.each([
    ['99', InvalidInputError, /past the end/],
    ['2020-01-01', InvalidInputError, /before the first event/],
    ['last tuesday', InvalidInputError, /must be a version/],
    ['version:-1', InvalidInputError, /must be a version/],
    ['0', InvalidInputError, /must be >= 1/],
  ])('state --at %s is refused', async (at, type, message) => {
    const error = await stateCommand('account-1', { ...flags, at }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
  });

  it('state of an unknown stream, and a decider that is not one', async () => {
    await expect(stateCommand('account-9', { ...flags, at: '1' })).rejects.toBeInstanceOf(StreamNotFoundError);
    const notDecider = join(import.meta.dirname, '../../../examples/bank/account.ts#AccountNotOpen');
    await expect(stateCommand('account-1', { ...flags, at: '1', decider: notDecider })).rejects.toThrow(
      /is not a decider/,
    );
  });

  it('changes between two moments, by position or time', async () => {
    const decider = join(import.meta.dirname, '../../../examples/bank/account.ts#bankAccount');
    const out = await capture(() =>
      changesCommand({ ...flags, from: 'position:1', to: 'position:4', category: ['account'], decider }),
    );
    expect(out).toContain('positions 2..4: 3 events in 2 streams');
    expect(out).toMatch(/account-1\n {4}balance: 0 -> 70/);
    const json = JSON.parse(
      await capture(() =>
        changesCommand({ ...flags, from: (times[0] as Date).toISOString(), to: 'position:2', json: true }),
      ),
    );
    expect(json).toMatchObject({ fromPosition: 1, toPosition: 2 });
    await expect(changesCommand({ ...flags, from: 'soon', to: 'position:2' })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(changesCommand({ ...flags, from: 'position:3', to: 'position:2' })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
  });

  it('replay shows each step with what it changed', async () => {
    const decider = join(import.meta.dirname, '../../../examples/bank/account.ts#bankAccount');
    const out = await capture(() => replayCommand('account-1', { ...flags, from: 2, to: 3, decider }));
    expect(out).toMatch(/v2 {2}#2 .* MoneyDeposited by ada\n {4}balance: 0 -> 100/);
    expect(out).toMatch(/v3 {2}#3 .* TransferDebited by ada\n {4}balance: 100 -> 70/);
    const steps = (await capture(() => replayCommand('account-1', { ...flags, json: true, decider })))
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(steps.map((s) => s.after.balance)).toEqual([0, 100, 70]);
    await expect(replayCommand('account-1', { ...flags, from: 4 })).rejects.toThrow(/past the end/);
  });
});

describe('annals seal, verify and forget', () => {
  it('seals, verifies, names a tampered event with exit status 1, forgets a customer', async () => {
    expect(JSON.parse(await capture(() => sealCommand({ ...flags, json: true })))).toEqual({
      sealed: 5,
      sealedUpTo: 5,
    });
    expect(await capture(() => verifyCommand(flags))).toMatch(/^ok: 5 sealed events of the store match their seals/);

    const forgot = JSON.parse(
      await capture(() => forgetCommand('c1', { ...flags, reason: 'request 9', actor: 'dpo', json: true })),
    );
    expect(forgot).toMatchObject({ forgotten: true, events: 1, position: 6 });
    const held = await capture(() => auditCommand({ ...flags, subject: 'c1', json: true }));
    expect(JSON.parse(held)).toMatchObject({ streamId: 'customer-c1', data: { name: null } });
    const history = await capture(() => historyCommand('customer-c1', { ...flags, json: true }));
    expect(JSON.parse(history).data).toEqual({ customerId: 'c1', name: null, email: null });
    await expect(forgetCommand('c1', { ...flags })).rejects.toBeInstanceOf(InvalidInputError);

    const report = JSON.parse(await capture(() => verifyCommand({ ...flags, seal: true, json: true })));
    expect(report).toMatchObject({ ok: true, checked: 6, unsealed: 0 });
    const human = await capture(() => verifyCommand({ ...flags, anchor: `6:${report.headHash}` }));
    expect(human).toContain(`anchor: 6:${report.headHash}`);
    await expect(verifyCommand({ ...flags, anchor: '6:nothex' })).rejects.toBeInstanceOf(InvalidInputError);

    const { client, schema } = await connect(flags);
    await client.transaction(async (tx) => {
      await tx.exec(`set local session_replication_role = replica;
        update "${schema}".events set data = '{"amount": 1}' where position = 2`);
    });
    await client.close();
    const out = await capture(() => verifyCommand({ ...flags, stream: 'account-1' }));
    expect(out).toContain('TAMPERED: 1 broken link(s) in stream account-1; the first:');
    expect(out).toContain('event-changed: the event at position 2 (account-1@2) does not match its seal');
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
  });
});
