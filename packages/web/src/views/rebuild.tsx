/**
 * The app's projections on the read side, each with **Rebuild…**: behind a confirmation, it
 * starts a rebuild on the server (`POST /projections/<name>/rebuild`) and follows it
 * (`GET /projections`, twice a second while one runs) with a progress bar, events/s and ETA.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type RebuildProgress } from '../api.js';
import { Failure } from './states.js';

const format = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits });

/** How often the list is read: often while a rebuild runs, else at the view's pace. */
const runningPollMs = 500;

/** A rebuild's progress in words, for the bar's `aria-valuetext` and the text beside it. */
export function describeRebuild(progress: RebuildProgress): string {
  if (progress.state === 'idle') return 'not rebuilt since the server started';
  const reached = `${format(progress.position ?? 0)} of ${format(progress.target ?? 0)}`;
  if (progress.state === 'failed') return `failed at ${reached}`;
  if (progress.state === 'done') {
    const took =
      progress.startedAt && progress.finishedAt
        ? ` in ${format((Date.parse(progress.finishedAt) - Date.parse(progress.startedAt)) / 1000, 1)} s`
        : '';
    return `done: ${reached}${took}`;
  }
  const rate = progress.eventsPerSecond === null ? '' : `, ${format(progress.eventsPerSecond, 1)} events/s`;
  const eta = progress.etaSeconds === null ? ', ETA unknown yet' : `, ETA ${format(progress.etaSeconds, 1)} s`;
  return `running: ${reached}${rate}${eta}`;
}

/** The bar: position of target, described in words too. */
function RebuildBar({ progress }: { progress: RebuildProgress }) {
  if (progress.state === 'idle') return <span class="muted">{describeRebuild(progress)}</span>;
  const target = Math.max(progress.target ?? 0, progress.position ?? 0);
  // An empty log: the bar is full at once rather than undefined.
  const max = Math.max(1, target);
  const value = progress.state === 'done' ? max : Math.min(max, progress.position ?? 0);
  const text = describeRebuild(progress);
  return (
    <span class="rebuild-progress">
      <progress max={max} value={value} aria-label={`Rebuild of ${progress.name}`} aria-valuetext={text} />
      <output>{text}</output>
    </span>
  );
}

/** The confirmation: a modal dialog naming the projection; Escape or Cancel leaves. */
function ConfirmRebuild({ name, onConfirm, onCancel }: { name: string; onConfirm: () => void; onCancel: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);
  return (
    <dialog ref={dialog} aria-labelledby="rebuild-title" class="confirm" onCancel={onCancel}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          onConfirm();
        }}
      >
        <h2 id="rebuild-title">Rebuild projection {name}?</h2>
        <p>
          The server runs it from its checkpoint to the head of the log as it is now, in the background, then stops. Its
          read model is written meanwhile; readers see it move. A new version of the projection starts from the first
          event.
        </p>
        <div class="toolbar">
          <button type="submit">Rebuild {name}</button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** The app's projections with their rebuilds; `everySeconds` when none runs. */
export function ProjectionsPanel({ everySeconds }: { everySeconds: number }) {
  const [list, setList] = useState<RebuildProgress[] | undefined>();
  const [loadError, setLoadError] = useState<Error | undefined>();
  const [asking, setAsking] = useState<string | undefined>();
  const [startErrors, setStartErrors] = useState<Record<string, Error>>({});
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      let running = false;
      try {
        const answer = await api.projections(abort.signal);
        setList(answer.projections);
        setLoadError(undefined);
        running = answer.projections.some((p) => p.state === 'running');
      } catch (error) {
        if (abort.signal.aborted) return;
        setLoadError(error instanceof Error ? error : new Error(String(error)));
      }
      if (!abort.signal.aborted) timer = setTimeout(tick, running ? runningPollMs : everySeconds * 1000);
    };
    void tick();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [everySeconds, generation]);

  const start = (name: string) => {
    setAsking(undefined);
    setStartErrors(({ [name]: _gone, ...rest }) => rest);
    api.rebuild(name).then(
      (progress) => {
        setList((now) => now?.map((p) => (p.name === name ? progress : p)));
        setGeneration((n) => n + 1);
      },
      (error: unknown) =>
        setStartErrors((now) => ({ ...now, [name]: error instanceof Error ? error : new Error(String(error)) })),
    );
  };

  // A server without these routes' data (no app) has nothing to show; its problem still shows.
  if (list === undefined) return loadError ? <Failure error={loadError} /> : null;
  return (
    <section aria-labelledby="projections-title">
      <h2 id="projections-title">Projections of the app</h2>
      {loadError ? <Failure error={loadError} /> : null}
      {list.length === 0 ? (
        <p class="empty">The server's app has no projections to rebuild.</p>
      ) : (
        <table aria-label="Projections">
          <thead>
            <tr>
              <th scope="col">Projection</th>
              <th scope="col" class="num">
                Version
              </th>
              <th scope="col">Rebuild</th>
              <th scope="col">Started</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {list.map((progress) => (
              <tr key={progress.name}>
                <td>{progress.name}</td>
                <td class="num">{progress.version}</td>
                <td>
                  <RebuildBar progress={progress} />
                  {progress.state === 'failed' ? (
                    <p role="alert" class="error">
                      {progress.error}
                    </p>
                  ) : null}
                  {startErrors[progress.name] ? <StartFailure error={startErrors[progress.name] as Error} /> : null}
                </td>
                <td>
                  {progress.startedAt ? (
                    <time dateTime={progress.startedAt}>{new Date(progress.startedAt).toLocaleString()}</time>
                  ) : (
                    '—'
                  )}
                </td>
                <td>
                  <button
                    type="button"
                    aria-label={`Rebuild ${progress.name}…`}
                    disabled={progress.state === 'running'}
                    onClick={() => setAsking(progress.name)}
                  >
                    {progress.state === 'running' ? 'Rebuilding…' : 'Rebuild…'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {asking ? (
        <ConfirmRebuild name={asking} onConfirm={() => start(asking)} onCancel={() => setAsking(undefined)} />
      ) : null}
    </section>
  );
}

/** A refused start: 409 says one runs already (the list shows it), anything else as a problem. */
function StartFailure({ error }: { error: Error }) {
  if (error instanceof ApiError && error.status === 409) {
    return (
      <p role="status" class="muted">
        A rebuild of it is running already.
      </p>
    );
  }
  return <Failure error={error} />;
}
