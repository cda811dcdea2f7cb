/**
 * The stream browser: open a stream by id, list streams by category, the streams changed most
 * recently (from the recent part of the log), and a stream's events a page at a time in both
 * directions. The page is in the URL (`?from=<version>&dir=forward|backward&size=<n>`), so it
 * deep-links. A page of up to 10,000 events is a windowed table (windowed.tsx): only the rows in
 * view are in the DOM.
 */
import { api, auditOf, type RecordedEvent, type StreamSummary } from '../api.js';
import { Link, navigate, useLocation } from '../router.js';
import { useData } from '../use-data.js';
import { WindowedTable } from '../windowed.js';
import { GoToForm } from './go-to-form.js';
import { Failure, Loading } from './states.js';
import { timePath } from './time-travel.js';

/** The page sizes offered; the first is the default. The server reads at most 10,000 a page. */
export const pageSizes = [20, 100, 1000, 10_000] as const;
/** How much of the log's end "recently changed" looks at. */
const recentWindow = 1000;

const streamPath = (id: string) => `/streams/${encodeURIComponent(id)}`;

export function StreamsView() {
  const { search } = useLocation();
  const category = search.get('category') ?? '';
  const after = search.get('after') ?? undefined;
  return (
    <section aria-labelledby="streams-title">
      <h1 id="streams-title">Streams</h1>
      <GoToForm label="Stream id" name="streamId" placeholder="account-1" action="Open stream" pathOf={streamPath} />
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          const value = String(new FormData(event.currentTarget).get('category') ?? '').trim();
          navigate(value ? `/streams?category=${encodeURIComponent(value)}` : '/streams');
        }}
      >
        <label>
          Category <input name="category" defaultValue={category} placeholder="account" />
        </label>
        <button type="submit">List streams</button>
      </form>
      {category ? <StreamList category={category} after={after} /> : <RecentStreams />}
    </section>
  );
}

type StreamRow = Omit<StreamSummary, 'state'> & { state?: string };

