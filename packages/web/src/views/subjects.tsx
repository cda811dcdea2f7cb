/**
 * Personal data: a data subject's events (`GET /audit/subjects/<id>`, what the store holds
 * about it) and **Forget**, behind a confirmation: a modal dialog where the user types the
 * subject id again and gives a reason, then `POST /subjects/<id>/forget` with `{ reason }`.
 * The server's answer shows (how many events redacted, snapshots dropped, the position of the
 * recorded erasure), or its problem; a 403 is the forbidden state. The subject is in the URL
 * (`/ui/subjects/<id>`).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ForgetResult } from '../api.js';
import { JsonView } from '../json-view.js';
import { Link } from '../router.js';
import { useData } from '../use-data.js';
import { WindowedTable } from '../windowed.js';
import { GoToForm } from './go-to-form.js';
import { Failure, Loading } from './states.js';

const subjectPath = (id: string) => `/subjects/${encodeURIComponent(id)}`;

function SubjectForm({ subjectId = '' }: { subjectId?: string }) {
  return (
    <GoToForm
      label="Subject id"
      name="subjectId"
      placeholder="c7"
      action="Show subject"
      pathOf={subjectPath}
      value={subjectId}
    />
  );
}

export function SubjectsView() {
  return (
    <section aria-labelledby="subjects-title">
      <h1 id="subjects-title">Personal data</h1>
      <p class="muted">
        A data subject's events, with their personal fields as the store reads them now, and forgetting the subject: its
        key is deleted, so those fields read as null everywhere from then on.
      </p>
      <SubjectForm />
    </section>
  );
}

type Run =
  | { state: 'idle' }
  | { state: 'busy' }
  | { state: 'done'; result: ForgetResult }
  | { state: 'error'; error: Error };

export function SubjectView({ subjectId }: { subjectId: string }) {
  const [generation, setGeneration] = useState(0);
  const loaded = useData((signal) => api.bySubject(subjectId, signal), [subjectId, generation]);
  const [confirming, setConfirming] = useState(false);
  const [run, setRun] = useState<Run>({ state: 'idle' });

  const forget = (reason: string) => {
    setConfirming(false);
    setRun({ state: 'busy' });
    api.forget(subjectId, reason).then(
      (result) => {
        setRun({ state: 'done', result });
        setGeneration((n) => n + 1);
      },
      (error: unknown) => setRun({ state: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
    );
  };

  return (
    <section aria-labelledby="subject-title">
      <h1 id="subject-title">Subject {subjectId}</h1>
      <SubjectForm subjectId={subjectId} />
      <section aria-labelledby="subject-events-title">
        <h2 id="subject-events-title">Its events</h2>
        {loaded.state === 'loading' ? (
          <Loading />
        ) : loaded.state === 'error' ? (
          <Failure error={loaded.error} />
        ) : loaded.value.events.length === 0 ? (
          <p class="empty">No events hold personal data of this subject.</p>
        ) : (
          <WindowedTable
            label={`Events of subject ${subjectId}`}
            columns={6}
            head={
              <>
                <th scope="col" class="num">
                  Position
                </th>
                <th scope="col">Stream</th>
                <th scope="col" class="num">
                  Version
                </th>
                <th scope="col">Type</th>
                <th scope="col">Recorded</th>
                <th scope="col">Redacted</th>
              </>
            }
            rows={loaded.value.events}
            rowKey={(event) => event.position}
            cells={(event) => (
              <>
                <td class="num">{event.position}</td>
                <td>
                  <Link to={`/streams/${encodeURIComponent(event.streamId)}`}>{event.streamId}</Link>
                </td>
                <td class="num">{event.streamVersion}</td>
                <td>
                  <Link to={`/events/${encodeURIComponent(event.id)}`}>{event.type}</Link>
                </td>
                <td>
                  <time dateTime={event.recordedAt}>{new Date(event.recordedAt).toLocaleString()}</time>
                </td>
                <td>{event.redacted?.length ? event.redacted.join(', ') : '—'}</td>
              </>
            )}
          />
        )}
      </section>
      <section aria-labelledby="forget-title">
        <h2 id="forget-title">Forget</h2>
        <div class="toolbar">
          <button type="button" class="danger" onClick={() => setConfirming(true)} disabled={run.state === 'busy'}>
            {run.state === 'busy' ? 'Forgetting…' : 'Forget…'}
          </button>
          <span class="muted">
            Deletes the subject's key: its personal fields read as null from then on. It cannot be undone.
          </span>
        </div>
        {confirming ? (
          <ConfirmForget subjectId={subjectId} onConfirm={forget} onCancel={() => setConfirming(false)} />
        ) : null}
        {run.state === 'done' ? (
          <ForgetReport result={run.result} />
        ) : run.state === 'error' ? (
          <Failure error={run.error} />
        ) : null}
      </section>
    </section>
  );
}

/** The confirmation: a modal dialog; Forget is enabled once the id is typed again and a reason given. */
function ConfirmForget({
  subjectId,
  onConfirm,
  onCancel,
}: {
  subjectId: string;
  onConfirm: (reason: string) => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  const [reason, setReason] = useState('');
  useEffect(() => {
    const element = dialog.current;
    if (element && !element.open) element.showModal();
    return () => element?.close();
  }, []);
  const ready = typed === subjectId && reason.trim().length > 0;
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title" class="confirm" onCancel={onCancel}>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (ready) onConfirm(reason.trim());
        }}
      >
        <h2 id="confirm-title">Forget subject {subjectId}?</h2>
        <p>
          Its personal fields will read as null in every event, snapshot and parked error, for good. The log keeps the
          events, and records the erasure with your reason.
        </p>
        <label>
          <span>
            Type <strong>{subjectId}</strong> to confirm
          </span>
          <input
            name="confirmId"
            autoComplete="off"
            required
            value={typed}
            onInput={(event) => setTyped(event.currentTarget.value)}
          />
        </label>
        <label>
          Reason (required)
          <input
            name="reason"
            required
            maxLength={1000}
            value={reason}
            onInput={(event) => setReason(event.currentTarget.value)}
            placeholder="erasure request 12"
          />
        </label>
        <div class="toolbar">
          <button type="submit" class="danger" disabled={!ready}>
            Forget {subjectId}
          </button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}

function ForgetReport({ result }: { result: ForgetResult }) {
  return (
    <section aria-labelledby="forget-result-title">
      <h3 id="forget-result-title">Result</h3>
      <p role="status" class={result.forgotten ? 'ok' : 'muted'}>
        {result.forgotten
          ? `Forgotten: ${result.events} event${result.events === 1 ? '' : 's'} redacted, ${result.snapshotsDropped} snapshot${result.snapshotsDropped === 1 ? '' : 's'} dropped.`
          : 'Nothing to forget: the subject has no key (never seen, or already forgotten).'}
      </p>
      <dl class="facts">
        <dt>Events redacted</dt>
        <dd>{result.events}</dd>
        <dt>Snapshots dropped</dt>
        <dd>{result.snapshotsDropped}</dd>
        <dt>Erasure recorded at</dt>
        <dd>{result.position === null ? '—' : `position ${result.position}`}</dd>
      </dl>
      <h4>The server's answer</h4>
      <JsonView value={result} />
    </section>
  );
}
