/**
 * Helpers of the KurrentDB-protocol tests: a real server with its gRPC endpoint on an
 * ephemeral loopback port, and the official client connected to it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = 'a condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A CA and a server certificate it signs for 127.0.0.1 and localhost, in a temporary directory
 * removed when the process exits (the Rust half of the Node client, its reads, refuses a
 * self-signed CA certificate as a server's own). Made with openssl.
 */
export function testCertificate(): { certFile: string; keyFile: string; caFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'annals-grpc-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const subject = (cn: string) => ['-subj', `/CN=${cn}`];
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
    '-days',
    '1',
    ...subject('annals-test-ca'),
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('key.pem'),
    '-out',
    file('server.csr'),
    ...subject('localhost'),
  );
  writeFileSync(
    file('ext.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-out',
    file('cert.pem'),
    '-days',
    '1',
    '-extfile',
    file('ext.cnf'),
  );
  return { certFile: file('cert.pem'), keyFile: file('key.pem'), caFile: file('ca.pem') };
}
