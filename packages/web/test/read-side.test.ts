/**
 * The read side end to end: Debian's Chromium (playwright-core) against a real server on each
 * backend. A projection the server runs falls back to lag 0 after appends, with its events/s
 * from the page's own samples; a subscription's parked event shows as its last error; a
 * projection the server does not run is rebuilt from the Rebuild button, behind its
 * confirmation, its progress bar reaching done and its read model built; a failed rebuild
 * shows its error.
 *
 * With ANNALS_UI_SCREENSHOTS=<dir> (docs/ui), the read side is written there as a PNG (PGlite).
 */
import { join } from 'node:path';
import { type EventStore, openEventStore, type Projection, projections, subscriptions } from '@annals/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../../server/test/support.js';
import { chromiumFor, ensureBuilt, launchChromium } from './support/browser.js';

const hasChromium = chromiumFor('the read side browser tests');
const screenshots = process.env.ANNALS_UI_SCREENSHOTS;
const poll = { timeout: 15_000, interval: 50 };

/** Counts each stream's events into a document of `collection`, a few milliseconds each. */
const counter = (name: string, collection: string, delayMs = 0): Projection => ({
  name,
  handlers: {
    Counted: async (event, _tx, documents) => {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      await documents.update<{ n: number }>(collection, event.streamId, { n: 0 }, (doc) => ({ n: doc.n + 1 }));
    },
  },
});

/** Refuses every event. */
const refusing: Projection = {
  name: 'refusing',
  handlers: {
    Counted: async () => {
      throw new Error('the read model refuses Counted');
    },
  },
};

let browser: Browser;
const suite = hasChromium ? describe : describe.skip;

