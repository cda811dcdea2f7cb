/** Child processes of the benchmark: started from TypeScript sources, spoken to by IPC. */
import { type ChildProcess, fork } from 'node:child_process';
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
