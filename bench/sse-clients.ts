/**
 * SSE clients for the server bench, in a process of their own so that parsing their streams
 * does not slow down the process that appends (and stamps `sentAt`): started with `fork`, it
 * opens `clients` connections to `/subscribe`, each on one of `categories` categories, and
 * measures append-to-delivery latency from the `sentAt` in each event's data (wall clock,
 * comparable across processes).
 *
 * Messages: in `{ start: { url, clients, categories } }`, `{ measure: true }`, `{ stop: true }`;
 * out `{ connected: true }` once every stream is open, `{ measuring: true }`, `{ delivered }` when asked, and
 * `{ result: { latencies, fromStore, delivered, dropped, cpuSeconds } }` on stop (latencies sorted,
 * in ms, from the append call and from the event's `recordedAt`; the CPU this process used while
 * measuring).
 */
import { Pool } from 'undici';

interface Start {
  url: string;
  clients: number;
  categories: number;
}

const now = () => performance.timeOrigin + performance.now();
let latencies: number[] = [];
/** From the time the database gave the event (its recordedAt, ms precision) to its arrival. */
let fromStore: number[] = [];
let delivered = 0;
let dropped = 0;
let measuring = false;
let cpuAtStart = process.cpuUsage();
let closing = false;
let pool: Pool | undefined;
const ended: Promise<void>[] = [];

async function start({ url, clients, categories }: Start): Promise<void> {
  pool = new Pool(url, { connections: clients, bodyTimeout: 0, headersTimeout: 30_000 });
  const connected: Promise<void>[] = [];
  for (let c = 0; c < clients; c++) {
    connected.push(
      pool
        .request({
          method: 'GET',
          path: `/subscribe?category=fan${c % categories}`,
          headers: { accept: 'text/event-stream' },
        })
        .then((response) => {
          if (response.statusCode !== 200) throw new Error(`subscribe answered ${response.statusCode}`);
          let pending = '';
          response.body.setEncoding('utf8');
          response.body.on('data', (chunk: string) => {
            const received = now();
            pending += chunk;
            let end = pending.indexOf('\n\n');
            while (end >= 0) {
              const frame = pending.slice(0, end);
              pending = pending.slice(end + 2);
              const sent = /"sentAt":([\d.]+)/.exec(frame);
              const stored = /"recordedAt":"([^"]+)"/.exec(frame);
              if (sent && measuring) {
                latencies.push(received - Number(sent[1]));
                if (stored) fromStore.push(received - Date.parse(stored[1] as string));
                delivered++;
              }
              end = pending.indexOf('\n\n');
            }
          });
          ended.push(
            new Promise<void>((resolve) => {
              response.body.on('close', () => {
                if (!closing) dropped++;
                resolve();
              });
              response.body.on('error', () => resolve());
            }),
          );
        }),
    );
  }
  await Promise.all(connected);
  process.send?.({ connected: true });
}

async function stop(): Promise<void> {
  measuring = false;
  closing = true;
  await pool?.destroy().catch(() => {});
  await Promise.race([Promise.all(ended), new Promise((resolve) => setTimeout(resolve, 2000))]);
  // A sample keeps the message small; percentiles of 100k evenly spaced points are exact enough.
  const sampled = (values: number[]) => {
    values.sort((a, b) => a - b);
    const step = Math.max(1, Math.floor(values.length / 100_000));
    return values.filter((_, i) => i % step === 0);
  };
  const sample = sampled(latencies);
  const storeSample = sampled(fromStore);
  const cpu = process.cpuUsage(cpuAtStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.send?.({ result: { latencies: sample, fromStore: storeSample, delivered, dropped, cpuSeconds } }, () =>
    process.exit(0),
  );
  latencies = [];
  fromStore = [];
}

process.on('message', (message: { start?: Start; measure?: boolean; delivered?: boolean; stop?: boolean }) => {
  if (message.start) void start(message.start).catch((error) => process.send?.({ error: String(error) }));
  if (message.measure) {
    measuring = true;
    cpuAtStart = process.cpuUsage();
    process.send?.({ measuring: true });
  }
  if (message.delivered) process.send?.({ delivered });
  if (message.stop) void stop();
});
