/** The demo, run as a user would on a fresh embedded database: it must tell a true story. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { demoCommand } from '../src/commands/demo.js';
import { logCommand } from '../src/commands/read.js';

describe('annals demo on the embedded backend', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'annals-demo-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const capture = async (run: () => Promise<void>): Promise<string> => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...args) => {
      lines.push(args.join(' '));
    });
    try {
      await run();
    } finally {
      spy.mockRestore();
    }
    return lines.join('\n');
  };

  it('appends, races, retries, transfers, refuses bad input and travels in time', async () => {
    const out = await capture(() => demoCommand({ dataDir }));
    expect(out).toContain('The log holds 0 events before this run.');
    expect(out).toMatch(/teller-1: won -> version 4/);
    expect(out).toMatch(/teller-2: lost with CONCURRENCY_CONFLICT: .*expected version 3, actual version 4/);
    expect(out).toMatch(/retry: +version 5, position 5, duplicate true/);
    expect(out).toContain('log head before 8, after 8');
    expect(out).toContain('balance now:                     €105');
    expect(out).toContain('balance as of version 2:         €100');
    expect(out).toContain('The log now holds 8 events.');
  });

  it('runs again on the same database, and its events are in the log', async () => {
    const out = await capture(() => demoCommand({ dataDir }));
    expect(out).toContain('The log holds 8 events before this run.');
    expect(out).toContain('The log now holds 16 events.');
    const log = await capture(() => logCommand({ dataDir, json: true, category: ['account'] }));
    const positions = log.split('\n').map((line) => JSON.parse(line).position);
    expect(positions).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
  });
});
