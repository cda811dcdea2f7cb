/**
 * A PostgreSQL cluster of the test's own (initdb into a temporary directory, a postmaster on a
 * free loopback port), for tests that restart the server: the shared server of the other test
 * files must never go down under them. Needs the server binaries (`pg_config --bindir`) and,
 * as root, the `postgres` user to run them as; `privateClusterUnavailable` says why not.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

function binDir(): string | undefined {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    return existsSync(join(dir, 'initdb')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

const bin = binDir();
const hasBasebackup = bin !== undefined && existsSync(join(bin, 'pg_basebackup'));
const isRoot = process.getuid?.() === 0;
const postgresUser = (() => {
  if (!isRoot) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  return id.status === 0 ? { uid: Number(id.stdout), gid: Number(gid.stdout) } : undefined;
})();

/** Why a streaming replica cannot be made here, or undefined when it can. */
export const replicaUnavailable = (): string | undefined =>
  privateClusterUnavailable ?? (hasBasebackup ? undefined : 'pg_basebackup is not installed');

/** Why a private cluster cannot be made here, or undefined when it can. */
export const privateClusterUnavailable: string | undefined = !bin
  ? 'the PostgreSQL server binaries (initdb, pg_ctl) are not installed'
  : isRoot && !postgresUser
    ? 'running as root without a postgres user to run initdb as'
    : undefined;

export interface PrivateCluster {
  url: string;
  port: number;
  dataDir: string;
  /**
   * A streaming replica of this cluster (`pg_basebackup -R`: a hot standby on a port of its
   * own, following this one's WAL), started; it goes with this cluster's `cleanup`.
   */
  startReplica(): Promise<PrivateCluster>;
  /** Restarts the server: `fast` (a clean shutdown) or `immediate` (as after a crash). */
  restart(mode?: 'fast' | 'immediate'): void;
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
  /** Stops it and removes its directory. */
  cleanup(): void;
}

/** Runs one of the server's programs (as `postgres` when we are root). */
function run(program: string, args: string[]): void {
  const path = join(bin as string, program);
  const result = postgresUser
    ? spawnSync('runuser', ['-u', 'postgres', '--', path, ...args], { encoding: 'utf8' })
    : spawnSync(path, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${program} failed: ${result.stderr || result.stdout}`);
}

/** Makes and starts a cluster; `settings` are extra `-c` settings of its postmaster. */
export async function startPrivateCluster(settings: Record<string, string> = {}): Promise<PrivateCluster> {
  if (privateClusterUnavailable) throw new Error(privateClusterUnavailable);
  const root = mkdtempSync(join(tmpdir(), 'annals-pg-'));
  if (postgresUser) chownSync(root, postgresUser.uid, postgresUser.gid);
  chmodSync(root, 0o700);
  const dataDir = join(root, 'data');
  run('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  return startIn(root, dataDir, settings);
}

/** Starts the postmaster of `dataDir` (inside `root`) on a free port. */
async function startIn(root: string, dataDir: string, settings: Record<string, string>): Promise<PrivateCluster> {
  const port = await freePort();
  const options = Object.entries({
    port: String(port),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: root,
    fsync: 'off',
    shared_buffers: '64MB',
    ...settings,
  })
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
  const log = join(root, `log-${port}`);
  const start = () => run('pg_ctl', ['-D', dataDir, '-l', log, '-w', '-t', '60', '-o', options, 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast') => run('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']);
  start();
  const replicas: PrivateCluster[] = [];
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    dataDir,
    async startReplica() {
      const replicaDir = join(root, `replica-${replicas.length + 1}`);
      run('pg_basebackup', [
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
        '-D',
        replicaDir,
        '-R',
        '-X',
        'stream',
      ]);
      const replica = await startIn(root, replicaDir, { ...settings, hot_standby: 'on' });
      replicas.push(replica);
      return replica;
    },
    restart(mode = 'fast') {
      stop(mode);
      start();
    },
    stop,
    start,
    cleanup() {
      for (const replica of replicas) replica.cleanup();
      try {
        stop('immediate');
      } catch {
        // Already stopped.
      }
      if (dataDir.endsWith('/data')) rmSync(root, { recursive: true, force: true });
    },
  };
}
