/**
 * Audit: everything an actor did in a time range (`/audit/actors/<actor>?from=&to=`, from `GET
 * /audit/actors/<actor>`), and a request's causal tree (`/audit/correlations/<id>`, from `GET
 * /audit/correlations/<id>`) drawn as a nested, collapsible tree. `/audit` has both forms. An
 * actor's events, up to 10,000, are a windowed table (windowed.tsx): only the rows in view are in
 * the DOM, and the keyboard moves row by row as in the stream browser.
 */
import { api, auditOf } from '../api.js';
import { CausalTree, countNodes } from '../causal-tree.js';
import { Link, navigate, useLocation } from '../router.js';
import { useData } from '../use-data.js';
import { WindowedTable } from '../windowed.js';
import { momentParam } from './changes.js';
import { GoToForm } from './go-to-form.js';
import { Failure, Loading } from './states.js';

/** The most the server gives at once (`GET /audit/actors/<actor>?limit=`); the table is windowed. */
const actorLimit = 10_000;

export const actorPath = (actor: string) => `/audit/actors/${encodeURIComponent(actor)}`;
export const correlationPath = (id: string) => `/audit/correlations/${encodeURIComponent(id)}`;

function ActorForm({ actor = '', from = '', to = '' }: { actor?: string; from?: string; to?: string }) {
  return (
    <form
      class="toolbar"
      aria-label="What an actor did"
      onSubmit={(event) => {
        event.preventDefault();
        const form = new FormData(event.currentTarget);
        const value = (name: string) => String(form.get(name) ?? '').trim();
        if (!value('actor')) return;
        const params = new URLSearchParams();
        if (value('from')) params.set('from', value('from'));
        if (value('to')) params.set('to', value('to'));
        const text = params.toString();
        navigate(`${actorPath(value('actor'))}${text ? `?${text}` : ''}`);
      }}
    >
      <label>
        Actor <input name="actor" required defaultValue={actor} placeholder="ada" />
      </label>
      <label>
        From <input name="from" type="datetime-local" step={1} defaultValue={from} />
      </label>
      <label>
        To <input name="to" type="datetime-local" step={1} defaultValue={to} />
      </label>
      <button type="submit">Show what they did</button>
    </form>
  );
}

function CorrelationForm({ id = '' }: { id?: string }) {
  return (
    <GoToForm
      ariaLabel="A request's causal tree"
      label="Correlation id"
      name="correlationId"
      placeholder="req-42"
      action="Show the causal tree"
      pathOf={correlationPath}
      value={id}
    />
  );
}

export function AuditView() {
  return (
    <section aria-labelledby="audit-view-title">
      <h1 id="audit-view-title">Audit</h1>
      <h2>What an actor did</h2>
      <ActorForm />
      <h2>A request's causal tree</h2>
      <CorrelationForm />
    </section>
  );
}

export function ActorView({ actor }: { actor: string }) {
  const { search } = useLocation();
  const from = search.get('from') ?? '';
  const to = search.get('to') ?? '';
  const loaded = useData(
    (signal) =>
      api.byActor(
        actor,
        { from: from ? momentParam(from) : undefined, to: to ? momentParam(to) : undefined, limit: actorLimit },
        signal,
      ),
    [actor, from, to],
  );
  return (
    <section aria-labelledby="actor-title">
      <h1 id="actor-title">What {actor} did</h1>
      <ActorForm key={`${actor}|${from}|${to}`} actor={actor} from={from} to={to} />
      {loaded.state === 'loading' ? (
        <Loading />
      ) : loaded.state === 'error' ? (
        <Failure error={loaded.error} />
      ) : loaded.value.events.length === 0 ? (
        <p class="empty">No events by {actor} in this range.</p>
      ) : (
        <>
          <p class="muted">
            {loaded.value.events.length.toLocaleString('en-US')} event{loaded.value.events.length === 1 ? '' : 's'}
            {loaded.value.events.length >= actorLimit ? ` (the first ${actorLimit.toLocaleString('en-US')})` : ''}.
          </p>
          <WindowedTable
            label={`Events by ${actor}`}
            columns={7}
            head={
              <>
                <th scope="col" class="num">
                  Position
                </th>
                <th scope="col">Recorded</th>
                <th scope="col">Stream</th>
                <th scope="col" class="num">
                  Version
                </th>
                <th scope="col">Type</th>
                <th scope="col">Reason</th>
                <th scope="col">Request</th>
              </>
            }
            rows={loaded.value.events}
            rowKey={(event) => event.position}
            cells={(event) => {
              const audit = auditOf(event);
              return (
                <>
                  <td class="num">{event.position}</td>
                  <td>
                    <time dateTime={event.recordedAt}>{new Date(event.recordedAt).toLocaleString()}</time>
                  </td>
                  <td>
                    <Link to={`/streams/${encodeURIComponent(event.streamId)}`}>{event.streamId}</Link>
                  </td>
                  <td class="num">{event.streamVersion}</td>
                  <td>
                    <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.type}</Link>
                  </td>
                  <td>{audit.reason ?? ''}</td>
                  <td>
                    {audit.correlationId ? (
                      <Link to={correlationPath(audit.correlationId)}>{audit.correlationId}</Link>
                    ) : (
                      ''
                    )}
                  </td>
                </>
              );
            }}
          />
        </>
      )}
    </section>
  );
}

export function CorrelationView({ correlationId }: { correlationId: string }) {
  const loaded = useData((signal) => api.causalTree(correlationId, signal), [correlationId]);
  return (
    <section aria-labelledby="correlation-title">
      <h1 id="correlation-title">Causal tree of {correlationId}</h1>
      <CorrelationForm key={correlationId} id={correlationId} />
      {loaded.state === 'loading' ? (
        <Loading />
      ) : loaded.state === 'error' ? (
        <Failure error={loaded.error} />
      ) : (
        <>
          {loaded.value.roots.length > 0 ? (
            <p class="muted">
              {countNodes(loaded.value.roots)} events, each under the event that caused it; a summary folds what its
              event caused (Enter or Space).
            </p>
          ) : null}
          <CausalTree roots={loaded.value.roots} label={`Events of ${correlationId}, each under its cause`} />
        </>
      )}
    </section>
  );
}