suite.each(backends)('the read side on $name', (backend) => {
  // One server runs its app's projection itself; the other only rebuilds on request.
  let running: TestServer;
  let idle: TestServer;
  let page: Page;

  beforeAll(async () => {
    const [launched, first, second] = await Promise.all([
      browser ?? launchChromium(),
      startTestServer(backend, { app: { projections: [counter('tally', 'tallies')] }, runProjections: true }),
      startTestServer(backend, { app: { projections: [counter('ledger', 'ledgers', 2), refusing] } }),
      ensureBuilt(),
    ]);
    browser = launched;
    running = first;
    idle = second;
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await page?.close();
    await running?.cleanup();
    await idle?.cleanup();
  });

  async function append(server: TestServer, streamId: string, count: number): Promise<number> {
    const events = Array.from({ length: count }, (_, i) => ({ type: 'Counted', data: { i } }));
    const response = await server.request('POST', `/streams/${streamId}/events`, { events });
    expect(response.status, response.text).toBe(201);
    return (response.body.positions as number[]).at(-1) as number;
  }

  const withStore = async <T>(server: TestServer, use: (store: EventStore) => Promise<T>): Promise<T> => {
    const store = await openEventStore({ client: server.client, schema: server.schema, closeClient: false });
    try {
      return await use(store);
    } finally {
      await store.close();
    }
  };

  /** The checkpoints table as { name: { column: cell } }. */
  const grid = () =>
    page.getByRole('table', { name: 'Checkpoints' }).evaluate((table) => {
      const columns = Array.from(table.querySelectorAll('thead th'), (th) => (th.textContent ?? '').trim());
      return Object.fromEntries(
        Array.from(table.querySelectorAll('tbody tr'), (tr) => {
          const cells = Array.from(tr.querySelectorAll('td'), (td) => (td.textContent ?? '').trim());
          return [cells[0], Object.fromEntries(columns.map((column, i) => [column, cells[i]]))];
        }),
      ) as Record<string, Record<string, string>>;
    });

  it("shows a running projection's lag fall to zero, its events/s, and a subscription's last error", async () => {
    const checkpoint = 'projection:tally:v1';
    await append(running, 'count-a', 1);
    await page.goto(`${running.url}/ui/checkpoints?every=0.5`);
    // Before the appends: a first sample at the old position.
    await expect.poll(async () => (await grid())[checkpoint]?.['Lag (events)'], poll).toBe('0');
    const head = await append(running, 'count-b', 300);
    await expect
      .poll(async () => {
        const row = (await grid())[checkpoint];
        return [row?.Position, row?.['Lag (events)']];
      }, poll)
      .toEqual([head.toLocaleString('en-US'), '0']);
    // The position moved between the page's samples: a rate above zero, as a number.
    await expect
      .poll(async () => Number(((await grid())[checkpoint]?.['Events/s'] ?? '').replaceAll(',', '')), poll)
      .toBeGreaterThan(0);
    expect(await withStore(running, (store) => projections(store).documents.get('tallies', 'count-b'))).toEqual({
      n: 300,
    });

    // A subscription that parks an event shows its error in the row.
    await withStore(running, async (store) => {
      const mailer = subscriptions(store).subscribe({
        name: 'mailer',
        pollIntervalMs: 50,
        retry: { attempts: 1, backoffMs: 1 },
        handler: (events) => {
          if (events.some((event) => event.streamId === 'count-c')) throw new Error('mailer cannot take count-c');
        },
      });
      try {
        await append(running, 'count-c', 1);
        await expect
          .poll(async () => (await subscriptions(store).checkpoints()).find((c) => c.name === 'mailer')?.parked, poll)
          .toBe(1);
      } finally {
        await mailer.stop();
      }
    });
    await expect
      .poll(async () => (await grid()).mailer?.['Last error'], poll)
      .toMatch(/^mailer cannot take count-c \(/);
    expect((await grid())[checkpoint]?.['Last error']).toBe('—');
  });

  it('rebuilds a projection from its button, behind a confirmation, to done', async () => {
    const head = await append(idle, 'ledger-a', 400);
    await page.goto(`${idle.url}/ui/checkpoints?every=0.5`);
    const projectionsTable = page.getByRole('table', { name: 'Projections' });
    await expect.poll(() => projectionsTable.locator('tbody tr td').first().textContent(), poll).toBe('ledger');
    expect(await projectionsTable.locator('tbody tr', { hasText: 'ledger' }).textContent()).toMatch(
      /not rebuilt since the server started/,
    );

    // Cancel leaves it as it was.
    await page.getByRole('button', { name: 'Rebuild ledger…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Rebuild projection ledger?' });
    await expect.poll(() => dialog.isVisible(), poll).toBe(true);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => dialog.count(), poll).toBe(0);
    expect((await idle.request('GET', '/projections/ledger/rebuild')).body.state).toBe('idle');

    // The keyboard reaches the button; Enter opens the confirmation, its button starts.
    await page.getByRole('button', { name: 'Rebuild ledger…' }).focus();
    await page.keyboard.press('Enter');
    await dialog.getByRole('button', { name: 'Rebuild ledger' }).click();
    const bar = page.getByRole('progressbar', { name: 'Rebuild of ledger' });
    // The server's answer shows at once (the one batch of 400 events takes about a second).
    await expect.poll(() => bar.getAttribute('aria-valuetext'), poll).toMatch(/^(running: 0 of 400|done: )/);
    await expect
      .poll(() => bar.getAttribute('aria-valuetext'), poll)
      .toMatch(new RegExp(`^done: ${head} of ${head} in \\d+(\\.\\d)? s$`));
    expect(await bar.getAttribute('max')).toBe(String(head));
    expect(await bar.evaluate((element) => (element as HTMLProgressElement).value)).toBe(head);
    const progress = (await idle.request('GET', '/projections/ledger/rebuild')).body;
    expect(progress).toMatchObject({ state: 'done', position: head, target: head });
    expect(await withStore(idle, (store) => projections(store).documents.get('ledgers', 'ledger-a'))).toEqual({
      n: 400,
    });
    // The checkpoint it wrote shows in the table above, caught up.
    await expect.poll(async () => (await grid())['projection:ledger:v1']?.['Lag (events)'], poll).toBe('0');
    if (screenshots && backend.name === 'pglite') {
      await page.screenshot({ path: join(screenshots, 'rebuild.png'), fullPage: true });
    }
  });

  it('shows a failed rebuild with its error', async () => {
    // Started over HTTP with maxFailures 1, so the refusing projection fails at its first batch.
    expect((await idle.request('POST', '/projections/refusing/rebuild', { maxFailures: 1 })).status).toBe(202);
    await page.goto(`${idle.url}/ui/checkpoints?every=0.5`);
    const bar = page.getByRole('progressbar', { name: 'Rebuild of refusing' });
    await expect.poll(() => bar.getAttribute('aria-valuetext'), poll).toMatch(/^failed at 0 of \d+$/);
    const row = page.getByRole('table', { name: 'Projections' }).locator('tbody tr', { hasText: 'refusing' });
    await expect.poll(() => row.getByRole('alert').textContent(), poll).toMatch(/the read model refuses Counted/);
    // It may be tried again.
    expect(await row.getByRole('button', { name: 'Rebuild refusing…' }).isEnabled()).toBe(true);
  });
});
