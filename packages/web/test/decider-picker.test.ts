/**
 * The time-travel view's decider picker in real Chromium against a server with the bank
 * app's deciders: the default folds merged event data; picking `account` folds the balance,
 * the choice is in the URL (a deep link keeps it, stepping keeps it), and going back to the
 * default drops it.
 */
import { bankAccount, bankCustomer } from '@annals/example-bank';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../../server/test/support.js';
import { chromiumFor, ensureBuilt, launchChromium } from './support/browser.js';

const hasChromium = chromiumFor("the time-travel decider picker's browser test");
const poll = { timeout: 10_000, interval: 20 };

let browser: Browser;
const suite = hasChromium ? describe : describe.skip;

suite.each(backends)('the time-travel decider picker on $name', (backend) => {
  let server: TestServer;
  let page: Page;

  beforeAll(async () => {
    const [launched, started] = await Promise.all([
      browser ?? launchChromium(),
      startTestServer(backend, {
        app: { deciders: { account: { decider: bankAccount }, customer: { decider: bankCustomer } } },
      }),
      ensureBuilt(),
    ]);
    browser = launched;
    server = started;
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.setDefaultTimeout(10_000);
  }, 120_000);

  afterAll(async () => {
    await page?.close();
    await server?.cleanup();
  });

  it('folds the state with the decider picked, kept in the URL', async () => {
    const appended = await server.request('POST', '/streams/account-7/events', {
      events: [
        { type: 'AccountOpened', data: { owner: 'ada', overdraftLimit: 0 } },
        { type: 'MoneyDeposited', data: { amount: 300 } },
        { type: 'MoneyDeposited', data: { amount: 200 } },
      ],
    });
    expect(appended.status, appended.text).toBe(201);

    await page.goto(`${server.url}/ui/streams/account-7/time`);
    const picker = page.getByLabel('State folded with');
    const state = (version: number) => page.getByRole('region', { name: `State at version ${version}` });
    // The server's default: each event's data merged over the last.
    await expect.poll(() => state(3).textContent(), poll).toMatch(/amount: 200/);
    expect(await state(3).textContent()).not.toMatch(/balance/);
    await expect.poll(() => picker.isEnabled(), poll).toBe(true);
    expect(await picker.inputValue()).toBe('');
    expect(await picker.locator('option').allTextContents()).toEqual([
      'Merged event data (the default)',
      'Decider account',
      'Decider customer',
    ]);

    await picker.selectOption('account');
    await expect.poll(() => new URL(page.url()).search, poll).toBe('?version=3&decider=account');
    await expect.poll(() => state(3).textContent(), poll).toMatch(/balance: 500/);
    expect(await state(3).textContent()).toMatch(/status: "open"/);

    // Stepping keeps the decider.
    await page.getByRole('button', { name: 'Previous' }).click();
    await expect.poll(() => new URL(page.url()).search, poll).toBe('?version=2&decider=account');
    await expect.poll(() => state(2).textContent(), poll).toMatch(/balance: 300/);

    // A deep link keeps it.
    await page.goto(`${server.url}/ui/streams/account-7/time?version=3&decider=account`);
    await expect.poll(() => state(3).textContent(), poll).toMatch(/balance: 500/);
    await expect.poll(() => picker.inputValue(), poll).toBe('account');

    // Back to the default: no decider in the URL, merged data again.
    await picker.focus();
    await picker.selectOption('');
    await expect.poll(() => new URL(page.url()).search, poll).toBe('?version=3');
    await expect.poll(() => state(3).textContent(), poll).toMatch(/amount: 200/);

    // A name the app does not have: shown as asked, and the server's refusal said.
    await page.goto(`${server.url}/ui/streams/account-7/time?version=3&decider=ledger`);
    await expect.poll(() => page.getByRole('alert').first().textContent(), poll).toMatch(/no decider "ledger"/);
    await expect.poll(() => picker.inputValue(), poll).toBe('ledger');
  });
});

afterAll(async () => {
  await browser?.close();
});
