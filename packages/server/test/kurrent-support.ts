/**
 * Helpers of the KurrentDB-protocol tests: a real server with its gRPC endpoint on an
 * ephemeral loopback port, and the official client connected to it.
 */
import type { KurrentDBClient } from '@kurrent/kurrentdb-client';
import type { StartServerOptions } from '../src/index.js';
import { startTestServer, type TestBackend, type TestServer } from './support.js';

export interface KurrentServer extends TestServer {
  /** A client of the gRPC endpoint (closed by `cleanup`). */
  kurrent: KurrentDBClient;
  connectionString: string;
}

/** Starts a server speaking the KurrentDB protocol, and a client connected to it. */
export async function startKurrentServer(
  backend: TestBackend,
  options: Partial<Omit<StartServerOptions, 'client'>> = {},
): Promise<KurrentServer> {
  const server = await startTestServer(backend, { grpc: { port: 0 }, ...options });
  const endpoint = server.grpc;
  if (!endpoint) throw new Error('the server has no gRPC endpoint');
  // Loaded here, not at the top: both official clients register their protobuf messages in
  // one global namespace, so a test file of the older client must not load this one.
  const { KurrentDBClient } = await import('@kurrent/kurrentdb-client');
  const clients: KurrentDBClient[] = [];
  const kurrent = KurrentDBClient.connectionString`${endpoint.connectionString}`;
  clients.push(kurrent);
  return {
    ...server,
    kurrent,
    connectionString: endpoint.connectionString,
    async cleanup() {
      await Promise.all(clients.map((client) => client.dispose()));
      await server.cleanup();
    },
  };
}

/** Collects what an async iterable yields. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Waits until `check` holds (polling), failing after `ms`. */
export async function until(check: () => boolean, ms = 10_000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
