/**
 * The admin UI's time travel, audit, read side and integrity views end to end: Debian's
 * Chromium (playwright-core) against a real server on each backend, as in ui.test.ts. A
 * stream stepped through with the keyboard shows the field its event changed; a time jumps to
 * its version; what changed between two positions; an actor's events; a request's causal
 * tree, nested and collapsible; the checkpoints of two running subscriptions, one with a
 * parked event replayed by the app's handler and one refused (no handler); verify with no
 * broken links, then with one after an edit past the trigger, linked to its event.
 *
 * With ANNALS_UI_SCREENSHOTS=<dir> (docs/ui), each view is written there as a PNG (PGlite).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { type EventStore, integrity, openEventStore, type RecordedEvent, subscriptions } from '@annals/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../../server/test/support.js';
import { chromiumFor, ensureBuilt, launchChromium } from './support/browser.js';

const hasChromium = chromiumFor("the admin UI views' browser tests");

const screenshots = process.env.ANNALS_UI_SCREENSHOTS;
const poll = { timeout: 10_000, interval: 50 };

/** Runs `sql` with triggers off (an edit the store refuses), as a superuser can. */
async function pastTheTrigger(server: TestServer, sql: string): Promise<void> {
  await server.client.transaction(async (tx) => {
    await tx.exec(`set local session_replication_role = replica; ${sql}`);
  });
}

let browser: Browser;
const suite = hasChromium ? describe : describe.skip;

