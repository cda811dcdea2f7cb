/**
 * The read side: every durable subscription's and projection's checkpoint (`GET /checkpoints`)
 * refreshed every 2 s (`?every=<seconds>`), with its lag in events and seconds, a sparkline
 * of the lag over the last minute and its events/s (both from samples kept in memory while
 * the app is open), and the error it last parked an event with; the app's projections with
 * their rebuilds (rebuild.tsx); and a
 * subscription's parked events (`/checkpoints/<name>`) with their errors and a Replay button
 * (`POST /subscriptions/<name>/parked/replay`: the app's handler delivers them again).
 */
import { useState } from 'preact/hooks';
import { api, type CheckpointStatus } from '../api.js';
import { Link, useLocation } from '../router.js';
import { useData, usePolling } from '../use-data.js';
import { ProjectionsPanel } from './rebuild.js';
import { Failure, Loading } from './states.js';

const defaultEverySeconds = 2;
const historyMs = 60_000;

/** Samples per checkpoint, over the last minute; module-wide, so they outlive the view. */
const history = new Map<string, Sample[]>();

interface Sample {
  at: number;
  lag: number;
  position: number;
}

function remember(checkpoints: CheckpointStatus[], at: number): void {
  for (const checkpoint of checkpoints) {
    const samples = (history.get(checkpoint.name) ?? []).filter((sample) => sample.at > at - historyMs);
    samples.push({ at, lag: checkpoint.lag, position: checkpoint.position });
    history.set(checkpoint.name, samples);
  }
}

/**
 * Events/s over the samples kept (the position's change over the time between the first and
 * the last); undefined until two samples a moment apart.
 */
export function rateOf(samples: readonly Sample[]): number | undefined {
  const [first, last] = [samples[0], samples.at(-1)];
  if (!first || !last || last.at <= first.at) return undefined;
  return Math.max(0, ((last.position - first.position) * 1000) / (last.at - first.at));
}

/** A tiny line of `values` (oldest first), scaled to its own maximum; described in words. */
export function Sparkline({ values, width = 120, height = 24 }: { values: number[]; width?: number; height?: number }) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values
    .map((value, index) => `${(index * step).toFixed(1)},${(height - 2 - (value / max) * (height - 4)).toFixed(1)}`)
    .join(' ');
  const last = values.at(-1) ?? 0;
  const label =
    values.length === 0
      ? 'no samples yet'
      : `lag over the last minute: ${values.length} samples, highest ${Math.max(...values)}, now ${last}`;
  return (
    <svg
      class="sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={label}
    >
      <title>{label}</title>
      {values.length > 1 ? <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" /> : null}
      {values.length > 0 ? (
        <circle
          cx={(values.length - 1) * step}
          cy={height - 2 - (last / max) * (height - 4)}
          r="2"
          fill="currentColor"
        />
      ) : null}
    </svg>
  );
}

/** In words: caught up, behind, or holding parked events. */
export function stateOf(checkpoint: CheckpointStatus): string {
  const lag = checkpoint.lag === 0 ? 'caught up' : 'behind';
  return checkpoint.parked > 0 ? `${lag}, ${checkpoint.parked} parked` : lag;
}

const format = (value: number, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits });

