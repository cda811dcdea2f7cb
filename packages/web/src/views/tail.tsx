/**
 * The live tail: the global log over SSE (`/subscribe`, read through fetch with the signed-in
 * key, see sse.ts), newest first. It starts a little before the head, follows live, and keeps
 * at most `keep` events in memory. Paused, it still receives (the connection stays, and so
 * does its place in the log) but holds what arrives until resumed. Filters (categories,
 * types) go to the server, in the URL too; changing them, or leaving the view, aborts the
 * connection. A 403 (the key lacks `subscribe`) shows in the view; a 401, the sign-in. Past
 * 100 events the table is windowed (windowed.tsx): only the rows in view are in the DOM.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, categoryOf, query, type RecordedEvent } from '../api.js';
import { Link, navigate, useLocation } from '../router.js';
import { readSse } from '../sse.js';
import { WindowedTable } from '../windowed.js';
import { Failure } from './states.js';

/** Events shown (and held while paused) at most. */
const keep = 500;
/** How far back before the head the tail starts. */
const backlog = 50;
/** How long arrivals wait to be rendered together. */
const flushMs = 50;

type Status = 'connecting' | 'live' | 'reconnecting';

const list = (text: string | null) =>
  (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

export function TailView() {
  const { search } = useLocation();
  const categories = list(search.get('category'));
  const types = list(search.get('type'));
  const filterKey = `${categories.join(',')}|${types.join(',')}`;
  const [events, setEvents] = useState<RecordedEvent[]>([]);
  const [held, setHeld] = useState<RecordedEvent[]>([]);
  const [paused, setPaused] = useState(false);
  const [status, setStatus] = useState<Status>('connecting');
  /** Why the server will not serve the tail (a 403: the key lacks the subscribe scope). */
  const [refused, setRefused] = useState<ApiError | undefined>();
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    setEvents([]);
    setHeld([]);
    setStatus('connecting');
    setRefused(undefined);
    // Aborted on unmount and when the filters change: that ends the connection and any reconnect.
    const abort = new AbortController();
    // Arrivals are rendered together, at most every `flushMs`: a burst is one render, not one each.
    let pending: RecordedEvent[] = [];
    const flush = () => {
      timer = undefined;
      const newest = pending.reverse();
      pending = [];
      const add = (list: RecordedEvent[]) => [...newest, ...list].slice(0, keep);
      if (pausedRef.current) setHeld(add);
      else setEvents(add);
    };
    const refuse = (error: unknown) => {
      if (abort.signal.aborted) return;
      if (error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429) {
        setRefused(error);
      } else setStatus('reconnecting');
    };
    api.head(abort.signal).then((head) => {
      if (abort.signal.aborted) return;
      const after = Math.max(0, head - backlog);
      return readSse(
        `/subscribe${query({ after, category: categories, type: types })}`,
        {
          onOpen: () => setStatus('live'),
          onDisconnect: () => setStatus('reconnecting'),
          onRefused: refuse,
          onMessage: (message) => {
            if (message.type !== 'message') return;
            let event: RecordedEvent;
            try {
              event = JSON.parse(message.data) as RecordedEvent;
            } catch {
              return; // Not an event of ours: skipped, the connection stays.
            }
            pending.push(event);
            if (pending.length > keep) pending = pending.slice(-keep);
            timer ??= setTimeout(flush, flushMs);
          },
        },
        abort.signal,
      );
    }, refuse);
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [filterKey]);

  function resume() {
    setEvents((shown) => [...held, ...shown].slice(0, keep));
    setHeld([]);
    setPaused(false);
  }

  function applyFilters(form: HTMLFormElement) {
    const data = new FormData(form);
    const category = String(data.get('category') ?? '').trim();
    const type = String(data.get('type') ?? '').trim();
    navigate(`/tail${query({ category: category || undefined, type: type || undefined })}`, { replace: true });
  }

  return (
    <section aria-labelledby="tail-title">
      <h1 id="tail-title">Live tail</h1>
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          applyFilters(event.currentTarget);
        }}
      >
        <label>
          Categories <input name="category" defaultValue={categories.join(', ')} placeholder="account, customer" />
        </label>
        <label>
          Types <input name="type" defaultValue={types.join(', ')} placeholder="MoneyDeposited" />
        </label>
        <button type="submit">Apply filters</button>
        {paused ? (
          <button type="button" onClick={resume}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => setPaused(true)}>
            Pause
          </button>
        )}
      </form>
      {refused ? <Failure error={refused} /> : null}
      <p role="status" class="status">
        {refused
          ? 'Not connected'
          : paused
            ? `Paused: ${held.length} new event${held.length === 1 ? '' : 's'} held`
            : status === 'live'
              ? 'Live'
              : status === 'connecting'
                ? 'Connecting…'
                : 'Reconnecting…'}
        {categories.length + types.length > 0 ? ` · filtered by ${[...categories, ...types].join(', ')}` : ''}
        {` · showing the newest ${keep} at most`}
      </p>
      {events.length === 0 ? (
        <p class="empty">No events yet{categories.length + types.length > 0 ? ' that match the filters' : ''}.</p>
      ) : (
        <WindowedTable
          label="Live events"
          columns={6}
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
              <th scope="col">Actor</th>
            </>
          }
          rows={events}
          rowKey={(event) => event.position}
          cells={(event) => (
            <>
              <td class="num">{event.position}</td>
              <td>
                <time dateTime={event.recordedAt}>{new Date(event.recordedAt).toLocaleTimeString()}</time>
              </td>
              <td>
                <Link to={`/streams/${encodeURIComponent(event.streamId)}`}>{event.streamId}</Link>{' '}
                <span class="muted">({categoryOf(event.streamId)})</span>
              </td>
              <td class="num">{event.streamVersion}</td>
              <td>
                <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.type}</Link>
              </td>
              <td>{typeof event.metadata.actor === 'string' ? event.metadata.actor : ''}</td>
            </>
          )}
        />
      )}
    </section>
  );
}
