/**
 * JSON as a collapsible tree: every object and array is a `<details>` (keyboard-operable,
 * announced as expandable), open for the first levels, with its size in the summary.
 */
import type { JSX } from 'preact';

const openDepth = 2;

function Scalar({ value }: { value: unknown }) {
  if (value === null) return <span class="json-null">null</span>;
  if (typeof value === 'string') return <span class="json-string">{JSON.stringify(value)}</span>;
  if (typeof value === 'number') return <span class="json-number">{String(value)}</span>;
  if (typeof value === 'boolean') return <span class="json-boolean">{String(value)}</span>;
  return <span>{JSON.stringify(value)}</span>;
}

function Node({ name, value, depth }: { name?: string; value: unknown; depth: number }): JSX.Element {
  const label = name === undefined ? null : <span class="json-key">{name}: </span>;
  if (value === null || typeof value !== 'object') {
    return (
      <div class="json-line">
        {label}
        <Scalar value={value} />
      </div>
    );
  }
  const entries = Array.isArray(value)
    ? value.map((item, index) => [String(index), item] as const)
    : Object.entries(value as Record<string, unknown>);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) {
    return (
      <div class="json-line">
        {label}
        {open}
        {close}
      </div>
    );
  }
  const size = Array.isArray(value)
    ? `${entries.length} item${entries.length === 1 ? '' : 's'}`
    : `${entries.length} key${entries.length === 1 ? '' : 's'}`;
  return (
    <details class="json-node" open={depth < openDepth}>
      <summary>
        {label}
        {open} <span class="json-size">{size}</span> {close}
      </summary>
      <div class="json-children">
        {entries.map(([key, item]) => (
          <Node key={key} name={key} value={item} depth={depth + 1} />
        ))}
      </div>
    </details>
  );
}

export function JsonView({ value }: { value: unknown }) {
  return (
    <div class="json">
      <Node value={value} depth={0} />
    </div>
  );
}
