/**
 * An event's page: where it is (stream, version, global position, seal), who / when / why from its
 * metadata, its data and metadata as collapsible JSON, the event that caused it (its
 * `causationId`, when that is an event's id; else a command's), and its request's causal tree
 * (every event of its `correlationId`, each under its cause) with what it caused.
 */
import { ApiError, api, auditOf, type CausalNode, type RecordedEvent } from '../api.js';
import { CausalTree } from '../causal-tree.js';
import { JsonView } from '../json-view.js';
import { Link } from '../router.js';
import { useData } from '../use-data.js';
import { correlationPath } from './audit.js';
import { Failure, Loading } from './states.js';
import { timePath } from './time-travel.js';

const eventPath = (id: string) => `/events/${encodeURIComponent(id)}`;

/** The event with id `id` in the tree, with its node. */
function find(nodes: CausalNode[], id: string): CausalNode | undefined {
  for (const node of nodes) {
    if (node.event.id === id) return node;
    const found = find(node.children, id);
    if (found) return found;
  }
  return undefined;
}

function EventLink({ event }: { event: RecordedEvent }) {
  return (
    <Link to={eventPath(event.id)}>
      {event.type} · {event.streamId} v{event.streamVersion} (position {event.position})
    </Link>
  );
}

export function EventView({ eventId }: { eventId: string }) {
  const loaded = useData(
    async (signal) => {
      const event = await api.event(eventId, signal);
      const { causationId, correlationId } = auditOf(event);
      const [cause, tree, seals] = await Promise.all([
        causationId && causationId !== event.id
          ? api.event(causationId, signal).catch((error: unknown) => {
              if (error instanceof ApiError && error.status === 404) return null;
              throw error;
            })
          : Promise.resolve(null),
        correlationId ? api.causalTree(correlationId, signal).then((t) => t.roots) : Promise.resolve([]),
        api.seals(signal),
      ]);
      return { event, cause, tree, sealed: event.position <= seals.sealedUpTo, sealedUpTo: seals.sealedUpTo };
    },
    [eventId],
  );
  if (loaded.state === 'loading') return <Loading />;
  if (loaded.state === 'error') {
    return (
      <section aria-labelledby="event-title">
        <h1 id="event-title">Event {eventId}</h1>
        <Failure error={loaded.error} />
      </section>
    );
  }
  const { event, cause, tree, sealed, sealedUpTo } = loaded.value;
  const audit = auditOf(event);
  const caused = find(tree, event.id)?.children.map((child) => child.event) ?? [];
  const streamAt = `/streams/${encodeURIComponent(event.streamId)}?from=${event.streamVersion}&dir=forward`;
  return (
    <article aria-labelledby="event-title">
      <h1 id="event-title">{event.type}</h1>
      <section aria-labelledby="where-title">
        <h2 id="where-title">Where</h2>
        <dl class="facts">
          <dt>Event id</dt>
          <dd>
            <code>{event.id}</code>
          </dd>
          <dt>Stream</dt>
          <dd>
            <Link to={streamAt}>{event.streamId}</Link>
          </dd>
          <dt>Version</dt>
          <dd>{event.streamVersion}</dd>
          <dt>State</dt>
          <dd>
            <Link to={timePath(event.streamId, event.streamVersion)}>the stream's state at this version</Link>
          </dd>
          <dt>Position</dt>
          <dd>{event.position}</dd>
          <dt>Seal</dt>
          <dd>{sealed ? 'sealed' : `not sealed yet (the log is sealed up to position ${sealedUpTo})`}</dd>
        </dl>
      </section>
      <section aria-labelledby="audit-title">
        <h2 id="audit-title">Who, when, why</h2>
        <dl class="facts">
          <dt>Actor</dt>
          <dd>{audit.actor ?? '—'}</dd>
          <dt>Recorded at</dt>
          <dd>
            <time dateTime={event.recordedAt}>{event.recordedAt}</time>
          </dd>
          <dt>Reason</dt>
          <dd>{audit.reason ?? '—'}</dd>
          <dt>Correlation id</dt>
          <dd>
            {audit.correlationId ? (
              <Link to={correlationPath(audit.correlationId)}>
                <code>{audit.correlationId}</code>
              </Link>
            ) : (
              '—'
            )}
          </dd>
          <dt>Causation id</dt>
          <dd>{audit.causationId ? <code>{audit.causationId}</code> : '—'}</dd>
          <dt>Caused by</dt>
          <dd>
            {cause ? (
              <EventLink event={cause} />
            ) : audit.causationId && audit.causationId !== event.id ? (
              'a command (no event has that id)'
            ) : (
              '—'
            )}
          </dd>
        </dl>
      </section>
      <section aria-labelledby="data-title">
        <h2 id="data-title">Data</h2>
        {event.redacted?.length ? <p class="muted">Erased fields: {event.redacted.join(', ')}</p> : null}
        <JsonView value={event.data} />
      </section>
      <section aria-labelledby="metadata-title">
        <h2 id="metadata-title">Metadata</h2>
        <JsonView value={event.metadata} />
      </section>
      {audit.correlationId ? (
        <section aria-labelledby="tree-title">
          <h2 id="tree-title">Causal tree of {audit.correlationId}</h2>
          {caused.length > 0 ? (
            <>
              <h3>Caused by this event</h3>
              <ul aria-label="Caused by this event">
                {caused.map((child) => (
                  <li key={child.id}>
                    <EventLink event={child} />
                  </li>
                ))}
              </ul>
            </>
          ) : null}
          <h3>The whole request</h3>
          <p>
            <Link to={correlationPath(audit.correlationId)}>Open the causal tree</Link>
          </p>
          <CausalTree roots={tree} current={event.id} label={`The whole request ${audit.correlationId}`} />
        </section>
      ) : null}
    </article>
  );
}
