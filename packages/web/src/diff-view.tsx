/**
 * What one step changed in a state, as the server's structured diff (microdiff's shape): each
 * path added, removed or changed, with its values. Each row says which in words as well as in
 * colour (green, red, amber), so it does not rest on colour alone. No hooks: it renders the
 * same anywhere (the component tests render it to a string).
 */
import type { Difference } from './api.js';

const kinds = {
  CREATE: { label: 'added', class: 'diff-added' },
  REMOVE: { label: 'removed', class: 'diff-removed' },
  CHANGE: { label: 'changed', class: 'diff-changed' },
} as const;

/** A diff path as one would write it in code: `limits.daily[1]`. */
export function pathText(path: (string | number)[]): string {
  if (path.length === 0) return '(the whole state)';
  return path
    .map((part, index) =>
      typeof part === 'number'
        ? `[${part}]`
        : /^[A-Za-z_$][\w$]*$/.test(part)
          ? `${index === 0 ? '' : '.'}${part}`
          : `[${JSON.stringify(part)}]`,
    )
    .join('');
}

/** A value in one line; long ones are cut with an ellipsis (the state view has them whole). */
export function valueText(value: unknown, max = 120): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Counts of each kind, in words: "1 added, 2 changed". */
export function diffSummary(changes: Difference[]): string {
  if (changes.length === 0) return 'no change';
  const counts = (['CREATE', 'CHANGE', 'REMOVE'] as const)
    .map((type) => [kinds[type].label, changes.filter((change) => change.type === type).length] as const)
    .filter(([, count]) => count > 0);
  return counts.map(([label, count]) => `${count} ${label}`).join(', ');
}

export function DiffView({ changes, label }: { changes: Difference[]; label: string }) {
  if (changes.length === 0) return <p class="empty">No change in the state.</p>;
  return (
    <table class="diff" aria-label={label}>
      <thead>
        <tr>
          <th scope="col">Change</th>
          <th scope="col">Path</th>
          <th scope="col">Before</th>
          <th scope="col">After</th>
        </tr>
      </thead>
      <tbody>
        {changes.map((change) => {
          const kind = kinds[change.type];
          const path = pathText(change.path);
          return (
            <tr key={`${change.type}:${path}`} class={kind.class}>
              <td>
                <span class="diff-kind">{kind.label}</span>
              </td>
              <td>
                <code>{path}</code>
              </td>
              <td>
                {change.type === 'CREATE' ? <span class="muted">—</span> : <code>{valueText(change.oldValue)}</code>}
              </td>
              <td>
                {change.type === 'REMOVE' ? <span class="muted">—</span> : <code>{valueText(change.value)}</code>}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
