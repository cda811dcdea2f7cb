/**
 * The diff view and the causal tree, rendered to HTML without a browser (test/render.ts):
 * every kind of change labelled in words as well as coloured, paths written as in code, values
 * before and after; the tree nested as the causes go, each node with its type (a link to its
 * page; the app's base is / under vitest), stream, version, time and actor, collapsible where it has children.
 */
import { type FunctionComponent, h } from 'preact';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CausalNode, Difference, RecordedEvent } from '../src/api.js';
import { renderToString, stubWindow, textOf } from './render.js';

// The components are .tsx, checked by the UI's own tsconfig (JSX for Preact); the root one,
// which checks the tests, has no JSX, so they are loaded by a path it does not follow, with
// their types written here.
type Component<P> = FunctionComponent<P>;
interface DiffModule {
  DiffView: Component<{ changes: Difference[]; label: string }>;
  diffSummary(changes: Difference[]): string;
  pathText(path: (string | number)[]): string;
  valueText(value: unknown, max?: number): string;
}
interface TreeModule {
  CausalTree: Component<{ roots: CausalNode[]; current?: string; label: string }>;
  countNodes(nodes: CausalNode[]): number;
}
const load = (path: string): Promise<unknown> => import(/* @vite-ignore */ path);

stubWindow();
const { DiffView, diffSummary, pathText, valueText } = (await load('../src/diff-view.tsx')) as DiffModule;
const { CausalTree, countNodes } = (await load('../src/causal-tree.tsx')) as TreeModule;

describe('the diff view', () => {
  const changes: Difference[] = [
    { type: 'CREATE', path: ['owner'], value: 'Ada' },
    { type: 'CHANGE', path: ['limits', 'daily', 1], value: 3, oldValue: 2 },
    { type: 'REMOVE', path: ['nickname'], oldValue: 'A.' },
    { type: 'CHANGE', path: ['odd key'], value: true, oldValue: false },
  ];

  it('writes paths as in code and values as JSON, cut when long', () => {
    expect(pathText(['limits', 'daily', 1])).toBe('limits.daily[1]');
    expect(pathText(['odd key', 'x'])).toBe('["odd key"].x');
    expect(pathText([])).toBe('(the whole state)');
    expect(valueText('Ada')).toBe('"Ada"');
    expect(valueText(undefined)).toBe('undefined');
    expect(valueText('x'.repeat(200), 10)).toBe(`"xxxxxxxx…`);
    expect(diffSummary(changes)).toBe('1 added, 2 changed, 1 removed');
    expect(diffSummary([])).toBe('no change');
  });

  it('labels each change in words and in colour, with the values before and after', () => {
    const html = renderToString(h(DiffView, { changes, label: 'Changes at version 2' }));
    expect(html).toMatch(/^<table class="diff" aria-label="Changes at version 2">/);
    const rows = html.split('<tr').slice(2);
    expect(rows.map((row) => /class="(diff-[a-z]+)"/.exec(row)?.[1])).toEqual([
      'diff-added',
      'diff-changed',
      'diff-removed',
      'diff-changed',
    ]);
    expect(rows.map((row) => textOf(`<tr${row}`))).toEqual([
      'added owner — "Ada"',
      'changed limits.daily[1] 2 3',
      'removed nickname "A." —',
      'changed ["odd key"] false true',
    ]);
  });

  it('says so when nothing changed', () => {
    expect(textOf(renderToString(h(DiffView, { changes: [], label: 'x' })))).toBe('No change in the state.');
  });

  it('escapes what it shows', () => {
    const html = renderToString(
      h(DiffView, { changes: [{ type: 'CREATE', path: ['<b>'], value: '<script>' }], label: 'x' }),
    );
    expect(html).not.toMatch(/<script>|<b>/);
    expect(textOf(html)).toBe('Change Path Before After added ["<b>"] — "<script>"');
  });
});

describe('the causal tree', () => {
  let position = 0;
  const event = (id: string, type: string, streamId: string, actor?: string): RecordedEvent => ({
    position: ++position,
    streamId,
    streamVersion: 1,
    id,
    type,
    data: {},
    metadata: { correlationId: 'req-1', ...(actor ? { actor } : {}) },
    recordedAt: new Date(Date.UTC(2026, 0, 1, 12, 0, position)).toISOString(),
  });
  let roots: CausalNode[];
  beforeAll(() => {
    roots = [
      {
        event: event('a', 'OrderPlaced', 'order-1', 'ada'),
        children: [
          {
            event: event('b', 'PaymentRequested', 'payment-1'),
            children: [{ event: event('c', 'PaymentCaptured', 'payment-1', 'psp'), children: [] }],
          },
          { event: event('d', 'StockReserved', 'stock-9'), children: [] },
        ],
      },
      { event: event('e', 'Audited', 'audit-1'), children: [] },
    ];
  });

  it('nests each event under its cause, collapsible where it has children', () => {
    const html = renderToString(h(CausalTree, { roots, label: 'Causal tree of req-1' }));
    expect(countNodes(roots)).toBe(5);
    expect(html).toMatch(/^<section aria-label="Causal tree of req-1" class="tree-frame"><ul class="tree">/);
    // Two <details> (the nodes with children), open; the leaves are plain.
    expect(html.match(/<details open>/g)).toHaveLength(2);
    // The order and the nesting: a's list holds b (holding c) and d; e is a second root.
    const shape = Array.from(
      html.matchAll(/<ul[^>]*>|<\/ul>|<a href="\/events\/([a-z])">/g),
      ([tag, id]) => id ?? (tag.startsWith('</') ? ']' : '['),
    ).join('');
    expect(shape).toBe('[a[b[c]d]e]');
  });

  it('shows type (a link), stream, version, time and actor on each node', () => {
    const html = renderToString(h(CausalTree, { roots, label: 'x' }));
    expect(html).toContain('<a href="/events/a">OrderPlaced</a>');
    expect(html).toContain('<a href="/events/c">PaymentCaptured</a>');
    expect(html).toContain('<time dateTime="2026-01-01T12:00:01.000Z">');
    const text = textOf(html);
    expect(text).toMatch(/OrderPlaced · order-1 v1 · .+ · by ada · caused 2 events/);
    expect(text).toMatch(/PaymentRequested · payment-1 v1 · .+ · no actor · caused 1 event /);
    expect(text).toMatch(/PaymentCaptured · payment-1 v1 · .+ · by psp/);
  });

  it('marks the current event instead of linking it, and says when the tree is empty', () => {
    const html = renderToString(h(CausalTree, { roots, current: 'b', label: 'x' }));
    expect(html).toContain('<strong aria-current="page">PaymentRequested</strong>');
    expect(html).not.toContain('/events/b"');
    expect(textOf(renderToString(h(CausalTree, { roots: [], label: 'x' })))).toBe(
      'No events with this correlation id.',
    );
  });
});
