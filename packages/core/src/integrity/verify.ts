/**
 * `verify`: two walks over the seals, each a page at a time in constant memory.
 *
 * 1. By (stream, version), through the unique index: recompute each seal from the event now
 *    stored at its position and the previous seal of its stream. Catches an event edited or
 *    moved (its hash differs), deleted (no event at the position), or a stream's seal missing
 *    (a version is skipped).
 * 2. By position (whole store only): recompute the log chain, each log hash from the previous
 *    one and the position's seal. Catches a seal rewritten to match an edited event (its log
 *    hash, or the next one, no longer follows) and seals missing from the log (a position is
 *    skipped), and compares the log hash at an anchor the caller kept from an earlier verify.
 *
 * 3. Personal data (whole store only): every subject whose key is gone has its erasure
 *    recorded; a key deleted any other way makes data unreadable without a lawful reason.
 *
 * Ranges detached from a partitioned log (`partitions(store).detach`, recorded in
 * `reclaimed_ranges` and by a sealed `LogRangeDetached` event in `$lifecycle`) keep their
 * seals: their events are missing on purpose, so walk 1 counts them as reclaimed, and walk 2
 * still recomputes the log chain through them and checks it reaches the log hash recorded
 * when they left. A range without its sealed record is not believed.
 *
 * Only an anchor catches the newest events removed together with their seals, or a whole
 * tail of seals recomputed: keep `headHash` outside the database and pass it back as `anchor`.
 */
import type { SqlClient } from '../db/sql-client.js';
import { toAnnalsError } from '../errors.js';
import { readDetachRecords, readReclaimedRanges } from '../queries/partitions.js';
import { readHeadPosition } from '../queries/read-all.js';
import {
  readFirstUnsealedOfStream,
  readLastSealed,
  readLogChain,
  readSealChain,
  type SealedEvent,
} from '../queries/seals.js';
import { readKeysLostWithoutErasure } from '../queries/subject-keys.js';
import { genesisHash, logHash, sealHash } from './seal-hash.js';

/** One link of a chain that does not hold. */
export interface BrokenLink {
  /** Where it breaks: the event's position, or the first position of a gap. */
  position: number;
  /** The stream, where known ('' for a break found only in the log chain). */
  streamId: string;
  streamVersion: number;
  /** The event's id as stored now (null when it is gone or not known). */
  eventId: string | null;
  problem: 'event-changed' | 'event-missing' | 'seal-missing' | 'seal-changed' | 'anchor-mismatch';
  message: string;
}

/** What {@link EventStore.verify} found. */
export interface VerifyReport {
  /** True when every sealed event matches its seal, every chain holds and no key was lost. */
  ok: boolean;
  /** Seals checked. */
  checked: number;
  /** Of those, seals of events detached with a reclaimed range (their events left on purpose). */
  reclaimed: number;
  /** The last sealed position. */
  sealedUpTo: number;
  /** Events after it, not sealed yet (not covered by this report). */
  unsealed: number;
  /** Broken links, lowest position first (at most `maxBroken`); `broken[0]` is the first. */
  broken: BrokenLink[];
  /** How many broken links there are in all. */
  brokenCount: number;
  /**
   * Data subjects whose key is gone with no erasure of theirs recorded (`SubjectForgotten`):
   * their personal data became unreadable without a lawful decision (at most `maxBroken`).
   */
  lostKeys: string[];
  /**
   * The log hash at `sealedUpTo` (for one stream: its last seal), hex. It stands for every
   * seal up to there: keep it outside the database and pass it later as `anchor`.
   */
  headHash: string | null;
}

/** Options of {@link EventStore.verify}. */
export interface VerifyOptions {
  /** Only this stream's chain. */
  streamId?: string;
  /** A log hash kept from an earlier verify (`sealedUpTo` and `headHash`): checked too. */
  anchor?: { position: number; hash: string };
  /** Seals read per round trip. @defaultValue 2000 */
  pageSize?: number;
  /** Broken links kept in the report. @defaultValue 100 */
  maxBroken?: number;
  /** Called after each page with the seals checked so far and the number to check. */
  onProgress?: (checked: number, total: number) => void;
}

