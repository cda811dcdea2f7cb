/**
 * The dashboard, from the server's own /metrics scraped every few seconds: the log's head,
 * appends/s and events/s (from the last two scrapes), p99 append latency (over the last
 * interval when there were appends, else since the server started), SSE clients, database
 * pool use, and the lag of every subscription and projection.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { parseMetrics, quantile, rate, type Scrape, total } from '../prometheus.js';
import { useLocation } from '../router.js';
import { usePolling } from '../use-data.js';
import { Failure, Loading } from './states.js';

const defaultEverySeconds = 2;

const format = (value: number | undefined, digits = 0) =>
  value === undefined || Number.isNaN(value) ? '—' : value.toLocaleString('en-US', { maximumFractionDigits: digits });

function Tile({ label, value, detail }: { label: string; value: string; detail?: string }) {
  const id = `tile-${label.replace(/\W+/g, '-').toLowerCase()}`;
  return (
    <section class="tile" aria-labelledby={id}>
      <h2 id={id}>{label}</h2>
      <p class="tile-value">{value}</p>
      {detail ? <p class="muted">{detail}</p> : null}
    </section>
  );
}

export function DashboardView() {
  const { search } = useLocation();
  const every = Math.max(0.5, Number(search.get('every')) || defaultEverySeconds);
  const [scrapes, setScrapes] = useState<Scrape[]>([]);
  const error = usePolling(async (signal) => {
    const text = await api.metrics(signal);
    setScrapes((list) => [...list.slice(-1), parseMetrics(text)]);
  }, every);

  const last = scrapes[scrapes.length - 1];
  const before = scrapes.length > 1 ? scrapes[0] : undefined;
  return (
    <section aria-labelledby="dashboard-title">
      <h1 id="dashboard-title">Dashboard</h1>
      {error ? <Failure error={error} /> : null}
      {!last ? (
        <Loading />
      ) : (
        (() => {
          const windowSeconds = before ? (last.at - before.at) / 1000 : 0;
          const recent = before ? quantile(0.99, last, 'annals_append_duration_seconds', before) : undefined;
          const p99 = recent ?? quantile(0.99, last, 'annals_append_duration_seconds');
          const poolTotal = total(last, 'annals_db_pool_connections', { state: 'total' });
          const lags = last.samples.filter((s) => s.name === 'annals_checkpoint_lag_events');
          return (
            <>
              <div class="tiles">
                <Tile label="Head position" value={format(total(last, 'annals_log_head_position'))} />
                <Tile
                  label="Appends/s"
                  value={before ? format(rate(before, last, 'annals_appends_total', { outcome: 'ok' }), 1) : '…'}
                  detail={before ? `over the last ${format(windowSeconds, 1)} s` : 'after the next scrape'}
                />
                <Tile
                  label="Events/s"
                  value={before ? format(rate(before, last, 'annals_events_appended_total'), 1) : '…'}
                />
                <Tile
                  label="p99 append latency"
                  value={p99 === undefined ? '—' : `${format(p99 * 1000, 2)} ms`}
                  detail={recent !== undefined ? `over the last ${format(windowSeconds, 1)} s` : 'since the start'}
                />
                <Tile label="SSE clients" value={format(total(last, 'annals_sse_clients'))} />
                <Tile
                  label="Pool connections"
                  value={
                    poolTotal === undefined
                      ? 'no pool'
                      : `${format(poolTotal - (total(last, 'annals_db_pool_connections', { state: 'idle' }) ?? 0))} busy of ${format(poolTotal)}`
                  }
                  detail={
                    poolTotal === undefined
                      ? 'the embedded database has one connection'
                      : `${format(total(last, 'annals_db_pool_connections', { state: 'waiting' }))} waiting`
                  }
                />
              </div>
              <h2>Subscriptions and projections</h2>
              {lags.length === 0 ? (
                <p class="empty">None has a checkpoint yet.</p>
              ) : (
                <table aria-label="Checkpoint lag">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col" class="num">
                        Lag (events)
                      </th>
                      <th scope="col" class="num">
                        Lag (seconds)
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {lags.map((sample) => (
                      <tr key={sample.labels.name}>
                        <td>{sample.labels.name}</td>
                        <td class="num">{format(sample.value)}</td>
                        <td class="num">
                          {format(total(last, 'annals_checkpoint_lag_seconds', { name: sample.labels.name ?? '' }), 1)}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              <p class="muted">
                From <code>/metrics</code>, every {every} s.
              </p>
            </>
          );
        })()
      )}
    </section>
  );
}