function StreamTable({ label, streams }: { label: string; streams: StreamRow[] }) {
  if (streams.length === 0) return <p class="empty">No streams.</p>;
  return (
    <table aria-label={label}>
      <thead>
        <tr>
          <th scope="col">Stream</th>
          <th scope="col" class="num">
            Version
          </th>
          <th scope="col" class="num">
            Last position
          </th>
          <th scope="col">Last event</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody>
        {streams.map((stream) => (
          <tr key={stream.streamId}>
            <td>
              <Link to={streamPath(stream.streamId)}>{stream.streamId}</Link>
            </td>
            <td class="num">{stream.version}</td>
            <td class="num">{stream.lastPosition}</td>
            <td>
              <time dateTime={stream.lastEventAt}>{new Date(stream.lastEventAt).toLocaleString()}</time>
            </td>
            <td>{stream.state ?? '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RecentStreams() {
  const loaded = useData(async (signal) => {
    const head = await api.head(signal);
    const page = await api.log(Math.max(0, head - recentWindow), recentWindow, signal);
    const latest = new Map<string, RecordedEvent>();
    for (const event of page.events) latest.set(event.streamId, event);
    return [...latest.values()]
      .sort((a, b) => b.position - a.position)
      .slice(0, 25)
      .map(
        (event): StreamRow => ({
          streamId: event.streamId,
          version: event.streamVersion,
          lastPosition: event.position,
          lastEventAt: event.recordedAt,
        }),
      );
  }, []);
  return (
    <section aria-labelledby="recent-title">
      <h2 id="recent-title">Recently changed</h2>
      {loaded.state === 'loading' ? (
        <Loading />
      ) : loaded.state === 'error' ? (
        <Failure error={loaded.error} />
      ) : (
        <StreamTable label="Recently changed streams" streams={loaded.value} />
      )}
    </section>
  );
}

function StreamList({ category, after }: { category: string; after: string | undefined }) {
  const loaded = useData((signal) => api.streams({ category, after, limit: 50 }, signal), [category, after]);
  return (
    <section aria-labelledby="list-title">
      <h2 id="list-title">Streams in {category}</h2>
      {loaded.state === 'loading' ? (
        <Loading />
      ) : loaded.state === 'error' ? (
        <Failure error={loaded.error} />
      ) : (
        <>
          <StreamTable label={`Streams in ${category}`} streams={loaded.value.streams} />
          {loaded.value.next ? (
            <Link
              to={`/streams?category=${encodeURIComponent(category)}&after=${encodeURIComponent(loaded.value.next.after)}`}
            >
              More streams
            </Link>
          ) : null}
        </>
      )}
    </section>
  );
}

export function StreamView({ streamId }: { streamId: string }) {
  const { search } = useLocation();
  const from = search.get('from');
  const direction = search.get('dir') === 'backward' ? 'backward' : 'forward';
  const fromVersion = from !== null && /^\d+$/.test(from) ? Number(from) : undefined;
  const sizeParam = Number(search.get('size'));
  const pageSize: number = pageSizes.find((size) => size === sizeParam) ?? pageSizes[0];
  const loaded = useData(
    async (signal) => {
      const [info, page] = await Promise.all([
        api.stream(streamId, signal),
        api.streamEvents(streamId, { fromVersion, limit: pageSize, direction }, signal).catch((error: unknown) => {
          // A stream with no events yet (only metadata) has no page to read.
          if (error instanceof Error && 'status' in error && error.status === 404) return { events: [], next: null };
          throw error;
        }),
      ]);
      // Shown oldest first, whichever way the page was read.
      const events = direction === 'backward' ? [...page.events].reverse() : page.events;
      return { info, events };
    },
    [streamId, fromVersion, direction, pageSize],
  );
  const go = (version: number | undefined, dir: 'forward' | 'backward', size = pageSize) =>
    navigate(
      `${streamPath(streamId)}?${version === undefined ? '' : `from=${version}&`}dir=${dir}${size === pageSizes[0] ? '' : `&size=${size}`}`,
    );

  return (
    <section aria-labelledby="stream-title">
      <h1 id="stream-title">Stream {streamId}</h1>
      {loaded.state === 'loading' ? (
        <Loading />
      ) : loaded.state === 'error' ? (
        <Failure error={loaded.error} />
      ) : (
        (() => {
          const { info, events } = loaded.value;
          const first = events[0]?.streamVersion;
          const last = events[events.length - 1]?.streamVersion;
          return (
            <>
              <dl class="facts">
                <dt>Version</dt>
                <dd>{info.version}</dd>
                <dt>State</dt>
                <dd>{info.state}</dd>
                <dt>Created</dt>
                <dd>{info.createdAt ? new Date(info.createdAt).toLocaleString() : '—'}</dd>
                <dt>Last event</dt>
                <dd>{info.lastEventAt ? new Date(info.lastEventAt).toLocaleString() : '—'}</dd>
              </dl>
              {info.version > 0 ? (
                <p>
                  <Link to={timePath(streamId)}>Time travel: step through its states</Link>
                </p>
              ) : null}
              <nav class="pager" aria-label="Pages of the stream">
                <button type="button" disabled={first === undefined || first <= 1} onClick={() => go(1, 'forward')}>
                  First
                </button>
                <button
                  type="button"
                  disabled={first === undefined || first <= 1}
                  onClick={() => go((first ?? 1) - 1, 'backward')}
                >
                  Older
                </button>
                <span class="muted">
                  {first === undefined ? 'No events' : `Versions ${first}–${last} of ${info.version}`}
                </span>
                <button
                  type="button"
                  disabled={last === undefined || last >= info.version}
                  onClick={() => go((last ?? 0) + 1, 'forward')}
                >
                  Newer
                </button>
                <button
                  type="button"
                  disabled={last === undefined || last >= info.version}
                  onClick={() => go(undefined, 'backward')}
                >
                  Latest
                </button>
                <label class="page-size">
                  Page size
                  <select
                    value={pageSize}
                    onChange={(event) =>
                      // The same start, more or fewer events: forward from the first shown.
                      go(first, 'forward', Number(event.currentTarget.value))
                    }
                  >
                    {pageSizes.map((size) => (
                      <option key={size} value={size}>
                        {size.toLocaleString('en-US')}
                      </option>
                    ))}
                  </select>
                </label>
              </nav>
              {events.length === 0 ? (
                <p class="empty">No events on this page.</p>
              ) : (
                <WindowedTable
                  label={`Events of ${streamId}`}
                  columns={6}
                  head={
                    <>
                      <th scope="col" class="num">
                        Version
                      </th>
                      <th scope="col" class="num">
                        Position
                      </th>
                      <th scope="col">Type</th>
                      <th scope="col">Recorded</th>
                      <th scope="col">Actor</th>
                      <th scope="col">Reason</th>
                    </>
                  }
                  rows={events}
                  rowKey={(event) => event.position}
                  cells={(event) => {
                    const audit = auditOf(event);
                    return (
                      <>
                        <td class="num">{event.streamVersion}</td>
                        <td class="num">{event.position}</td>
                        <td>
                          <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.type}</Link>
                        </td>
                        <td>
                          <time dateTime={event.recordedAt}>{new Date(event.recordedAt).toLocaleString()}</time>
                        </td>
                        <td>{audit.actor ?? ''}</td>
                        <td>{audit.reason ?? ''}</td>
                      </>
                    );
                  }}
                />
              )}
            </>
          );
        })()
      )}
    </section>
  );
}