export function CheckpointsView() {
  const { search } = useLocation();
  const every = Math.max(0.5, Number(search.get('every')) || defaultEverySeconds);
  const [checkpoints, setCheckpoints] = useState<CheckpointStatus[] | undefined>();
  const error = usePolling(async (signal) => {
    const answer = await api.checkpoints(signal);
    remember(answer.checkpoints, Date.now());
    setCheckpoints(answer.checkpoints);
  }, every);

  return (
    <section aria-labelledby="checkpoints-title">
      <h1 id="checkpoints-title">Read side</h1>
      {error ? <Failure error={error} /> : null}
      {checkpoints === undefined ? (
        error ? null : (
          <Loading />
        )
      ) : checkpoints.length === 0 ? (
        <p class="empty">No subscription or projection has a checkpoint yet.</p>
      ) : (
        <table aria-label="Checkpoints">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col" class="num">
                Position
              </th>
              <th scope="col" class="num">
                Lag (events)
              </th>
              <th scope="col" class="num">
                Lag (seconds)
              </th>
              <th scope="col" class="num">
                Parked
              </th>
              <th scope="col">Lag, last minute</th>
              <th scope="col" class="num">
                Events/s
              </th>
              <th scope="col">Last error</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {checkpoints.map((checkpoint) => {
              const samples = history.get(checkpoint.name) ?? [];
              const rate = rateOf(samples);
              return (
                <tr key={checkpoint.name}>
                  <td>
                    <Link to={`/checkpoints/${encodeURIComponent(checkpoint.name)}`}>{checkpoint.name}</Link>
                  </td>
                  <td>{stateOf(checkpoint)}</td>
                  <td class="num">{format(checkpoint.position)}</td>
                  <td class="num">{format(checkpoint.lag)}</td>
                  <td class="num">{format(checkpoint.lagSeconds, 1)}</td>
                  <td class="num">{format(checkpoint.parked)}</td>
                  <td>
                    <Sparkline values={samples.map((sample) => sample.lag)} />
                  </td>
                  <td class="num">{rate === undefined ? '—' : format(rate, 1)}</td>
                  <td class={checkpoint.lastError ? 'error' : undefined}>
                    {checkpoint.lastError ? (
                      <>
                        {checkpoint.lastError.error}{' '}
                        <time class="muted" dateTime={checkpoint.lastError.parkedAt}>
                          ({new Date(checkpoint.lastError.parkedAt).toLocaleString()})
                        </time>
                      </>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td>
                    <time dateTime={checkpoint.updatedAt}>{new Date(checkpoint.updatedAt).toLocaleString()}</time>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <p class="muted">
        From <code>/checkpoints</code>, every {every} s; events/s over the samples of the last minute. A subscription's
        name opens its parked events.
      </p>
      <ProjectionsPanel everySeconds={every} />
    </section>
  );
}

export function ParkedView({ name }: { name: string }) {
  const [generation, setGeneration] = useState(0);
  const [replay, setReplay] = useState<
    | { state: 'idle' }
    | { state: 'busy' }
    | { state: 'done'; replayed: number; failed: number }
    | { state: 'error'; error: Error }
  >({ state: 'idle' });
  const loaded = useData((signal) => api.parked(name, signal), [name, generation]);
  const run = () => {
    setReplay({ state: 'busy' });
    api.replayParked(name).then(
      (result) => {
        setReplay({ state: 'done', ...result });
        setGeneration((n) => n + 1);
      },
      (error: unknown) =>
        setReplay({ state: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
    );
  };
  return (
    <section aria-labelledby="parked-title">
      <h1 id="parked-title">Parked events of {name}</h1>
      <p>
        <Link to="/checkpoints">Back to the read side</Link>
      </p>
      {loaded.state === 'loading' ? (
        <Loading />
      ) : loaded.state === 'error' ? (
        <Failure error={loaded.error} />
      ) : (
        <>
          <div class="toolbar">
            <button type="button" onClick={run} disabled={replay.state === 'busy' || loaded.value.parked.length === 0}>
              {replay.state === 'busy' ? 'Replaying…' : 'Replay'}
            </button>
            <span class="muted">
              Delivers each parked event again to the app's handler; each that succeeds is unparked.
            </span>
          </div>
          {replay.state === 'done' ? (
            <p role="status">
              Replayed {replay.replayed}, failed again {replay.failed}.
            </p>
          ) : replay.state === 'error' ? (
            <Failure error={replay.error} />
          ) : null}
          {loaded.value.parked.length === 0 ? (
            <p class="empty">No parked events.</p>
          ) : (
            <table aria-label={`Parked events of ${name}`}>
              <thead>
                <tr>
                  <th scope="col" class="num">
                    Position
                  </th>
                  <th scope="col">Event</th>
                  <th scope="col" class="num">
                    Attempts
                  </th>
                  <th scope="col">Error</th>
                  <th scope="col">Parked at</th>
                </tr>
              </thead>
              <tbody>
                {loaded.value.parked.map((parked) => (
                  <tr key={parked.position}>
                    <td class="num">{parked.position}</td>
                    <td>
                      <Link to={`/events/${encodeURIComponent(parked.eventId)}`}>
                        <code>{parked.eventId}</code>
                      </Link>
                    </td>
                    <td class="num">{parked.attempts}</td>
                    <td class="error">{parked.error}</td>
                    <td>
                      <time dateTime={parked.parkedAt}>{new Date(parked.parkedAt).toLocaleString()}</time>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
