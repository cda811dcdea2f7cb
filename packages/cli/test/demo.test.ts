/** The demo, run as a user would on a fresh embedded database: it must tell a true story. */

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPostgresClient } from '@annals/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { demoCommand } from '../src/commands/demo.js';
import { checkpointsCommand, logCommand, parkedCommand } from '../src/commands/read.js';
import type { ConnectionFlags } from '../src/config.js';
import { capture } from './support/capture.js';

const databaseUrl = process.env.DATABASE_URL;
const targets = [
  { name: 'the embedded backend', postgres: false },
  ...(databaseUrl ? [{ name: 'PostgreSQL', postgres: true }] : []),
];

describe.each(targets)('annals demo on $name', ({ postgres }) => {
  let flags: ConnectionFlags;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'annals-demo-'));
    // The CLI reads DATABASE_URL; the embedded run must not see it.
    vi.stubEnv('DATABASE_URL', postgres ? databaseUrl : '');
    flags = postgres ? { schema: `demo_${randomBytes(4).toString('hex')}` } : { dataDir };
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await rm(dataDir, { recursive: true, force: true });
    if (postgres) {
      const client = createPostgresClient({ connectionString: databaseUrl as string });
      await client.exec(`drop schema if exists "${flags.schema}" cascade`);
      await client.close();
    }
  });

  it('handles commands, refuses a rule, dedupes, races, transfers, refuses bad input and travels in time', async () => {
    const out = await capture(() => demoCommand(flags));
    expect(out).toContain('The log holds 0 events before this run.');
    expect(out).toMatch(/withdraw €200.00: DOMAIN_ERROR \(insufficient-funds\)/);
    expect(out).toMatch(/is still at version 2/);
    expect(out).toMatch(/repeat: version 3, balance €125.00, duplicate true/);
    expect(out).toMatch(/teller-\d: won -> version 4/);
    expect(out).toMatch(/teller-\d: lost with CONCURRENCY_CONFLICT: .*expected version 3, actual version 4/);
    expect(out).toMatch(/TransferCredited on account-bob\w+, caused by [0-9a-f-]{36}/);
    expect(out).toMatch(/refunded \(account-not-active\)/);
    expect(out).toContain('log head before 11, after 11');
    expect(out).toMatch(/└─ account-ada\w+ {2}v5 .* TransferDebited {2}by ada/);
    expect(out).toMatch(/ {3}└─ account-bob\w+ {2}v2 .* TransferCredited {2}by ada/);
    expect(out).toMatch(/balance now: +€85.00/);
    expect(out).toMatch(/as of version 2: +€100.00/);
    expect(out).toMatch(/as of \d{4}-.*Z: +€100.00/);
    expect(out).toContain('v5 TransferDebited: balance: 11500 -> 8500');
    expect(out).toMatch(/as of version 999: INVALID_INPUT: .*past the end/);
    expect(out).toMatch(/customer-c\w+ reads: +\{"name":"Ada Lovelace","email":"ada@example.org"/);
    expect(out).toMatch(
      /customer-c\w+ now reads: \{"name":null,"email":null,"customerId":"c\w+"\} \(redacted: name, email\)/,
    );
    expect(out).toContain('the log is untouched: verify passes over 13 sealed events');
    expect(out).toContain('projection account-balances: at position 13 of 13, lag 0');
    expect(out).toMatch(/account-eve\w+: Eve, closed, €0.00/);
    expect(out).toContain('closed accounts in the read model: 1');
    expect(out).toContain('money in all 3 accounts: €115.00');
    expect(out).toContain('The log now holds 13 events.');
    expect(out).toContain('before: verify passes');
    expect(out).toMatch(
      /after: +verify fails; first broken link: the event at position 2 \(account-x@2\) does not match its seal/,
    );
  });

  it('runs again on the same database, and its events are in the log', async () => {
    const out = await capture(() => demoCommand(flags));
    expect(out).toContain('The log holds 13 events before this run.');
    expect(out).toContain('The log now holds 26 events.');
    expect(out).toContain('the log is untouched: verify passes over 26 sealed events');
    expect(out).toContain('projection account-balances: at position 26 of 26, lag 0');
    expect(out).toContain('closed accounts in the read model: 2');
    const log = await capture(() => logCommand({ ...flags, json: true, category: ['account'] }));
    const positions = log.split('\n').map((line) => JSON.parse(line).position);
    expect(positions).toEqual([
      ...Array.from({ length: 11 }, (_, i) => i + 1),
      ...Array.from({ length: 11 }, (_, i) => i + 14),
    ]);
    const checkpoints = JSON.parse(await capture(() => checkpointsCommand({ ...flags, json: true })));
    expect(checkpoints).toMatchObject([{ name: 'projection:account-balances:v1', position: 26, lag: 0, parked: 0 }]);
    expect(await capture(() => parkedCommand('mailer', flags))).toBe('mailer has no parked events');
  });
});
