import { join } from 'node:path';
import type { SqlClient } from '@annals/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bankPersonalData } from '../../../examples/bank/customer.js';
import { freshSchema, postgresBackend } from '../../core/test/support/backends.js';
import { createApiKey, type RunningServer, setupApiKeys, startServer } from '../../server/src/index.js';
import { backends, startTestServer, type TestServer } from '../../server/test/support.js';
import { chromiumFor, ensureBuilt, launchChromium } from './support/browser.js';

const hasChromium = chromiumFor("the admin UI's long-list browser tests");

const screenshots = process.env.ANNALS_UI_SCREENSHOTS;
const poll = { timeout: 20_000, interval: 20 };
const total = 10_000;
const batch = 1000;

let browser: Browser;
const suite = hasChromium ? describe : describe.skip;

suite.each(backends)('the admin UI with long lists and personal data on $name', (backend) => {
  let server: TestServer;
  let page: Page;

  beforeAll(async () => {
    const [launched, started] = await Promise.all([
      browser ?? launchChromium(),
      startTestServer(backend, { app: { personalData: bankPersonalData } }),
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

  async function append(streamId: string, events: object[]): Promise<void> {
    const response = await server.request('POST', `/streams/${streamId}/events`, { events });
    expect(response.status, response.text).toBe(201);
  }

  async function screenshot(name: string): Promise<void> {
    if (screenshots && backend.name === 'pglite') await page.screenshot({ path: join(screenshots, `${name}.png`) });
  }

  /** The rows of the table named `name` in the DOM (not the spacers), as their cells' text. */
  const rows = (name: string) =>
    page
      .getByRole('table', { name })
      .locator('tbody tr:not(.spacer)')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('td'), (td: { textContent: string | null }) => (td.textContent ?? '').trim()),
        ),
      );

  it('shows a 10,000-event stream a page of 10,000 at a time, windowed, and measures it', async () => {
    const seeded = performance.now();
    for (let from = 0; from < total; from += batch) {
      await append(
        'big-1',
        Array.from({ length: batch }, (_, i) => ({
          type: 'Measured',
          data: { n: from + i + 1, note: 'a reading' },
          metadata: { actor: 'sensor', reason: 'sampled' },
        })),
      );
    }
    const seedMs = performance.now() - seeded;

    // Warm: the app's files are cached as they would be for a returning admin.
    await page.goto(`${server.url}/ui/streams`);
    await page.getByRole('heading', { level: 1, name: 'Streams' }).waitFor();

    const started = performance.now();
    await page.goto(`${server.url}/ui/streams/big-1?dir=forward&size=10000`);
    const table = page.getByRole('table', { name: 'Events of big-1' });
    await table.locator('tbody tr[data-index="0"]').waitFor({ state: 'visible', timeout: 60_000 });
    const firstRowsMs = performance.now() - started;
    const inDom = await table.locator('tbody tr').count();
    const cells = await rows('Events of big-1');
    console.info(
      `[${backend.name}] a ${total.toLocaleString('en-US')}-event stream: first rows visible ${firstRowsMs.toFixed(0)} ms ` +
        `after navigation; ${cells.length} event rows in the DOM (${inDom} with spacers); seeded in ${seedMs.toFixed(0)} ms`,
    );
    expect(cells[0]?.[0]).toBe('1');
    expect(cells.length).toBeGreaterThan(10);
    expect(inDom).toBeLessThan(200);
    expect(await table.getAttribute('aria-rowcount')).toBe(String(total + 1));
    expect(
      await page
        .getByRole('navigation', { name: 'Pages of the stream' })
        .getByText(/^Versions/)
        .textContent(),
    ).toBe('Versions 1–10000 of 10000');
    // Fixed row height: what the windowing computes with.
    const heights = await table
      .locator('tbody tr[data-index]')
      .evaluateAll((trs) => [...new Set(trs.map((tr) => (tr as unknown as { offsetHeight: number }).offsetHeight))]);
    expect(heights).toEqual([32]);
    await screenshot('stream-10000');

    // Scrolled to the end: the last versions, still few rows.
    await page.locator('.windowed').evaluate((frame) => {
      (frame as unknown as { scrollTop: number; scrollHeight: number }).scrollTop = 1e9;
    });
    await expect.poll(async () => (await rows('Events of big-1')).at(-1)?.[0], poll).toBe(String(total));
    expect((await rows('Events of big-1')).length).toBeLessThan(200);

    // The keyboard: from the first row's link, ArrowDown moves row by row, End to the last.
    await page.locator('.windowed').evaluate((frame) => {
      (frame as unknown as { scrollTop: number }).scrollTop = 0;
    });
    await expect.poll(async () => (await rows('Events of big-1'))[0]?.[0], poll).toBe('1');
    await table.locator('tbody tr[data-index="0"] a').focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    const focusedVersion = () =>
      page.evaluate(() => document.activeElement?.closest('tr')?.querySelector('td')?.textContent ?? null);
    await expect.poll(focusedVersion, poll).toBe('3');
    await page.keyboard.press('End');
    await expect.poll(focusedVersion, poll).toBe(String(total));
    await page.keyboard.press('PageUp');
    await expect.poll(async () => Number(await focusedVersion()), poll).toBeLessThan(total);
    await page.keyboard.press('Home');
    await expect.poll(focusedVersion, poll).toBe('1');
    // Enter follows the focused row's link, to its event.
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('Measured');

    // The page size is a choice, kept in the URL.
    await page.goto(`${server.url}/ui/streams/big-1`);
    await expect.poll(async () => (await rows('Events of big-1')).length, poll).toBe(20);
    await page.getByLabel('Page size').selectOption('1000');
    await expect.poll(() => new URL(page.url()).search, poll).toBe('?from=1&dir=forward&size=1000');
    await expect
      .poll(
        () =>
          page
            .getByRole('navigation', { name: 'Pages of the stream' })
            .getByText(/^Versions/)
            .textContent(),
        poll,
      )
      .toBe('Versions 1–1000 of 10000');
  }, 180_000);

  it('forgets a data subject behind a confirmation; its fields then read as null', async () => {
    await append('customer-c7', [
      { type: 'CustomerRegistered', data: { customerId: 'c7', name: 'Ada Lovelace', email: 'ada@example.org' } },
      { type: 'CustomerEmailChanged', data: { customerId: 'c7', email: 'ada@new.org' } },
    ]);
    const registered = (await server.request('GET', '/streams/customer-c7/events')).body.events[0];

    await page.goto(`${server.url}/ui/subjects`);
    await page.getByRole('link', { name: 'Personal data' }).waitFor();
    expect(await page.getByRole('link', { name: 'Personal data' }).getAttribute('aria-current')).toBe('page');
    await page.getByLabel('Subject id').fill('c7');
    await page.getByRole('button', { name: 'Show subject' }).click();
    expect(new URL(page.url()).pathname).toBe('/ui/subjects/c7');
    await expect
      .poll(async () => (await rows('Events of subject c7')).map((cells) => cells[3]), poll)
      .toEqual(['CustomerRegistered', 'CustomerEmailChanged']);

    // The confirmation: Forget stays disabled until the id is typed again and a reason given.
    await page.getByRole('button', { name: 'Forget…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Forget subject c7?' });
    await dialog.waitFor();
    const confirm = dialog.getByRole('button', { name: 'Forget c7' });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/^Type c7 to confirm/).fill('c8');
    await dialog.getByLabel(/^Reason/).fill('erasure request 12');
    expect(await confirm.isDisabled()).toBe(true);
    // Cancel leaves everything as it was.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await expect.poll(() => dialog.count(), poll).toBe(0);
    expect((await server.request('GET', `/events/${registered.id}`)).body.data.name).toBe('Ada Lovelace');

    await page.getByRole('button', { name: 'Forget…' }).click();
    await dialog.getByLabel(/^Type c7 to confirm/).fill('c7');
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/^Reason/).fill('erasure request 12');
    await screenshot('forget');
    await confirm.click();
    const result = page.getByRole('region', { name: 'Result' });
    await expect
      .poll(() => result.getByRole('status').textContent(), poll)
      .toBe('Forgotten: 2 events redacted, 0 snapshots dropped.');
    expect(await result.textContent()).toMatch(/forgotten: true[\s\S]*events: 2/);
    await screenshot('forgotten');
    // The list reloads: the events say what was redacted.
    await expect
      .poll(async () => (await rows('Events of subject c7')).map((cells) => cells[5]), poll)
      .toEqual(['name, email', 'email']);

    // The event's page: the subject's fields read as null, its id stays.
    await page.goto(`${server.url}/ui/events/${registered.id}`);
    const data = page.getByRole('region', { name: 'Data', exact: true });
    await expect.poll(() => data.textContent(), poll).toMatch(/customerId: "c7"/);
    expect(await data.textContent()).toMatch(/name: null/);
    expect(await data.textContent()).toMatch(/email: null/);
    expect(await data.textContent()).not.toMatch(/Ada/);

    // Forgetting again: nothing to forget, said so.
    await page.goto(`${server.url}/ui/subjects/c7`);
    await page.getByRole('button', { name: 'Forget…' }).click();
    await dialog.getByLabel(/^Type c7 to confirm/).fill('c7');
    await dialog.getByLabel(/^Reason/).fill('again');
    await confirm.click();
    await expect.poll(() => result.getByRole('status').textContent(), poll).toMatch(/^Nothing to forget/);
  });
});

