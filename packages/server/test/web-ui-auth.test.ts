import type { SqlClient } from '@annals/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSchema, postgresBackend } from '../../core/test/support/backends.js';
import { chromiumFor, ensureBuilt, launchChromium } from '../../web/test/support/browser.js';
import { createApiKey, type RunningServer, setupApiKeys, startServer } from '../src/index.js';

const hasChromium = chromiumFor('the admin UI sign-in tests');
const hasPostgres = Boolean(process.env.DATABASE_URL);
if (hasChromium && !hasPostgres) {
  console.warn('Skipping the admin UI sign-in tests: they run on PostgreSQL only (set DATABASE_URL).');
}

const poll = { timeout: 10_000, interval: 50 };

const suite = hasChromium && hasPostgres ? describe : describe.skip;

suite('the admin UI with authentication on', () => {
  let browser: Browser;
  let page: Page;
  let client: SqlClient;
  let server: RunningServer;
  const schema = freshSchema('ui');
  const directory = freshSchema('keys');
  let admin: string;
  let reader: string;

  beforeAll(async () => {
    client = postgresBackend.client();
    await setupApiKeys(client, { directory, serverRoles: [] });
    admin = (await createApiKey(client, { name: 'ui', tenant: 'default', scopes: ['admin'] }, { directory })).secret;
    reader = (await createApiKey(client, { name: 'ui-read', tenant: 'default', scopes: ['read'] }, { directory }))
      .secret;
    const [launched, started] = await Promise.all([
      launchChromium(),
      startServer({ client, port: 0, store: { schema, closeClient: false }, auth: { directory } }),
      ensureBuilt(),
    ]);
    browser = launched;
    server = started;
    page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    await append('account-1', ['Opened', 'Deposited']);
    await append('order-1', ['Placed']);
  });

  afterAll(async () => {
    await page?.close();
    await browser?.close();
    await server?.close();
    await client?.exec(`drop schema if exists "${schema}" cascade`);
    await client?.exec(`drop schema if exists "${directory}" cascade`);
  });

  async function append(streamId: string, types: string[], key = admin): Promise<void> {
    const response = await fetch(`${server.url}/streams/${streamId}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ events: types.map((type) => ({ type, data: { type } })) }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(response.status, await response.text()).toBe(201);
  }

  /** The text of each body row's cells of the table named `name`. */
  const rows = (name: string) =>
    page
      .getByRole('table', { name })
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('td'), (td: { textContent: string | null }) => td.textContent ?? ''),
        ),
      );

  const heading = () => page.getByRole('heading', { level: 1 }).textContent();
  const storedKeys = () =>
    // As text: this file is typed without the DOM's globals.
    page.evaluate<{ session: string | null; local: number }>(
      "({ session: sessionStorage.getItem('annals.apiKey'), local: localStorage.length })",
    );

  async function signIn(key: string): Promise<void> {
    await expect.poll(heading, poll).toBe('Sign in');
    const input = page.getByLabel('API key');
    await input.fill(key);
    // The keyboard way: Enter in the field submits the form.
    await input.press('Enter');
  }

  it('protects the API: without a key every call is 401, the UI itself is public', async () => {
    const refused = await fetch(`${server.url}/position`, { signal: AbortSignal.timeout(10_000) });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="annals"');
    expect(((await refused.json()) as { code: string }).code).toBe('UNAUTHENTICATED');
    expect((await fetch(`${server.url}/ui`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
  });

  it('asks for a key on /ui, and keeps the form with the reason on a wrong one', async () => {
    await page.goto(`${server.url}/ui`);
    await expect.poll(heading, poll).toBe('Sign in');
    const input = page.getByLabel('API key');
    expect(await input.getAttribute('type')).toBe('password');
    // Focused at once, so the keyboard can start typing.
    await expect
      .poll(() => page.evaluate<string | null | undefined>("document.activeElement?.getAttribute('name')"), poll)
      .toBe('key');
    expect(await page.locator('#sign-in-why').textContent()).toContain('The server says: credentials are missing.');
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);

    await input.fill(`ank_${'0'.repeat(16)}_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), poll).toBe('The server says: the key is not valid.');
    expect(await heading()).toBe('Sign in');
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    expect(await storedKeys()).toEqual({ session: null, local: 0 });
  });

  it('signs in with the key, keeps it in sessionStorage only, and shows the streams and their events', async () => {
    await signIn(admin);
    await expect.poll(heading, poll).toBe('Dashboard');
    expect(await storedKeys()).toEqual({ session: admin, local: 0 });
    await page.getByRole('link', { name: 'Streams' }).click();
    await expect
      .poll(async () => (await rows('Recently changed streams')).map((cells) => cells[0]).sort(), poll)
      .toEqual(['account-1', 'order-1']);
    await page.getByRole('link', { name: 'account-1' }).first().click();
    await expect.poll(heading, poll).toBe('Stream account-1');
    await expect
      .poll(async () => (await rows('Events of account-1')).map((cells) => cells[0]), poll)
      .toEqual(['1', '2']);
    expect((await rows('Events of account-1')).map((cells) => cells.join(' '))).toEqual([
      expect.stringContaining('Opened'),
      expect.stringContaining('Deposited'),
    ]);
    // Reloaded, the tab still holds the key.
    await page.reload();
    await expect.poll(heading, poll).toBe('Stream account-1');
  });

  it('follows the live tail over SSE through fetch, with the key', async () => {
    const subscribes: Record<string, string>[] = [];
    const onRequest = async (request: import('playwright-core').Request) => {
      if (new URL(request.url()).pathname === '/subscribe') subscribes.push(await request.allHeaders());
    };
    page.on('request', onRequest);
    try {
      await page.getByRole('link', { name: 'Live tail' }).click();
      await expect.poll(() => page.getByRole('status').textContent(), poll).toMatch(/^Live/);
      const types = async () => (await rows('Live events')).map((cells) => cells[4]);
      await expect.poll(types, poll).toEqual(['Placed', 'Deposited', 'Opened']);
      await append('account-1', ['Withdrawn']);
      await expect.poll(types, poll).toEqual(['Withdrawn', 'Placed', 'Deposited', 'Opened']);
      expect(subscribes.length).toBeGreaterThan(0);
      expect(subscribes[0]).toMatchObject({ authorization: `Bearer ${admin}`, accept: 'text/event-stream' });
      // Pause still holds what arrives on the same connection.
      await page.getByRole('button', { name: 'Pause' }).click();
      await append('order-1', ['Shipped']);
      await expect.poll(() => page.getByRole('status').textContent(), poll).toMatch(/^Paused: 1 new event held/);
      await page.getByRole('button', { name: 'Resume' }).click();
      await expect.poll(types, poll).toEqual(['Shipped', 'Withdrawn', 'Placed', 'Deposited', 'Opened']);
    } finally {
      page.off('request', onRequest);
    }
  });

  it('signs out: the key goes and the sign-in shows again', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect.poll(heading, poll).toBe('Sign in');
    expect(await storedKeys()).toEqual({ session: null, local: 0 });
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
    // And a new page load asks too.
    await page.goto(`${server.url}/ui/streams`);
    await expect.poll(heading, poll).toBe('Sign in');
  });

  it('shows a read-only key what it lacks on the tail, not the sign-in', async () => {
    await signIn(reader);
    await expect.poll(heading, poll).toBe('Streams');
    await expect
      .poll(async () => (await rows('Recently changed streams')).map((cells) => cells[0]).sort(), poll)
      .toEqual(['account-1', 'order-1']);
    await page.getByRole('link', { name: 'Live tail' }).click();
    await expect.poll(heading, poll).toBe('Live tail');
    const alert = page.getByRole('alert');
    await expect.poll(() => alert.textContent(), poll).toContain('This key lacks the subscribe scope.');
    expect(await alert.getByRole('heading').textContent()).toBe('Not allowed');
    expect(await page.getByRole('status').textContent()).toMatch(/^Not connected/);
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(1);
    expect(await storedKeys()).toEqual({ session: reader, local: 0 });
  });
});
