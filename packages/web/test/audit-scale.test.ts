/**
 * The audit view at thousands of events, in real Chromium: 5,000 events by one actor show
 * through the windowed table (a bounded number of rows in the DOM), the end of the list is
 * reached by scrolling and by the keyboard, and the time to show them is measured.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../../server/test/support.js';
import { chromiumFor, ensureBuilt, launchChromium } from './support/browser.js';

const hasChromium = chromiumFor("the audit view's long-list browser test");

const poll = { timeout: 20_000, interval: 20 };
const total = 5_000;
const streams = 10;
const actor = 'auditor';

let browser: Browser;
const suite = hasChromium ? describe : describe.skip;

suite.each(backends)('the audit view with thousands of events by one actor on $name', (backend) => {
  let server: TestServer;
  let page: Page;

  beforeAll(async () => {
    const [launched, started] = await Promise.all([
      browser ?? launchChromium(),
      startTestServer(backend),
      ensureBuilt(),
    ]);
    browser = launched;
    server = started;
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.setDefaultTimeout(20_000);
  }, 120_000);

  afterAll(async () => {
    await page?.close();
    await server?.cleanup();
  });

  /** The rows of the actor's table in the DOM (not the spacers), as their cells' text. */
  const rows = () =>
    page
      .getByRole('table', { name: `Events by ${actor}` })
      .locator('tbody tr:not(.spacer)')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('td'), (td: { textContent: string | null }) => (td.textContent ?? '').trim()),
        ),
      );

  it('shows 5,000 events by one actor windowed, to the last, and measures it', async () => {
    const perStream = total / streams;
    for (let s = 1; s <= streams; s++) {
      const response = await server.request('POST', `/streams/ledger-${s}/events`, {
        events: Array.from({ length: perStream }, (_, i) => ({
          type: 'EntryPosted',
          data: { n: i + 1 },
          metadata: { actor, reason: 'month end', correlationId: `close-${s}` },
        })),
      });
      expect(response.status, response.text).toBe(201);
    }
    // Another actor's event: not in the list.
    await server.request('POST', '/streams/ledger-1/events', {
      events: [{ type: 'EntryPosted', data: { n: 0 }, metadata: { actor: 'someone-else' } }],
    });
    const listed = await server.request('GET', `/audit/actors/${actor}?limit=10000`);
    const positions = (listed.body.events as { position: number }[]).map((event) => String(event.position));
    expect(positions).toHaveLength(total);

    // Warm: the app's files are cached as they would be for a returning admin.
    await page.goto(`${server.url}/ui/audit`);
    await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();

    const started = performance.now();
    await page.goto(`${server.url}/ui/audit/actors/${actor}`);
    const table = page.getByRole('table', { name: `Events by ${actor}` });
    await table.locator('tbody tr[data-index="0"]').waitFor({ state: 'visible', timeout: 60_000 });
    const shownMs = performance.now() - started;
    const inDom = await table.locator('tbody tr').count();
    const cells = await rows();
    console.info(
      `[${backend.name}] ${total.toLocaleString('en-US')} events by one actor: first rows visible ${shownMs.toFixed(0)} ms ` +
        `after navigation; ${cells.length} event rows in the DOM (${inDom} with spacers)`,
    );
    expect(await page.getByText(/^5,000 events/).count()).toBe(1);
    expect(cells[0]?.[0]).toBe(positions[0]);
    expect(cells.length).toBeGreaterThan(10);
    expect(inDom).toBeLessThan(200);
    expect(await table.getAttribute('aria-rowcount')).toBe(String(total + 1));
    // The links of a row stay: its stream, its event, its request.
    const first = table.locator('tbody tr[data-index="0"]');
    expect(await first.getByRole('link').count()).toBe(3);
    expect(await first.getByRole('link', { name: 'close-1' }).getAttribute('href')).toBe(
      '/ui/audit/correlations/close-1',
    );

    // Scrolled to the end: the last event, still few rows.
    await page.locator('.windowed').evaluate((frame) => {
      (frame as unknown as { scrollTop: number }).scrollTop = 1e9;
    });
    await expect.poll(async () => (await rows()).at(-1)?.[0], poll).toBe(positions.at(-1));
    expect((await rows()).length).toBeLessThan(200);

    // The keyboard: from the first row's link, ArrowDown moves row by row, End to the last,
    // the focused row visibly marked.
    await page.locator('.windowed').evaluate((frame) => {
      (frame as unknown as { scrollTop: number }).scrollTop = 0;
    });
    await expect.poll(async () => (await rows())[0]?.[0], poll).toBe(positions[0]);
    await table.locator('tbody tr[data-index="0"] a').first().focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const focusedPosition = () =>
      page.evaluate(() => document.activeElement?.closest('tr')?.querySelector('td')?.textContent ?? null);
    await expect.poll(focusedPosition, poll).toBe(positions[2]);
    await page.keyboard.press('End');
    await expect.poll(focusedPosition, poll).toBe(positions.at(-1));
    const outline = await page.evaluate(() => {
      const focused = document.activeElement as HTMLElement | null;
      return focused ? getComputedStyle(focused).outlineStyle : 'none';
    });
    expect(outline).not.toBe('none');
    await page.keyboard.press('Home');
    await expect.poll(focusedPosition, poll).toBe(positions[0]);
    // Enter follows the focused link, to the row's stream.
    await page.keyboard.press('Enter');
    await expect.poll(() => new URL(page.url()).pathname, poll).toBe('/ui/streams/ledger-1');
  }, 180_000);
});

afterAll(async () => {
  await browser?.close();
});