suite.each(backends)('the admin UI views on $name', (backend) => {
  let server: TestServer;
  let store: EventStore;
  let page: Page;
  const replayed: RecordedEvent[] = [];

  beforeAll(async () => {
    const [launched, started] = await Promise.all([
      browser ?? launchChromium(),
      // The app's handler of "mailer": what Replay delivers parked events to.
      startTestServer(backend, {
        app: {
          subscriptions: {
            mailer: (event) => {
              replayed.push(event);
            },
          },
        },
      }),
      ensureBuilt(),
    ]);
    browser = launched;
    server = started;
    store = await openEventStore({ client: server.client, schema: server.schema, closeClient: false });
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await page?.close();
    await store?.close();
    await server?.cleanup();
  });

  async function append(streamId: string, events: object[]): Promise<{ positions: number[] }> {
    const response = await server.request('POST', `/streams/${streamId}/events`, { events });
    expect(response.status, response.text).toBe(201);
    return response.body;
  }

  async function screenshot(name: string): Promise<void> {
    if (screenshots && backend.name === 'pglite') {
      await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
    }
  }

  const heading = () => page.getByRole('heading', { level: 1 }).textContent();
  const rows = (name: string) =>
    page
      .getByRole('table', { name })
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('td'), (td: { textContent: string | null }) => (td.textContent ?? '').trim()),
        ),
      );
  const head = async () => (await server.request('GET', '/position')).body.head as number;

  it("steps through a stream's versions with the keyboard, seeing what each event changed", async () => {
    const before = await head();
    await append('account-1', [
      { type: 'Opened', data: { owner: 'Ada', balance: 0 }, metadata: { actor: 'teller' } },
      { type: 'Deposited', data: { balance: 50 }, metadata: { actor: 'ada', reason: 'salary' } },
      { type: 'Tagged', data: { balance: 50, tags: ['vip'] } },
    ]);
    await page.goto(`${server.url}/ui/streams/account-1`);
    await page.getByRole('link', { name: /^Time travel/ }).click();
    await expect.poll(heading, poll).toBe('Time travel: account-1');
    expect(new URL(page.url()).pathname).toBe('/ui/streams/account-1/time');

    const slider = page.getByRole('slider');
    const changes = (version: number) => rows(`Changes at version ${version}`);
    // It opens at the last version.
    await expect
      .poll(() => changes(3), poll)
      .toEqual([
        ['changed', 'lastEvent', '"Deposited"', '"Tagged"'],
        ['added', 'tags', '—', '["vip"]'],
      ]);
    await slider.focus();
    await page.keyboard.press('Home');
    await expect
      .poll(() => changes(1), poll)
      .toEqual([
        ['added', 'owner', '—', '"Ada"'],
        ['added', 'balance', '—', '0'],
        ['added', 'lastEvent', '—', '"Opened"'],
      ]);
    await page.keyboard.press('ArrowRight');
    await expect
      .poll(() => changes(2), poll)
      .toEqual([
        ['changed', 'balance', '0', '50'],
        ['changed', 'lastEvent', '"Opened"', '"Deposited"'],
      ]);
    expect(new URL(page.url()).search).toBe('?version=2');
    // The slider keeps the focus (visible), and the state is the folded one.
    expect(await slider.evaluate((element) => element === document.activeElement)).toBe(true);
    expect(await slider.evaluate((element) => getComputedStyle(element).outlineStyle)).toBe('solid');
    const state = page.getByRole('region', { name: 'State at version 2' });
    await expect.poll(() => state.textContent(), poll).toMatch(/owner: "Ada"[\s\S]*balance: 50/);
    expect(await page.getByRole('region', { name: /^Version 2/ }).textContent()).toMatch(/by ada · salary/);
    await screenshot('time-travel');
    // The buttons step too; a reload keeps the version.
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(() => new URL(page.url()).search, poll).toBe('?version=3');
    await page.goto(`${server.url}/ui/streams/account-1/time?version=1`);
    await expect.poll(() => slider.inputValue(), poll).toBe('1');

    // A time jumps to the state then: far ahead is the last version, before the first is refused.
    const time = page.getByLabel(/^State at a time/);
    await time.fill('2999-01-01T00:00:00');
    await page.getByRole('button', { name: 'Go to that time' }).click();
    await expect.poll(() => new URL(page.url()).search, poll).toBe('?version=3');
    await time.fill('2001-01-01T00:00:00');
    await page.getByRole('button', { name: 'Go to that time' }).click();
    await expect.poll(() => page.getByRole('alert').textContent(), poll).toMatch(/^400 .*before the first event/);

    // What changed in the whole store between two positions.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Changes' }).click();
    await page.getByLabel('From').fill(String(before));
    await page.getByLabel('To').fill(String(await head()));
    await page.getByRole('button', { name: 'Show changes' }).click();
    await expect
      .poll(() => page.getByRole('heading', { level: 2 }).first().textContent(), poll)
      .toBe('1 stream changed');
    expect(await rows('Changes of account-1')).toEqual([
      ['added', 'owner', '—', '"Ada"'],
      ['added', 'balance', '—', '50'],
      ['added', 'lastEvent', '—', '"Tagged"'],
      ['added', 'tags', '—', '["vip"]'],
    ]);
    expect(new URL(page.url()).search).toBe(`?from=${before}&to=${before + 3}`);
    await screenshot('changes');
  });

  it("shows an actor's events and a request's causal tree, nested and collapsible", async () => {
    const [order, payment, capture, stock] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await append('order-7', [
      { id: order, type: 'OrderPlaced', data: { total: 30 }, metadata: { actor: 'ada', correlationId: 'req-7' } },
    ]);
    await append('payment-7', [
      {
        id: payment,
        type: 'PaymentRequested',
        data: { amount: 30 },
        metadata: { actor: 'shop', correlationId: 'req-7', causationId: order },
      },
      {
        id: capture,
        type: 'PaymentCaptured',
        data: {},
        metadata: { actor: 'psp', correlationId: 'req-7', causationId: payment },
      },
    ]);
    await append('stock-7', [
      { id: stock, type: 'StockReserved', data: {}, metadata: { correlationId: 'req-7', causationId: order } },
    ]);

    // From an event's page, its correlation id opens the tree.
    await page.goto(`${server.url}/ui/events/${capture}`);
    await expect.poll(heading, poll).toBe('PaymentCaptured');
    await page.getByRole('region', { name: 'Who, when, why' }).getByRole('link', { name: 'req-7' }).click();
    await expect.poll(heading, poll).toBe('Causal tree of req-7');
    expect(new URL(page.url()).pathname).toBe('/ui/audit/correlations/req-7');
    const tree = page.getByRole('region', { name: 'Events of req-7, each under its cause' });
    const links = () => tree.getByRole('link').allTextContents();
    await expect.poll(links, poll).toEqual(['OrderPlaced', 'PaymentRequested', 'PaymentCaptured', 'StockReserved']);
    // Nested as caused: the capture is two levels under the order.
    const depth = (type: string) =>
      tree.getByRole('link', { name: type }).evaluate((a) => {
        let n = 0;
        for (let node = a.parentElement; node; node = node.parentElement) if (node.tagName === 'UL') n++;
        return n;
      });
    expect([await depth('OrderPlaced'), await depth('PaymentRequested'), await depth('PaymentCaptured')]).toEqual([
      1, 2, 3,
    ]);
    expect(await tree.textContent()).toMatch(/PaymentCaptured · payment-7 v2 · .+ · by psp/);
    await screenshot('causal-tree');
    // Collapsible with the keyboard: Enter on the root's summary hides what it caused.
    const root = tree.locator('summary').first();
    await root.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => tree.getByRole('link', { name: 'PaymentCaptured' }).isVisible(), poll).toBe(false);
    await page.keyboard.press('Enter');
    await expect.poll(() => tree.getByRole('link', { name: 'PaymentCaptured' }).isVisible(), poll).toBe(true);
    await tree.getByRole('link', { name: 'StockReserved' }).click();
    await expect.poll(heading, poll).toBe('StockReserved');

    // Everything an actor did, from the audit form; the request links back to the tree.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('textbox', { name: 'Actor' }).fill('psp');
    await page.getByRole('button', { name: 'Show what they did' }).click();
    await expect.poll(heading, poll).toBe('What psp did');
    expect(new URL(page.url()).pathname).toBe('/ui/audit/actors/psp');
    await expect
      .poll(async () => (await rows('Events by psp')).map((cells) => cells.slice(2)), poll)
      .toEqual([['payment-7', '2', 'PaymentCaptured', '', 'req-7']]);
    await screenshot('actor');
    await page.goto(`${server.url}/ui/audit/actors/nobody`);
    await expect.poll(() => page.locator('.empty').textContent(), poll).toBe('No events by nobody in this range.');
    await page.goto(`${server.url}/ui/audit/correlations/no-such-request`);
    await expect.poll(() => page.locator('.empty').textContent(), poll).toBe('No events with this correlation id.');
  });

  it('shows every checkpoint with its lag, and replays parked events with the app’s handler', async () => {
    const failing = (name: string) =>
      subscriptions(store).subscribe({
        name,
        pollIntervalMs: 50,
        retry: { attempts: 1, backoffMs: 1 },
        handler: (events) => {
          if (events.some((event) => event.type === 'Poison')) throw new Error(`${name} cannot take poison`);
        },
      });
    const mailer = failing('mailer');
    const auditor = failing('auditor');
    try {
      const [position] = (await append('mail-1', [{ type: 'Poison', data: {} }])).positions;
      await append('mail-1', [{ type: 'Fine', data: {} }]);
      await expect
        .poll(async () => (await subscriptions(store).checkpoints()).filter((c) => c.parked === 1).length, poll)
        .toBe(2);

      await page.goto(`${server.url}/ui/checkpoints?every=0.5`);
      const grid = async () =>
        Object.fromEntries((await rows('Checkpoints')).map((cells) => [cells[0], cells.slice(1, 6)]));
      await expect.poll(grid, poll).toMatchObject({
        auditor: ['caught up, 1 parked', String(await head()), '0', '0', '1'],
        mailer: ['caught up, 1 parked', String(await head()), '0', '0', '1'],
      });
      // The sparkline fills as samples come.
      const sparkline = page.getByRole('table', { name: 'Checkpoints' }).getByRole('img').first();
      await expect.poll(() => sparkline.getAttribute('aria-label'), poll).toMatch(/^lag over the last minute: [2-9]/);
      await screenshot('read-side');

      await page.getByRole('link', { name: 'mailer' }).click();
      await expect.poll(heading, poll).toBe('Parked events of mailer');
      await expect
        .poll(async () => (await rows('Parked events of mailer')).map((cells) => [cells[0], cells[3]]), poll)
        .toEqual([[String(position), 'mailer cannot take poison']]);
      await screenshot('parked');
      await page.getByRole('button', { name: 'Replay' }).click();
      await expect.poll(() => page.getByRole('status').textContent(), poll).toBe('Replayed 1, failed again 0.');
      await expect.poll(() => page.locator('.empty').textContent(), poll).toBe('No parked events.');
      expect(replayed.map((event) => event.type)).toEqual(['Poison']);

      // Without a handler in the app the server refuses, and the UI shows why.
      await page.goto(`${server.url}/ui/checkpoints/auditor`);
      await page.getByRole('button', { name: 'Replay' }).click();
      await expect
        .poll(() => page.getByRole('alert').textContent(), poll)
        .toBe('404 UNKNOWN_SUBSCRIPTION: the app has no handler for subscription "auditor"');
      expect(await rows('Parked events of auditor')).toHaveLength(1);
    } finally {
      await Promise.all([mailer.stop(), auditor.stop()]);
    }
  });

  it('shows the seal status and verifies, each broken link a link to its event', async () => {
    await append('ledger-1', [{ type: 'Booked', data: { amount: 10 } }]);
    await integrity(store).seal();
    await append('ledger-1', [{ type: 'Booked', data: { amount: 20 } }]);
    const sealedUpTo = (await head()) - 1;

    await page.goto(`${server.url}/ui/`);
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Integrity' }).click();
    await expect.poll(heading, poll).toBe('Integrity');
    const facts = async (name: string) => {
      const region = page.getByRole('region', { name, exact: true });
      const terms = await region.locator('dt').allTextContents();
      const values = await region.locator('dd').allTextContents();
      return Object.fromEntries(terms.map((term, i) => [term, values[i]]));
    };
    await expect
      .poll(() => facts('Seals'), poll)
      .toEqual({
        'Sealed up to': `position ${sealedUpTo}`,
        Head: `position ${sealedUpTo + 1}`,
        'Not sealed yet': '1 event',
      });
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect
      .poll(() => page.getByRole('status').textContent(), poll)
      .toMatch(new RegExp(`^OK: no broken links\\. \\d+ seals? checked, up to position ${sealedUpTo}\\.$`));
    await screenshot('integrity');

    // An edit past the trigger breaks the chain there: the report links to that event.
    const booked = (await server.request('GET', '/streams/ledger-1/events')).body.events[0] as RecordedEvent;
    await pastTheTrigger(
      server,
      `update "${server.schema}".events set data = '{"amount": 1000}' where position = ${booked.position}`,
    );
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), poll).toBe('Not OK: 1 broken link.');
    expect((await rows('Broken links'))[0]?.slice(0, 3)).toEqual([
      String(booked.position),
      'ledger-1 v1',
      'event-changed',
    ]);
    await page.getByRole('table', { name: 'Broken links' }).getByRole('link', { name: 'ledger-1 v1' }).click();
    await expect.poll(() => new URL(page.url()).pathname, poll).toBe(`/ui/events/${booked.id}`);
  });
});

afterAll(async () => {
  await browser?.close();
});
