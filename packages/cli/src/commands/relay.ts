/**
 * `annals relay nats`: publishes the log to a NATS JetStream stream, in log order, each event
 * exactly once, until SIGINT or SIGTERM. Run it in as many processes as you like: one relays,
 * the others stand by and take over when it dies.
 */
import { type NatsRelayOptions, type NatsRelayStatus, startNatsRelay } from '@annals/nats';
import { type ConnectionFlags, openStore } from '../config.js';

export type RelayNatsFlags = ConnectionFlags & {
  natsUrl?: string;
  name?: string;
  stream?: string;
  subject?: string;
  category?: string[];
  type?: string[];
  from?: 'start' | 'end';
  batchSize?: number;
  includePersonalData?: boolean;
  statusEvery?: number;
  json?: boolean;
};

function describe(status: NatsRelayStatus): string {
  const error = status.lastError ? `  last error: ${status.lastError}` : '';
  return (
    `${status.state}  checkpoint #${status.position} of #${status.head}  lag ${status.lag}  ` +
    `published ${status.published} (${status.eventsPerSecond}/s)  sequence ${status.lastSequence}${error}`
  );
}

export async function relayNatsCommand(flags: RelayNatsFlags): Promise<void> {
  const servers = (flags.natsUrl ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222').split(',');
  const options: NatsRelayOptions = {
    servers,
    name: flags.name,
    stream: flags.stream,
    subject: flags.subject,
    categories: flags.category,
    eventTypes: flags.type,
    from: flags.from,
    batchSize: flags.batchSize,
    personalData: flags.includePersonalData ? 'include' : 'redact',
  };
  const { store, description } = await openStore(flags, false);
  try {
    const relay = startNatsRelay(store, options);
    if (!flags.json) {
      console.error(`relaying ${description} to ${servers.join(', ')} as "${relay.name}" (Ctrl-C to stop)`);
    }
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    const every = flags.statusEvery ?? 5000;
    const report = setInterval(() => {
      relay
        .status()
        .then((status) => console.log(flags.json ? JSON.stringify(status) : describe(status)))
        .catch((error: Error) => console.error(`status: ${error.message}`));
    }, every);
    await stopped;
    clearInterval(report);
    await relay.stop();
    const last = await relay.status().catch(() => undefined);
    if (last && !flags.json) console.error(`stopped: ${describe(last)}`);
  } finally {
    await store.close();
  }
}
