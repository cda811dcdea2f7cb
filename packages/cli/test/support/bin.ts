/**
 * The real `annals` bin, as an operator runs it: its TypeScript entry point through tsx, in a
 * child process, on this test run's PostgreSQL database (DATABASE_URL).
 */
import { execFile } from 'node:child_process';
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
