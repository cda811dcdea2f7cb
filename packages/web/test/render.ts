/**
 * A tiny renderer of Preact elements to HTML, for component tests without a DOM: function
 * components are called (so they must not use hooks), elements become tags with their
 * attributes (event handlers dropped). Enough for the hook-free views (the diff, the causal
 * tree); anything stateful is tested in Chromium (ui.test.ts, views.test.ts).
 */

const voids = new Set(['br', 'hr', 'img', 'input', 'meta', 'link', 'col', 'source', 'wbr']);

const escapeText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttribute = (text: string) => escapeText(text).replace(/"/g, '&quot;');

interface Element {
  type: string | ((props: Record<string, unknown>) => unknown);
  props: Record<string, unknown> & { children?: unknown };
}

export function renderToString(node: unknown): string {
  if (node === null || node === undefined || typeof node === 'boolean') return '';
  if (typeof node === 'string' || typeof node === 'number' || typeof node === 'bigint') return escapeText(String(node));
  if (Array.isArray(node)) return node.map(renderToString).join('');
  const { type, props } = node as Element;
  if (typeof type === 'function') return renderToString(type(props));
  const attributes = Object.entries(props)
    .filter(
      ([name, value]) =>
        name !== 'children' && !/^on[A-Z]/.test(name) && value !== undefined && value !== null && value !== false,
    )
    .map(([name, value]) => (value === true ? ` ${name}` : ` ${name}="${escapeAttribute(String(value))}"`))
    .join('');
  if (voids.has(type)) return `<${type}${attributes}>`;
  return `<${type}${attributes}>${renderToString(props.children)}</${type}>`;
}

/** The text of `html`, tags dropped, whitespace collapsed. */
export const textOf = (html: string) =>
  html
    .replace(/<[^>]*>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * What router.tsx needs at import without a browser: a `window` with the History API's
 * listeners and a location under /ui/.
 */
export function stubWindow(): void {
  const target = globalThis as { window?: unknown };
  target.window ??= {
    addEventListener() {},
    removeEventListener() {},
    location: { pathname: '/ui/', search: '' },
    history: { pushState() {}, replaceState() {} },
  };
}
