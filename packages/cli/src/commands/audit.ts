/** `annals history` and `annals audit`: who changed what, when and why. */
import {
  type AuditEntry,
  auditTrail,
  type CausalNode,
  InvalidInputError,
  type RecordedEvent,
  StreamNotFoundError,
  toAuditEntry,
} from '@annals/core';
import type { ConnectionFlags } from '../config.js';
import { withStore } from '../config.js';
import { parseTime } from '../moments.js';

type Output = { json?: boolean };

/** One line per audit entry for people. */
export function formatEntry(entry: AuditEntry): string {
  const who = entry.actor ?? '(no actor)';
  const why = entry.reason ? `  for ${entry.reason}` : '';
  return `v${entry.streamVersion}  #${entry.position}  ${entry.recordedAt.toISOString()}  ${entry.type}  by ${who}${why}  ${JSON.stringify(entry.data)}`;
}

/** `annals history <stream>`: a stream's events with actor, time and reason. */
export async function historyCommand(
  streamId: string,
  flags: ConnectionFlags & Output & { from?: number; limit?: number },
): Promise<void> {
  await withStore(flags, async (store) => {
    if (!((await store.getStream(streamId))?.exists ?? false)) throw new StreamNotFoundError(streamId);
    for await (const entry of auditTrail(store).history(streamId, { fromVersion: flags.from, limit: flags.limit })) {
      console.log(flags.json ? JSON.stringify(entry) : `${entry.streamId}  ${formatEntry(entry)}`);
    }
  });
}

/**
 * `annals audit`: what one actor did, what happened in a time range (of some types or
 * categories), the causal tree of one request (`--correlation`), or every event holding a
 * data subject's personal data (`--subject`).
 */
export async function auditCommand(
  flags: ConnectionFlags &
    Output & {
      actor?: string;
      from?: string;
      to?: string;
      type?: string[];
      category?: string[];
      correlation?: string;
      subject?: string;
      limit?: number;
    },
): Promise<void> {
  const range = {
    from: flags.from === undefined ? undefined : parseTime(flags.from, '--from'),
    to: flags.to === undefined ? undefined : parseTime(flags.to, '--to'),
  };
  const modes = [flags.actor, flags.subject, flags.correlation].filter((mode) => mode !== undefined);
  if (modes.length > 1) {
    throw new InvalidInputError('--actor', 'give one of --actor, --subject and --correlation');
  }
  await withStore(flags, async (store) => {
    const trail = auditTrail(store);
    if (flags.correlation !== undefined) {
      const tree = await trail.causalTree(flags.correlation);
      if (flags.json) console.log(JSON.stringify(tree.map(plainNode)));
      else if (tree.length === 0) console.log(`no event carries correlation id ${flags.correlation}`);
      else printTree(tree, 0);
      return;
    }
    // Types and categories filter an actor's or a subject's events here, after the read.
    const filtered = (flags.actor !== undefined || flags.subject !== undefined) && (flags.type || flags.category);
    const limit = filtered ? undefined : flags.limit;
    const events: AsyncIterable<RecordedEvent> =
      flags.subject !== undefined
        ? trail.bySubject(flags.subject, { ...range, limit })
        : flags.actor !== undefined
          ? trail.byActor(flags.actor, { ...range, limit })
          : trail.inRange({ ...range, limit, eventTypes: flags.type, categories: flags.category });
    let shown = 0;
    for await (const event of events) {
      if (filtered && !matches(event, flags)) continue;
      if (flags.limit !== undefined && shown >= flags.limit) break;
      const entry = toAuditEntry(event);
      console.log(flags.json ? JSON.stringify(entry) : `${entry.streamId}  ${formatEntry(entry)}`);
      shown++;
    }
    if (shown === 0 && !flags.json) console.log('no event matches');
  });
}

/** With `--actor` or `--subject`, types and categories filter their events. */
function matches(event: RecordedEvent, flags: { type?: string[]; category?: string[] }): boolean {
  const category = event.streamId.split('-')[0] as string;
  return (!flags.type || flags.type.includes(event.type)) && (!flags.category || flags.category.includes(category));
}

function plainNode(node: CausalNode): AuditEntry & { caused: unknown[] } {
  return { ...toAuditEntry(node.event), caused: node.children.map(plainNode) };
}

/** Each event under the one that caused it; `depth` 0 prints the roots without a branch. */
export function printTree(nodes: CausalNode[], depth: number): void {
  const indent = depth === 0 ? '' : `${'   '.repeat(depth - 1)}└─ `;
  for (const node of nodes) {
    console.log(`${indent}${node.event.streamId}  ${formatEntry(toAuditEntry(node.event))}`);
    printTree(node.children, depth + 1);
  }
}
