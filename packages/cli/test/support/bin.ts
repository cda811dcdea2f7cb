/**
 * The real `annals` bin, as an operator runs it: its TypeScript entry point through tsx, in a
 * child process, on this test run's PostgreSQL database (DATABASE_URL).
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseUrl } from '../../../core/test/support/backends.js';

/** The repository's root, where the bin runs. */
export const repo = fileURLToPath(new URL('../../../..', import.meta.url));

/** Node's arguments that run the bin from its sources; append the command's own. */
export const binArgs = ['--import', 'tsx', '--conditions=@annals/source', join(repo, 'packages/cli/src/main.ts')];

/** Runs `annals <args>`; resolves with its output and exit status, whatever the status. */
export function annals(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...binArgs, ...args],
      { cwd: repo, env: { ...process.env, DATABASE_URL: databaseUrl }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A long-running `annals` command (such as `serve`) in a child process. */
export interface RunningAnnals {
  child: ChildProcessWithoutNullStreams;
  /** What `ready` found in its output. */
  found: string;
  /** Everything it printed so far. */
  output(): string;
}

/**
 * Starts `annals <args>` and resolves once `ready` finds what it waits for in the output
 * (stdout and stderr), e.g. the URL a server prints; rejects if it exits first or takes
 * longer than 30 s. `url` is its DATABASE_URL (this run's database by default).
 */
export function spawnAnnals(
  args: string[],
  ready: (output: string) => string | undefined,
  url: string | undefined = databaseUrl,
): Promise<RunningAnnals> {
  const child = spawn(process.execPath, [...binArgs, ...args], {
    cwd: repo,
    env: { ...process.env, DATABASE_URL: url },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  return new Promise<RunningAnnals>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`annals ${args[0]} did not start:\n${output}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const found = ready(output);
      if (found !== undefined) {
        clearTimeout(timer);
        resolve({ child, found, output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`annals ${args[0]} exited with ${code}:\n${output}`));
    });
  });
}

/** The `http://127.0.0.1:<port>` a server printed, if it did. */
export const httpUrlIn = (output: string) => /http:\/\/127\.0\.0\.1:\d+/.exec(output)?.[0];
