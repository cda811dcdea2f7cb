/**
 * A request's causal tree (`GET /audit/correlations/<id>`): every event of a correlation id
 * under the event that caused it, as nested lists. A node with children is a `<details>`:
 * collapsible with the keyboard (Enter or Space on its summary), announced as expandable. Each
 * node shows the event's type (a link to its page), stream, version, time and actor. No hooks.
 */
import { auditOf, type CausalNode } from './api.js';
import { Link } from './router.js';

/** How many events the tree holds. */
export function countNodes(nodes: CausalNode[]): number {
  return nodes.reduce((sum, node) => sum + 1 + countNodes(node.children), 0);
}

function NodeLine({ node, current }: { node: CausalNode; current?: string }) {
  const { event } = node;
  const actor = auditOf(event).actor;
  return (
    <span class="tree-node">
      {event.id === current ? (
        <strong aria-current="page">{event.type}</strong>
      ) : (
        <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.type}</Link>
      )}{' '}
      <span class="muted">
        · {event.streamId} v{event.streamVersion} ·{' '}
        <time dateTime={event.recordedAt}>{new Date(event.recordedAt).toLocaleString()}</time> ·{' '}
        {actor ? `by ${actor}` : 'no actor'}
      </span>
      {node.children.length > 0 ? (
        <span class="muted">
          {' '}
          · caused {node.children.length} event{node.children.length === 1 ? '' : 's'}
        </span>
      ) : null}
    </span>
  );
}

function Branch({ nodes, current, level }: { nodes: CausalNode[]; current?: string; level: number }) {
  return (
    <ul class={level === 0 ? 'tree' : 'tree-children'}>
      {nodes.map((node) => (
        <li key={node.event.id}>
          {node.children.length > 0 ? (
            <details open>
              <summary>
                <NodeLine node={node} current={current} />
              </summary>
              <Branch nodes={node.children} current={current} level={level + 1} />
            </details>
          ) : (
            <div class="tree-leaf">
              <NodeLine node={node} current={current} />
            </div>
          )}
        </li>
      ))}
    </ul>
  );
}

/** The tree of `roots`; `current` marks one event (its page) instead of linking it. */
export function CausalTree({ roots, current, label }: { roots: CausalNode[]; current?: string; label: string }) {
  if (roots.length === 0) return <p class="empty">No events with this correlation id.</p>;
  return (
    <section aria-label={label} class="tree-frame">
      <Branch nodes={roots} current={current} level={0} />
    </section>
  );
}
