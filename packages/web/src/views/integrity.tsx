/**
 * Integrity: how far sealing has come (`GET /seals`), and a Verify button that checks every
 * seal against the events as stored (`POST /verify`) and shows the report, each broken link a
 * link to its event's page.
 */
import { useState } from 'preact/hooks';
import { api, type VerifyReport } from '../api.js';
import { Link } from '../router.js';
import { useData } from '../use-data.js';
import { Failure, Loading } from './states.js';

type Run =
  | { state: 'idle' }
  | { state: 'busy' }
  | { state: 'done'; report: VerifyReport }
  | { state: 'error'; error: Error };

export function Report({ report }: { report: VerifyReport }) {
  return (
    <section aria-labelledby="report-title">
      <h2 id="report-title">Report</h2>
      <p role="status" class={report.ok ? 'ok' : 'error'}>
        {report.ok
          ? `OK: no broken links. ${report.checked} seal${report.checked === 1 ? '' : 's'} checked, up to position ${report.sealedUpTo}.`
          : `Not OK: ${report.brokenCount} broken link${report.brokenCount === 1 ? '' : 's'}${report.lostKeys.length ? `, ${report.lostKeys.length} lost key${report.lostKeys.length === 1 ? '' : 's'}` : ''}.`}
      </p>
      <dl class="facts">
        <dt>Seals checked</dt>
        <dd>{report.checked}</dd>
        <dt>Sealed up to</dt>
        <dd>{report.sealedUpTo}</dd>
        <dt>Not sealed yet</dt>
        <dd>{report.unsealed} (not covered by this report)</dd>
        <dt>Head hash</dt>
        <dd>{report.headHash ? <code>{report.headHash}</code> : '—'}</dd>
      </dl>
      {report.broken.length > 0 ? (
        <table aria-label="Broken links">
          <thead>
            <tr>
              <th scope="col" class="num">
                Position
              </th>
              <th scope="col">Event</th>
              <th scope="col">Problem</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {report.broken.map((link) => (
              <tr key={`${link.position}:${link.problem}`}>
                <td class="num">{link.position}</td>
                <td>
                  {link.eventId ? (
                    <Link to={`/events/${encodeURIComponent(link.eventId)}`}>
                      {link.streamId ? `${link.streamId} v${link.streamVersion}` : link.eventId}
                    </Link>
                  ) : link.streamId ? (
                    `${link.streamId} v${link.streamVersion} (gone)`
                  ) : (
                    '—'
                  )}
                </td>
                <td>{link.problem}</td>
                <td>{link.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {report.brokenCount > report.broken.length ? (
        <p class="muted">
          The first {report.broken.length} of {report.brokenCount} are listed.
        </p>
      ) : null}
      {report.lostKeys.length > 0 ? (
        <>
          <h3>Keys lost without an erasure</h3>
          <ul>
            {report.lostKeys.map((subject) => (
              <li key={subject}>
                <code>{subject}</code>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

export function IntegrityView() {
  const [generation, setGeneration] = useState(0);
  const seals = useData((signal) => api.seals(signal), [generation]);
  const [run, setRun] = useState<Run>({ state: 'idle' });
  const verify = () => {
    setRun({ state: 'busy' });
    api.verify().then(
      (report) => {
        setRun({ state: 'done', report });
        setGeneration((n) => n + 1);
      },
      (error: unknown) => setRun({ state: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
    );
  };
  return (
    <section aria-labelledby="integrity-title">
      <h1 id="integrity-title">Integrity</h1>
      <section aria-labelledby="seals-title">
        <h2 id="seals-title">Seals</h2>
        {seals.state === 'loading' ? (
          <Loading />
        ) : seals.state === 'error' ? (
          <Failure error={seals.error} />
        ) : (
          <dl class="facts">
            <dt>Sealed up to</dt>
            <dd>{seals.value.sealedUpTo === 0 ? 'nothing sealed yet' : `position ${seals.value.sealedUpTo}`}</dd>
            <dt>Head</dt>
            <dd>position {seals.value.head}</dd>
            <dt>Not sealed yet</dt>
            <dd>
              {seals.value.unsealed} event{seals.value.unsealed === 1 ? '' : 's'}
            </dd>
          </dl>
        )}
      </section>
      <div class="toolbar">
        <button type="button" onClick={verify} disabled={run.state === 'busy'}>
          {run.state === 'busy' ? 'Verifying…' : 'Verify'}
        </button>
        <span class="muted">Checks every seal and the chains against the events as stored.</span>
      </div>
      {run.state === 'done' ? (
        <Report report={run.report} />
      ) : run.state === 'error' ? (
        <Failure error={run.error} />
      ) : null}
    </section>
  );
}