const authSuite = hasChromium && process.env.DATABASE_URL ? describe : describe.skip;

authSuite('the personal-data view with authentication on', () => {
  let client: SqlClient;
  let server: RunningServer;
  let page: Page;
  const schema = freshSchema('ui');
  const directory = freshSchema('keys');
  let reader: string;

  beforeAll(async () => {
    client = postgresBackend.client();
    await setupApiKeys(client, { directory, serverRoles: [] });
    reader = (await createApiKey(client, { name: 'ui-read', tenant: 'default', scopes: ['read'] }, { directory }))
      .secret;
    const [launched, started] = await Promise.all([
      browser ?? launchChromium(),
      startServer({
        client,
        port: 0,
        store: { schema, closeClient: false },
        auth: { directory },
        app: { personalData: bankPersonalData },
      }),
      ensureBuilt(),
    ]);
    browser = launched;
    server = started;
    page = await browser.newPage();
    page.setDefaultTimeout(20_000);
  }, 120_000);

  afterAll(async () => {
    await page?.close();
    await server?.close();
    await client?.exec(`drop schema if exists "${schema}" cascade`);
    await client?.exec(`drop schema if exists "${directory}" cascade`);
  });

  it('shows a key without the admin scope the forbidden state, for the list and for Forget', async () => {
    await page.goto(`${server.url}/ui/subjects/c7`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('Sign in');
    await page.getByLabel('API key').fill(reader);
    await page.getByLabel('API key').press('Enter');
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent(), poll).toBe('Subject c7');
    const events = page.getByRole('region', { name: 'Its events' });
    await expect.poll(() => events.getByRole('alert').textContent(), poll).toMatch(/lacks the admin scope/);

    await page.getByRole('button', { name: 'Forget…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Forget subject c7?' });
    await dialog.getByLabel(/^Type c7 to confirm/).fill('c7');
    await dialog.getByLabel(/^Reason/).fill('erasure request 12');
    await dialog.getByRole('button', { name: 'Forget c7' }).click();
    const forget = page.getByRole('region', { name: 'Forget' });
    await expect
      .poll(() => forget.getByRole('alert').textContent(), poll)
      .toMatch(/^Not allowed.*lacks the admin scope/);
    // Still signed in: a 403 is not a 401.
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
  });
});

afterAll(async () => {
  await browser?.close();
});
