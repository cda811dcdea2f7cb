/**
 * Time travel through one stream (`/streams/<id>/time?version=<n>`): a slider and buttons over
 * its versions (the arrow keys step, Home and End go to the ends), the state after that
 * version's event, and what that event changed (`GET /streams/<id>/replay`, one step). A
 * date-time field jumps to the state at a time (`GET /streams/<id>/state?time=`). The version
 * is in the URL, replaced at each step, so a moment can be shared and back leaves the view.
 * The state is folded with the decider picked (`?decider=`, kept in the URL too), else with the
 * server's default: each event's data merged over the previous state.
 */
import { useState } from 'preact/hooks';
import { ApiError, api, auditOf, query, type StreamInfo } from '../api.js';
import { DiffView, diffSummary } from '../diff-view.js';
import { JsonView } from '../json-view.js';
import { Link, navigate, useLocation } from '../router.js';
import { useData } from '../use-data.js';
import { DeciderPicker } from './decider-picker.js';
import { Failure, Loading } from './states.js';

/** The view of `id` at `version`, its state folded with `decider` (none: the server's default). */
export const timePath = (id: string, version?: number, decider?: string) =>
  `/streams/${encodeURIComponent(id)}/time${query({ version, decider: decider || undefined })}`;

/** The value of a datetime-local field for `date`, in the browser's time zone. */
const localInput = (date: Date) => {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
};

export function TimeTravelView({ streamId }: { streamId: string }) {
  const info = useData((signal) => api.stream(streamId, signal), [streamId]);
  return (
    <section aria-labelledby="time-title">
      <h1 id="time-title">Time travel: {streamId}</h1>
      <p>
        <Link to={`/streams/${encodeURIComponent(streamId)}`}>Back to the stream's events</Link>
      </p>
      {info.state === 'loading' ? (
        <Loading />
      ) : info.state === 'error' ? (
        <Failure error={info.error} />
      ) : info.value.version === 0 ? (
        <p class="empty">This stream has no events yet: there is nothing to step through.</p>
      ) : (
        <Stepper streamId={streamId} info={info.value} />
      )}
    </section>
  );
}

function Stepper({ streamId, info }: { streamId: string; info: StreamInfo }) {
  const { search } = useLocation();
  const last = info.version;
  const asked = Number(search.get('version'));
  const version = Number.isInteger(asked) && asked >= 1 ? Math.min(asked, last) : last;
  const decider = search.get('decider') ?? '';
  const go = (to: number) => {
    const next = Math.max(1, Math.min(last, to));
    if (next !== version) navigate(timePath(streamId, next, decider), { replace: true });
  };
  const step = useData(
    (signal) =>
      api
        .replay(streamId, { fromVersion: version, toVersion: version, decider: decider || undefined }, signal)
        .then((answer) => answer.steps[0]),
    [streamId, version, decider],
  );
  const [jump, setJump] = useState<{ busy: boolean; error?: Error }>({ busy: false });

  return (
    <>
      <DeciderPicker
        value={decider}
        onChange={(next) => navigate(timePath(streamId, version, next), { replace: true })}
      />
      <fieldset
        class="stepper"
        aria-label="Versions"
        onKeyDown={(event) => {
          // The slider steps with the arrows itself; elsewhere in the group they step too.
          if (event.target instanceof HTMLInputElement) return;
          if (event.key === 'ArrowLeft') go(version - 1);
          else if (event.key === 'ArrowRight') go(version + 1);
          else return;
          event.preventDefault();
        }}
      >
        <button type="button" onClick={() => go(1)} disabled={version <= 1}>
          First
        </button>
        <button type="button" onClick={() => go(version - 1)} disabled={version <= 1} aria-keyshortcuts="ArrowLeft">
          Previous
        </button>
        <label class="slider">
          Version {version} of {last}
          <input
            type="range"
            min={1}
            max={last}
            step={1}
            value={version}
            aria-valuetext={`version ${version} of ${last}`}
            onInput={(event) => go(Number(event.currentTarget.value))}
          />
        </label>
        <button type="button" onClick={() => go(version + 1)} disabled={version >= last} aria-keyshortcuts="ArrowRight">
          Next
        </button>
        <button type="button" onClick={() => go(last)} disabled={version >= last}>
          Last
        </button>
      </fieldset>
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          const value = String(new FormData(event.currentTarget).get('time') ?? '');
          const time = new Date(value);
          if (!value || Number.isNaN(time.getTime())) return;
          setJump({ busy: true });
          api.stateAt(streamId, { time: time.toISOString(), decider: decider || undefined }).then(
            (state) => {
              setJump({ busy: false });
              navigate(timePath(streamId, state.streamVersion, decider), { replace: true });
            },
            (error: unknown) =>
              setJump({ busy: false, error: error instanceof Error ? error : new Error(String(error)) }),
          );
        }}
      >
        <label>
          State at a time (your time zone)
          <input
            name="time"
            type="datetime-local"
            step={1}
            required
            defaultValue={info.lastEventAt ? localInput(new Date(info.lastEventAt)) : undefined}
          />
        </label>
        <button type="submit" disabled={jump.busy}>
          Go to that time
        </button>
      </form>
      {jump.error ? <Failure error={jump.error} /> : null}
      {step.state === 'loading' ? (
        <Loading />
      ) : step.state === 'error' ? (
        <Failure error={step.error} />
      ) : !step.value ? (
        <Failure error={new ApiError(404, 'NO_STEP', `version ${version} has no step`)} />
      ) : (
        (() => {
          const { event, after, changes } = step.value;
          const audit = auditOf(event);
          return (
            <>
              <section aria-labelledby="step-title">
                <h2 id="step-title">
                  Version {event.streamVersion}:{' '}
                  <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.type}</Link>
                </h2>
                <p class="muted">
                  Position {event.position} ·{' '}
                  <time dateTime={event.recordedAt}>{new Date(event.recordedAt).toLocaleString()}</time>
                  {audit.actor ? ` · by ${audit.actor}` : ''}
                  {audit.reason ? ` · ${audit.reason}` : ''}
                </p>
              </section>
              <section aria-labelledby="changes-title">
                <h2 id="changes-title">What it changed ({diffSummary(changes)})</h2>
                <DiffView changes={changes} label={`Changes at version ${event.streamVersion}`} />
              </section>
              <section aria-labelledby="state-title">
                <h2 id="state-title">State at version {event.streamVersion}</h2>
                <JsonView value={after} />
              </section>
            </>
          );
        })()
      )}
    </>
  );
}
