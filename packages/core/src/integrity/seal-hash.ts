/**
 * The seal of an event: SHA-256 over the event as stored and over the previous seal of its
 * stream. The input is a JSON array of the canonical fields, an unambiguous encoding (no
 * field can spill into its neighbour), so the same stored event always hashes the same.
 */
import { createHash } from 'node:crypto';
import type { CanonicalEvent } from '../queries/seals.js';

/** The previous hash of a stream's first event, and the log hash before position 1. */
export const genesisHash: Buffer = Buffer.alloc(32);

export function sealHash(event: CanonicalEvent, previous: Buffer): Buffer {
  return createHash('sha256')
    .update(
      JSON.stringify([
        event.position,
        event.streamId,
        event.streamVersion,
        event.eventId,
        event.eventType,
        event.data,
        event.metadata,
        event.recordedAt,
        previous.toString('hex'),
      ]),
    )
    .digest();
}

/** The log chain: each position's log hash covers the previous one and the position's seal. */
export function logHash(previous: Buffer, hash: Buffer): Buffer {
  return createHash('sha256').update(previous).update(hash).digest();
}
