/** Child processes of the benchmark: started from TypeScript sources, spoken to by IPC. */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Forks `module` (relative to bench/) with the TypeScript loader and an IPC channel. */
export function forkBench(module: string): ChildProcess {
  return fork(fileURLToPath(new URL(module, import.meta.url)), [], {
    execArgv: ['--conditions=@annals/source', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/**
 * Resolves with `message[key]` of the next message from `child` that has `key`; rejects on a
 * message with `error`, or when the child exits with a failure first.
 */
export function nextMessage<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => {
      if (code !== 0) reject(new Error(`bench child exited with ${code}`));
    };
    const onMessage = (value: Record<string, unknown>) => {
      if (value.error) reject(new Error(String(value.error)));
      if (key in value) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(value[key] as T);
      }
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** `annals serve` in a child process. */
export interface ServeChild {
  process: ChildProcess;
  url: string;
  /** The KurrentDB connection string, when started with `--grpc-port`. */
  grpc?: string;
  stop(): Promise<void>;
}

/**
 * Starts `annals serve --port 0` on `url`/`schema` in a child process, with `flags` (e.g.
 * `--auth off`); resolves once it listens.
 */
export async function startServe(url: string, schema: string, poolSize: number, flags: string[]): Promise<ServeChild> {
  const child = spawn(
    process.execPath,
    [
      // Extra node flags for the server, e.g. BENCH_SERVER_FLAGS=--cpu-prof to profile it.
      ...(process.env.BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? []),
      '--conditions=@annals/source',
      '--import',
      'tsx',
      'packages/cli/src/main.ts',
      'serve',
      '--port',
      '0',
      '--pool-size',
      String(poolSize),
      ...flags,
    ],
    {
      cwd: root,
      env: { ...process.env, DATABASE_URL: url, ANNALS_SCHEMA: schema, ANNALS_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const wantsGrpc = flags.includes('--grpc-port');
  const listening = await new Promise<{ http: string; grpc?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`annals serve did not start in 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const http = /http:\/\/127\.0\.0\.1:\d+/.exec(output)?.[0];
      const grpc = /kurrentdb:\/\/\S+/.exec(output)?.[0];
      if (http && (grpc || !wantsGrpc)) {
        clearTimeout(timer);
        resolve({ http, ...(grpc ? { grpc } : {}) });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`annals serve exited (${code}):\n${output}`));
    });
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    process: child,
    url: listening.http,
    ...(listening.grpc ? { grpc: listening.grpc } : {}),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
