/**
 * Sealing: the log's tamper evidence, written behind the appends.
 *
 * Appends never compute a hash (it would put work inside the log lock, where it serializes
 * every writer). A sealer walks the log in position order instead, like a projection, and
 * stores one seal per event in `seals`. One step, in one transaction:
 * 1. take the seal lock (a second sealer waits, then sees the first one's seals);
 * 2. read the last sealed position and the next page of events after it, in canonical form;
 * 3. read the last seal of each stream in the page, chain the page's events onto them in
 *    position order (so within a stream, in version order), extend the log chain (one hash
 *    over the previous position's log hash and the seal), and insert the seals.
 * A last seal that matches no stored event means someone wrote seals directly: sealing stops
 * with {@link TamperDetectedError} rather than chain onto a forgery.
 * Committed events are a gap-free prefix of positions, so "after the last sealed position"
 * never skips one. An event is unprotected between its append and its seal: with a sealer
 * running, a fraction of a second.
 */
import type { SqlClient } from '../db/sql-client.js';
import { TamperDetectedError, toAnnalsError } from '../errors.js';
import { readHeadPosition } from '../queries/read-all.js';
import { insertSeals, lockSealing, readCanonicalPage, readLastHashes, readSealTip } from '../queries/seals.js';
import { genesisHash, logHash, sealHash } from './seal-hash.js';

/**
 * Seals up to `limit` events after the last sealed one; returns how many (0: all sealed) and
 * the last sealed position after the step.
 */
export async function sealStep(
  client: SqlClient,
  schema: string,
  limit: number,
): Promise<{ sealed: number; upTo: number }> {
  return client.transaction(async (tx) => {
    await lockSealing(tx, schema);
    const tip = await readSealTip(tx, schema);
    if (!tip.matchesEvent) {
      throw new TamperDetectedError(
        tip.position,
        `the seal at position ${tip.position} matches no stored event: seals were written directly; sealing stops (run verify)`,
      );
    }
    const after = tip.position;
    const events = await readCanonicalPage(tx, schema, after, limit);
    if (events.length === 0) return { sealed: 0, upTo: after };
    const last = await readLastHashes(tx, schema, [...new Set(events.map((e) => e.streamId))]);
    let log = tip.logHash ?? genesisHash;
    const seals = events.map((event) => {
      const hash = sealHash(event, last.get(event.streamId) ?? genesisHash);
      last.set(event.streamId, hash);
      log = logHash(log, hash);
      return {
        position: event.position,
        streamId: event.streamId,
        streamVersion: event.streamVersion,
        hash,
        logHash: log,
      };
    });
    await insertSeals(tx, schema, seals);
    return { sealed: events.length, upTo: (seals.at(-1) as { position: number }).position };
  });
}

/**
 * Seals every event committed when it starts; returns how many it sealed. It stops at the head
 * it read first, so that writers who never pause cannot keep it sealing forever (what they
 * append meanwhile is left to the next seal or to a running sealer).
 */
export async function sealAll(
  client: SqlClient,
  schema: string,
  options: { batchSize?: number; onProgress?: (sealed: number) => void } = {},
): Promise<number> {
  const { batchSize = 2000, onProgress } = options;
  let total = 0;
  try {
    const head = await readHeadPosition(client, schema);
    for (;;) {
      const { sealed, upTo } = await sealStep(client, schema, batchSize);
      total += sealed;
      if (sealed > 0) onProgress?.(total);
      if (sealed === 0 || upTo >= head) return total;
    }
  } catch (error) {
    throw toAnnalsError(error);
  }
}
