/**
 * What changed in the whole store between two moments (`/changes?from=&to=&category=`): each
 * end a global position or a time; the streams that changed with each one's diff (its state
 * before and after, folded as `GET /changes` does), and how many events lie between.
 */
import { api } from '../api.js';
import { DiffView, diffSummary } from '../diff-view.js';
import { Link, navigate, useLocation } from '../router.js';
import { useData } from '../use-data.js';
import { Failure, Loading } from './states.js';
import { timePath } from './time-travel.js';

/** A position stays one; a time typed in the browser's zone becomes an ISO time. */
export function momentParam(value: string): string {
  const text = value.trim();
  if (/^\d+$/.test(text)) return text;
  const time = new Date(text);
  return Number.isNaN(time.getTime()) ? text : time.toISOString();
}

const list = (text: string | null) =>
  (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

export function ChangesView() {
  const { search } = useLocation();
  const from = search.get('from') ?? '';
  const to = search.get('to') ?? '';
  const category = search.get('category') ?? '';
  return (
    <section aria-labelledby="changes-view-title">
      <h1 id="changes-view-title">What changed</h1>
      <p class="muted">
        Between two moments of the whole store: each a global position (<code>120</code>) or a time (
        <code>2026-05-01T10:00</code>, in your time zone, or ISO with a zone).
      </p>
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          const form = new FormData(event.currentTarget);
          const value = (name: string) => String(form.get(name) ?? '').trim();
          const params = new URLSearchParams({ from: value('from'), to: value('to') });
          if (value('category')) params.set('category', value('category'));
          navigate(`/changes?${params}`);
        }}
      >
        <label>
          From <input name="from" required defaultValue={from} placeholder="0 or 2026-05-01T10:00" />
        </label>
        <label>
          To <input name="to" required defaultValue={to} placeholder="head or a time" />
        </label>
        <label>
          Categories <input name="category" defaultValue={category} placeholder="account,customer" />
        </label>
        <button type="submit">Show changes</button>
      </form>
      {from && to ? (
        <ChangeList from={from} to={to} categories={list(category)} />
      ) : (
        <p class="empty">Give both ends to see what changed.</p>
      )}
    </section>
  );
}

function ChangeList({ from, to, categories }: { from: string; to: string; categories: string[] }) {
  const loaded = useData(
    (signal) =>
      api.changes(
        { from: momentParam(from), to: momentParam(to), category: categories.length ? categories : undefined },
        signal,
      ),
    [from, to, categories.join(',')],
  );
  if (loaded.state === 'loading') return <Loading />;
  if (loaded.state === 'error') return <Failure error={loaded.error} />;
  const { fromPosition, toPosition, events, streams } = loaded.value;
  return (
    <section aria-labelledby="changed-title">
      <h2 id="changed-title">
        {streams.length} stream{streams.length === 1 ? '' : 's'} changed
      </h2>
      <p class="muted" role="status">
        After position {fromPosition} up to {toPosition}: {events.length} event{events.length === 1 ? '' : 's'}.
      </p>
      {streams.length === 0 ? (
        <p class="empty">Nothing changed between these moments.</p>
      ) : (
        streams.map((stream) => {
          const last = events.filter((event) => event.streamId === stream.streamId).at(-1);
          return (
            <section key={stream.streamId} class="changed-stream" aria-label={`Changes of ${stream.streamId}`}>
              <h3>
                <Link to={`/streams/${encodeURIComponent(stream.streamId)}`}>{stream.streamId}</Link>{' '}
                <span class="muted">({diffSummary(stream.changes)})</span>
                {last ? (
                  <>
                    {' '}
                    · <Link to={timePath(stream.streamId, last.streamVersion)}>step through it</Link>
                  </>
                ) : null}
              </h3>
              <DiffView changes={stream.changes} label={`Changes of ${stream.streamId}`} />
            </section>
          );
        })
      )}
    </section>
  );
}
