/**
 * `verify`: recomputes every seal from the event stored at its position and the previous
 * seal of its stream, walking seals by (stream, version) through their unique index —
 * constant memory whatever the number of streams.
 *
 * What each check catches:
 * - an event edited, or moved to another stream or version: its recomputed hash differs;
 * - an event deleted: its seal finds no event;
 * - a seal edited to match an edited event: the next seal of the stream no longer chains;
 * - an event deleted with its seal: seal positions are no longer dense (1..n).
 * What no chain catches on its own: the newest events removed with their seals. Keep the
 * report's `headHash` somewhere else (a ticket, a log, a notary) and compare later.
 */
import type { SqlClient } from '../db/sql-client.js';
import { toAnnalsError } from '../errors.js';
import { readHeadPosition } from '../queries/read-all.js';
import { readSealChain, readSealedHead, type SealedEvent } from '../queries/seals.js';
import { genesisHash, sealHash } from './seal-hash.js';

/** One link of a chain that does not hold. */
export interface BrokenLink {
  position: number;
  streamId: string;
  streamVersion: number;
  /** The event's id as stored now (null when it is gone). */
  eventId: string | null;
  problem: 'event-changed' | 'event-missing' | 'seal-missing';
  message: string;
}

/** What {@link EventStore.verify} found. */
export interface VerifyReport {
  /** True when every sealed event matches its seal and every chain holds. */
  ok: boolean;
  /** Seals checked. */
  checked: number;
  /** The last sealed position. */
  sealedUpTo: number;
  /** Events after it, not sealed yet (not covered by this report). */
  unsealed: number;
  /** Broken links, lowest position first (at most `maxBroken`); `broken[0]` is the first. */
  broken: BrokenLink[];
  /** How many broken links there are in all. */
  brokenCount: number;
  /**
   * The seal of the last sealed event (of the stream, with `streamId`), hex: record it
   * elsewhere to detect a truncated log later.
   */
  headHash: string | null;
}

/** Options of {@link EventStore.verify}. */
export interface VerifyOptions {
  /** Only this stream's chain. */
  streamId?: string;
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
  const { streamId, pageSize = 2000, maxBroken = 100, onProgress } = options;
  try {
    const { head: sealedUpTo, count } = await readSealedHead(client, schema);
    const head = await readHeadPosition(client, schema);
    const broken: BrokenLink[] = [];
    let brokenCount = 0;
    const report = (link: BrokenLink) => {
      brokenCount++;
      broken.push(link);
      broken.sort((a, b) => a.position - b.position);
      if (broken.length > maxBroken) broken.pop();
    };
    if (!streamId && count !== sealedUpTo) {
      report({
        position: sealedUpTo,
        streamId: '',
        streamVersion: 0,
        eventId: null,
        problem: 'seal-missing',
        message: `${sealedUpTo - count} seal(s) missing among positions 1..${sealedUpTo}: events were removed with their seals`,
      });
    }

    let checked = 0;
    let headHash: string | null = null;
    let previous: SealedEvent | undefined;
    let after = { streamId: streamId ?? '', streamVersion: streamId ? 0 : -1 };
    for (;;) {
      const page = await readSealChain(client, schema, after, pageSize, streamId !== undefined);
      for (const seal of page) {
        const sameStream = previous?.streamId === seal.streamId;
        const expectedVersion = sameStream ? (previous as SealedEvent).streamVersion + 1 : 1;
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
          link('seal-missing', `${seal.streamId}: the seal of version ${expectedVersion} is missing`);
        } else if (seal.event === null) {
          link(
            'event-missing',
            `the event at position ${seal.position} (${seal.streamId}@${seal.streamVersion}) is gone`,
          );
        } else if (!sealHash(seal.event, sameStream ? (previous as SealedEvent).hash : genesisHash).equals(seal.hash)) {
          link(
            'event-changed',
            `the event at position ${seal.position} (${seal.streamId}@${seal.streamVersion}) does not match its seal`,
          );
        }
        if (streamId !== undefined || seal.position === sealedUpTo) headHash = seal.hash.toString('hex');
        previous = seal;
      }
      checked += page.length;
      onProgress?.(checked, streamId ? checked : count);
      const last = page.at(-1);
      if (!last || page.length < pageSize) break;
      after = { streamId: last.streamId, streamVersion: last.streamVersion };
    }
    return {
      ok: brokenCount === 0,
      checked,
      sealedUpTo,
      unsealed: Math.max(0, head - sealedUpTo),
      broken,
      brokenCount,
      headHash,
    };
  } catch (error) {
    throw toAnnalsError(error);
  }
}
