/**
 * The admin UI end to end: Debian's Chromium (driven by playwright-core) against a real
 * server on an ephemeral loopback port, on each backend. The live tail shows events appended
 * while the page is open, newest first, and pause holds new ones until resume; the stream
 * browser pages forward and backward; an event's page shows its data, metadata, who / when /
 * why, its seal, and links to its cause and what it caused; the dashboard shows the store's head.
 *
 * The UI is built first when its build is missing or older than its sources. Without
 * /usr/bin/chromium the tests are skipped, saying so.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { integrity, openEventStore } from '@annals/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../../server/test/support.js';
import { chromiumFor, ensureBuilt, launchChromium } from './support/browser.js';

const hasChromium = chromiumFor('the admin UI browser tests');

/** A directory to write a screenshot of each view to (docs/ui/ holds some), or none. */
const screenshots = process.env.ANNALS_UI_SCREENSHOTS;
const poll = { timeout: 10_000, interval: 50 };

let browser: Browser;

const suite = hasChromium ? describe : describe.skip;

suite.each(backends)('the admin UI on $name', (backend) => {
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
    page = await browser.newPage();
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await page?.close();
    await server?.cleanup();
  });

  async function append(streamId: string, events: object[]): Promise<void> {
    const response = await server.request('POST', `/streams/${streamId}/events`, { events });
    expect(response.status, response.text).toBe(201);
  }

  async function screenshot(name: string): Promise<void> {
    if (screenshots && backend.name === 'pglite') await page.screenshot({ path: join(screenshots, `${name}.png`) });
  }

  /** The text of each body row's cells of the table named `name` (in the DOM: not a windowed table's spacers). */
  const rows = (name: string) =>
    page
      .getByRole('table', { name })
      .locator('tbody tr:not(.spacer)')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('td'), (td: { textContent: string | null }) => td.textContent ?? ''),
        ),
      );

  it('serves the app with its cache headers, and any /ui path as the app', async () => {
    const index = await fetch(`${server.url}/ui`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const script = await fetch(`${server.url}${asset}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const deep = await fetch(`${server.url}/ui/events/no-such-event`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toBe(html);
    const missing = await fetch(`${server.url}/ui/assets/missing-0000.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('follows the log live, newest first, and holds new events while paused', async () => {
    await append('tail-1', [{ type: 'Before', data: {} }]);
    await page.goto(`${server.url}/ui/tail`);
    await expect.poll(() => page.getByRole('status').textContent(), poll).toMatch(/^Live/);
    const types = async () => (await rows('Live events')).map((cells) => cells[4]);
    await expect.poll(types, poll).toEqual(['Before']);
    // Authentication is off: nothing answers 401, so no sign-in and no sign out.
    expect(await page.getByRole('heading', { name: 'Sign in' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);

    for (const type of ['First', 'Second', 'Third']) await append('tail-1', [{ type, data: { type } }]);
    await expect.poll(types, poll).toEqual(['Third', 'Second', 'First', 'Before']);
    const positions = (await rows('Live events')).map((cells) => Number(cells[0]));
    expect(positions).toEqual([...positions].sort((a, b) => b - a));

    await page.getByRole('button', { name: 'Pause' }).click();
    await append('tail-1', [{ type: 'Fourth', data: {} }]);
    await append('tail-2', [{ type: 'Fifth', data: {} }]);
    await expect.poll(() => page.getByRole('status').textContent(), poll).toMatch(/^Paused: 2 new events held/);
    expect(await types()).toEqual(['Third', 'Second', 'First', 'Before']);

    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(types, poll).toEqual(['Fifth', 'Fourth', 'Third', 'Second', 'First', 'Before']);
    await screenshot('tail');

    // Filtered by category: only tail-2's events, still live.
    await page.getByLabel('Categories').fill('other');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), poll).toMatch(/^Live · filtered by other/);
    await append('other-1', [{ type: 'Elsewhere', data: {} }]);
    await expect.poll(types, poll).toEqual(['Elsewhere']);
    expect(new URL(page.url()).search).toBe('?category=other');

    // Bounded: the newest 500 stay, the older ones go. Past 100 the table is windowed: it
    // says it has 500 rows (and the header), only those in view are in the DOM.
    await append(
      'other-2',
      Array.from({ length: 520 }, (_, i) => ({ type: `Burst${i}`, data: {} })),
    );
    const table = page.getByRole('table', { name: 'Live events' });
    await expect.poll(() => table.getAttribute('aria-rowcount'), poll).toBe('501');
    expect((await types()).slice(0, 2)).toEqual(['Burst519', 'Burst518']);
    expect((await types()).length).toBeLessThan(100);
    await page.locator('.windowed').evaluate((frame) => {
      (frame as unknown as { scrollTop: number }).scrollTop = 1e9;
    });
    await expect.poll(async () => (await types()).at(-1), poll).toBe('Burst20');
  });

  it('browses a stream a page at a time, forward and backward', async () => {
    await append(
      'account-7',
      Array.from({ length: 45 }, (_, i) => ({ type: 'Deposited', data: { amount: i + 1 } })),
    );
    await page.goto(`${server.url}/ui/streams`);
    await expect
      .poll(async () => (await rows('Recently changed streams')).map((cells) => cells[0]), poll)
      .toContain('account-7');
    await page.getByLabel('Stream id').fill('account-7');
    await page.getByRole('button', { name: 'Open stream' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('Stream account-7');

    const versions = async () => {
      const cells = await rows('Events of account-7');
      return [Number(cells[0]?.[0]), Number(cells.at(-1)?.[0]), cells.length];
    };
    const button = (name: string) =>
      page.getByRole('navigation', { name: 'Pages of the stream' }).getByRole('button', { name });
    await expect.poll(versions, poll).toEqual([1, 20, 20]);
    expect(await button('Older').isDisabled()).toBe(true);
    await button('Newer').click();
    await expect.poll(versions, poll).toEqual([21, 40, 20]);
    await button('Newer').click();
    await expect.poll(versions, poll).toEqual([41, 45, 5]);
    expect(await button('Newer').isDisabled()).toBe(true);
    await button('Older').click();
    await expect.poll(versions, poll).toEqual([21, 40, 20]);
    expect(new URL(page.url()).search).toBe('?from=40&dir=backward');
    await button('Older').click();
    await expect.poll(versions, poll).toEqual([1, 20, 20]);
    await button('Latest').click();
    await expect.poll(versions, poll).toEqual([26, 45, 20]);
    await screenshot('stream');
    // The page is in the URL: back goes to the page before.
    await page.goBack();
    await expect.poll(versions, poll).toEqual([1, 20, 20]);
  });

  it("shows an event's data, metadata, who / when / why, and links to its cause", async () => {
    const causeId = randomUUID();
    const effectId = randomUUID();
    await append('customer-9', [
      { id: causeId, type: 'CustomerRegistered', data: { name: 'Ada' }, metadata: { correlationId: 'req-9' } },
    ]);
    await append('account-9', [
      {
        id: effectId,
        type: 'AccountOpened',
        data: { owner: 'Ada', limits: { overdraft: 100, daily: [1, 2] } },
        metadata: { actor: 'ada', reason: 'signup', correlationId: 'req-9', causationId: causeId },
      },
    ]);
    const stored = (await server.request('GET', `/events/${effectId}`)).body;
    // Sealed up to here; the next event is not.
    const store = await openEventStore({ client: server.client, schema: server.schema, closeClient: false });
    try {
      await integrity(store).seal();
    } finally {
      await store.close();
    }
    await append('account-9', [{ type: 'Later', data: {} }]);

    await page.goto(`${server.url}/ui/events/${effectId}`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('AccountOpened');
    const facts = async (section: string) => {
      const region = page.getByRole('region', { name: section });
      const terms = await region.locator('dt').allTextContents();
      const values = await region.locator('dd').allTextContents();
      return Object.fromEntries(terms.map((term, i) => [term, values[i]]));
    };
    expect(await facts('Where')).toMatchObject({
      'Event id': effectId,
      Stream: 'account-9',
      Version: '1',
      Position: String(stored.position),
      Seal: 'sealed',
    });
    expect(await facts('Who, when, why')).toMatchObject({
      Actor: 'ada',
      Reason: 'signup',
      'Recorded at': stored.recordedAt,
      'Correlation id': 'req-9',
      'Causation id': causeId,
      'Caused by': `CustomerRegistered · customer-9 v1 (position ${stored.position - 1})`,
    });
    const data = page.getByRole('region', { name: 'Data', exact: true });
    await expect.poll(() => data.textContent(), poll).toMatch(/owner: "Ada"[\s\S]*overdraft: 100/);
    await screenshot('event');
    expect(await page.getByRole('region', { name: 'Metadata', exact: true }).textContent()).toMatch(/actor: "ada"/);
    // Collapsible: the data's root folds away.
    await data.locator('summary').first().click();
    await expect.poll(() => data.getByText('owner: "Ada"').isVisible(), poll).toBe(false);

    // To its cause, whose page lists what it caused.
    const audit = page.getByRole('region', { name: 'Who, when, why' });
    // Its correlation id opens the request's causal tree (views.test.ts follows it).
    expect(await audit.getByRole('link', { name: 'req-9' }).getAttribute('href')).toBe('/ui/audit/correlations/req-9');
    await audit.getByRole('link', { name: /^CustomerRegistered/ }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('CustomerRegistered');
    expect(new URL(page.url()).pathname).toBe(`/ui/events/${causeId}`);
    const caused = page.getByRole('list', { name: 'Caused by this event' }).getByRole('link');
    await expect
      .poll(() => caused.allTextContents(), poll)
      .toEqual([`AccountOpened · account-9 v1 (position ${stored.position})`]);
    await caused.click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('AccountOpened');

    // An unknown event or stream is the server's problem, shown as such.
    await page.goto(`${server.url}/ui/events/${randomUUID()}`);
    await expect.poll(() => page.getByRole('alert').textContent(), poll).toMatch(/^404 EVENT_NOT_FOUND: /);
    await page.goto(`${server.url}/ui/streams/no-such-stream`);
    await expect.poll(() => page.getByRole('alert').textContent(), poll).toMatch(/^404 STREAM_NOT_FOUND: /);

    // An event after the last seal says so.
    await page.goto(`${server.url}/ui/streams/account-9`);
    await page.getByRole('link', { name: 'Later' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('Later');
    await expect.poll(async () => (await facts('Where')).Seal, poll).toMatch(/^not sealed yet/);
  });

  it("shows the store's head position and append rates from the server's metrics", async () => {
    await page.goto(`${server.url}/ui/?every=0.5`);
    const tile = (name: string) => page.getByRole('region', { name, exact: true }).locator('.tile-value');
    const head = (await server.request('GET', '/position')).body.head as number;
    await expect.poll(() => tile('Head position').textContent(), poll).toBe(head.toLocaleString('en-US'));
    await append('dash-1', [{ type: 'Ticked', data: {} }]);
    await expect.poll(() => tile('Head position').textContent(), poll).toBe((head + 1).toLocaleString('en-US'));
    await expect.poll(() => tile('Appends/s').textContent(), poll).toMatch(/^\d/);
    await screenshot('dashboard');
    expect(await tile('p99 append latency').textContent()).toMatch(/^\d[\d.,]* ms$/);
    expect(Number(await tile('SSE clients').textContent())).toBeGreaterThanOrEqual(0);
  });
});

afterAll(async () => {
  await browser?.close();
});