export async function verifySeals(
  client: SqlClient,
  schema: string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const { streamId, anchor, pageSize = 2000, maxBroken = 100, onProgress } = options;
  try {
    // Both walks stop at the seals there were when it began: with a sealer running they would
    // chase it, and `headHash` must be the log hash at `sealedUpTo`, the pair kept as anchor.
    const sealedUpTo = await readLastSealed(client, schema);
    const head = await readHeadPosition(client, schema);
    const ranges = await readReclaimedRanges(client, schema);
    // A range counts only with its detach recorded after it in `$lifecycle`, sealed, with the
    // same bounds, count and log hash: a row written into reclaimed_ranges alone proves nothing.
    const records = ranges.length > 0 ? await readDetachRecords(client, schema, 'LogRangeDetached', sealedUpTo) : [];
    const proven = ranges.filter((range) =>
      records.some(
        ({ position, data }) =>
          position > range.toPosition &&
          data.fromPosition === range.fromPosition &&
          data.toPosition === range.toPosition &&
          data.eventCount === range.eventCount &&
          data.logHash === range.logHash,
      ),
    );
    const wasReclaimed = (position: number) =>
      proven.some((range) => position >= range.fromPosition && position <= range.toPosition);
    let reclaimed = 0;
    let broken: BrokenLink[] = [];
    let brokenCount = 0;
    // Keeps the lowest `maxBroken` links, sorting now and then rather than on every report.
    const keepFirst = () => {
      broken.sort((a, b) => a.position - b.position);
      broken = broken.slice(0, maxBroken);
    };
    const report = (link: BrokenLink) => {
      brokenCount++;
      broken.push(link);
      if (broken.length >= 4 * maxBroken) keepFirst();
    };
    /** A break found in the log chain, which knows positions only. */
    const logLink = (position: number, problem: BrokenLink['problem'], message: string) =>
      report({ position, streamId: '', streamVersion: 0, eventId: null, problem, message });
    const finish = (headHash: string | null, lostKeys: string[] = []): VerifyReport => {
      keepFirst();
      return {
        ok: brokenCount === 0 && lostKeys.length === 0,
        checked,
        reclaimed,
        sealedUpTo,
        unsealed: Math.max(0, head - sealedUpTo),
        broken,
        brokenCount,
        lostKeys,
        headHash,
      };
    };
    // Progress counts both walks for the whole store.
    let done = 0;
    const progress = (n: number) => {
      done += n;
      onProgress?.(done, streamId ? done : Math.max(2 * sealedUpTo, done));
    };

    // 1. Stream chains.
    let checked = 0;
    let previous: SealedEvent | undefined;
    let after = { streamId: streamId ?? '', streamVersion: streamId ? 0 : -1 };
    for (;;) {
      const page = await readSealChain(client, schema, after, pageSize, sealedUpTo, streamId !== undefined);
      for (const seal of page) {
        const sameStream = previous?.streamId === seal.streamId;
        const expectedVersion = sameStream ? (previous as SealedEvent).streamVersion + 1 : 1;
        const where = `position ${seal.position} (${seal.streamId}@${seal.streamVersion})`;
        const link = (problem: BrokenLink['problem'], message: string) =>
          report({
            position: seal.position,
            streamId: seal.streamId,
            streamVersion: seal.streamVersion,
            eventId: seal.event?.eventId ?? null,
            problem,
            message,
          });
        if (seal.streamVersion !== expectedVersion) {
          link('seal-missing', `${seal.streamId}: the seal of version ${expectedVersion} is missing (before ${where})`);
        } else if (seal.event === null) {
          if (wasReclaimed(seal.position)) reclaimed++;
          else link('event-missing', `the event at ${where} is gone`);
        } else if (!sealHash(seal.event, sameStream ? (previous as SealedEvent).hash : genesisHash).equals(seal.hash)) {
          link('event-changed', `the event at ${where} does not match its seal (the event, or its seal, was changed)`);
        }
        previous = seal;
      }
      checked += page.length;
      progress(page.length);
      const last = page.at(-1);
      if (!last || page.length < pageSize) break;
      after = { streamId: last.streamId, streamVersion: last.streamVersion };
    }

    if (streamId !== undefined) {
      // A stream's newest seal deleted leaves no gap in its chain: look for its events without one.
      const unsealed = await readFirstUnsealedOfStream(client, schema, streamId, sealedUpTo);
      if (unsealed) {
        report({
          position: unsealed.position,
          streamId,
          streamVersion: unsealed.streamVersion,
          eventId: unsealed.eventId,
          problem: 'seal-missing',
          message: `the seal of ${streamId}@${unsealed.streamVersion} (position ${unsealed.position}) is missing`,
        });
      }
      return finish(previous?.hash.toString('hex') ?? null);
    }

    // 2. The log chain.
    let position = 0;
    let log = genesisHash;
    let anchorSeen = false;
    for (;;) {
      const page = await readLogChain(client, schema, position, pageSize, sealedUpTo);
      for (const seal of page) {
        if (seal.position !== position + 1) {
          logLink(
            position + 1,
            'seal-missing',
            `the seals of positions ${position + 1}..${seal.position - 1} are missing`,
          );
        } else if (!logHash(log, seal.hash).equals(seal.logHash)) {
          logLink(
            seal.position,
            'seal-changed',
            `the log chain breaks at position ${seal.position}: a seal at or just before it was rewritten`,
          );
        }
        const range = ranges.find((r) => r.toPosition === seal.position);
        if (range && seal.logHash.toString('hex') !== range.logHash) {
          logLink(
            seal.position,
            'seal-changed',
            `the log hash at position ${seal.position} is not the one recorded when positions ${range.fromPosition}..${range.toPosition} were detached`,
          );
        }
        if (anchor && seal.position === anchor.position) {
          anchorSeen = true;
          if (seal.logHash.toString('hex') !== anchor.hash.toLowerCase()) {
            logLink(
              seal.position,
              'anchor-mismatch',
              `the log hash at position ${seal.position} is not the one kept as anchor: seals up to there were rewritten`,
            );
          }
        }
        position = seal.position;
        log = seal.logHash;
      }
      progress(page.length);
      if (page.length < pageSize) break;
    }
    if (anchor && !anchorSeen) {
      logLink(
        anchor.position,
        'anchor-mismatch',
        `the anchor's position ${anchor.position} is not sealed any more (sealed up to ${sealedUpTo}): the log was cut short`,
      );
    }

    // 3. Personal data: a key may only be gone by a recorded erasure.
    const lostKeys = await readKeysLostWithoutErasure(client, schema, maxBroken);
    return finish(sealedUpTo > 0 ? log.toString('hex') : null, lostKeys);
  } catch (error) {
    throw toAnnalsError(error);
  }
}
