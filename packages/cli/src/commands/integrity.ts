/** `annals seal`, `annals verify` and `annals forget`: tamper evidence and erasure. */
import { type EventStore, InvalidInputError, integrity, personalData, type VerifyReport } from '@annals/core';
import cliProgress from 'cli-progress';
import { type ConnectionFlags, withStore } from '../config.js';

type Flags = ConnectionFlags & { json?: boolean };

/** A progress bar on stderr, only for a person watching (a terminal, no --json). */
function progressBar(json: boolean | undefined, label: string) {
  if (json || !process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} events | ETA {eta}s`, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total: number) => bar.start(total, 0),
    update: (value: number, total?: number) => {
      if (total !== undefined) bar.setTotal(total);
      bar.update(value);
    },
    stop: () => bar.stop(),
  };
}

async function sealWithProgress(store: EventStore, json?: boolean): Promise<number> {
  const bar = progressBar(json, 'sealing');
  if (!bar) return integrity(store).seal();
  bar.start((await integrity(store).status()).unsealed);
  try {
    return await integrity(store).seal({ onProgress: (sealed) => bar.update(sealed) });
  } finally {
    bar.stop();
  }
}

/** `annals seal`: seals every event appended since the last seal. */
export async function sealCommand(flags: Flags): Promise<void> {
  await withStore(flags, async (store) => {
    const sealed = await sealWithProgress(store, flags.json);
    const { sealedUpTo } = await integrity(store).status();
    console.log(
      flags.json
        ? JSON.stringify({ sealed, sealedUpTo })
        : `sealed ${sealed} events; the log is sealed up to position ${sealedUpTo}`,
    );
  });
}

/** `annals verify`: recomputes the seals; exits with status 1 when a link is broken. */
export async function verifyCommand(
  flags: Flags & { stream?: string; seal?: boolean; anchor?: string },
): Promise<void> {
  const anchor = flags.anchor === undefined ? undefined : parseAnchor(flags.anchor);
  const report: VerifyReport = await withStore(flags, async (store) => {
    if (flags.seal) await sealWithProgress(store, flags.json);
    const bar = progressBar(flags.json, 'verifying');
    bar?.start(0);
    try {
      return await integrity(store).verify({
        streamId: flags.stream,
        anchor,
        onProgress: bar ? (checked, total) => bar.update(checked, total) : undefined,
      });
    } finally {
      bar?.stop();
    }
  });
  if (flags.json) {
    console.log(JSON.stringify(report));
  } else {
    const scope = flags.stream ? `stream ${flags.stream}` : 'the store';
    if (report.brokenCount === 0) console.log(`ok: ${report.checked} sealed events of ${scope} match their seals`);
    else {
      console.log(`TAMPERED: ${report.brokenCount} broken link(s) in ${scope}; the first:`);
      for (const link of report.broken.slice(0, 10)) console.log(`  ${link.problem}: ${link.message}`);
    }
    if (report.lostKeys.length > 0) {
      console.log(`KEYS LOST without a recorded erasure, for data subjects: ${report.lostKeys.join(', ')}`);
    }
    if (report.unsealed > 0) console.log(`${report.unsealed} newer events are not sealed yet (run with --seal)`);
    if (report.headHash && !flags.stream) {
      console.log(`anchor: ${report.sealedUpTo}:${report.headHash}`);
      console.log('(keep it outside the database; `annals verify --anchor <it>` later shows any rewrite up to there)');
    }
  }
  if (!report.ok) process.exitCode = 1;
}

/** `<position>:<64 hex digits>`, as `verify` prints it. */
function parseAnchor(text: string): { position: number; hash: string } {
  const match = /^(\d+):([0-9a-fA-F]{64})$/.exec(text);
  if (!match)
    throw new InvalidInputError(
      '--anchor',
      `must be <position>:<64 hex digits> as verify prints it, got ${JSON.stringify(text)}`,
    );
  return { position: Number(match[1]), hash: match[2] as string };
}

/** `annals forget <subject>`: erases a data subject's personal fields everywhere. */
export async function forgetCommand(
  subject: string,
  flags: Flags & { actor?: string; reason?: string },
): Promise<void> {
  if (!flags.reason) throw new InvalidInputError('--reason', 'is required: an erasure is recorded with why');
  await withStore(flags, async (store) => {
    const result = await personalData(store).forget(subject, { actor: flags.actor, reason: flags.reason });
    if (flags.json) console.log(JSON.stringify(result));
    else if (!result.forgotten) console.log(`${subject} has no key: never seen, or already forgotten`);
    else {
      console.log(
        `forgot ${subject}: ${result.events} events now read its personal fields as null; ${result.snapshotsDropped} snapshot(s) dropped; recorded at position ${result.position}`,
      );
    }
  });
}
