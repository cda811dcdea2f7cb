/**
 * One append as both `Append` and `BatchAppend` carry it: a stream, an expected revision and
 * proposed messages, stored through `store.append` (or, for `$$<stream>`, as the stream's
 * metadata), with the principal's scope, categories and actor applied.
 */
import { ConcurrencyError, type EventStore, type ExpectedVersion, type NewEvent } from '@annals/core';
import type { Principal } from '../auth/principal.js';
import { assertAppendable } from '../server-streams.js';
import { actorFor, requireScope, requireStream } from './auth.js';
import { BadRequest, eventOf, type ProposedMessage, safeInteger } from './mapping.js';
import { type MetaExpected, metaPrefix, writeMetadata } from './metadata-stream.js';

type Empty = Record<string, never>;

/** An expected revision on the wire (`revision` or `stream_position`, or one of the words). */
export interface WireExpected {
  revision?: string;
  stream_position?: string;
  no_stream?: Empty;
  any?: Empty;
  stream_exists?: Empty;
}

/** A wire expected revision as an Annals expected version (revision r is version r + 1). */
export function expectedOf(wire: WireExpected): ExpectedVersion {
  const given = wire.revision ?? wire.stream_position;
  if (given !== undefined) {
    const revision = safeInteger(given);
    if (revision === undefined) throw new BadRequest('the expected revision is out of range');
    return revision + 1;
  }
  if (wire.no_stream) return 'no-stream';
  if (wire.stream_exists) return 'stream-exists';
  return 'any';
}

/** What an append came to: stored (the stream's revision, the last position), or a conflict. */
export type AppendOutcome =
  | { ok: true; revision: number | undefined; position: number | undefined }
  | { ok: false; expected: ExpectedVersion; actualVersion: number };

/** Appends `messages` to `stream`; throws for what is refused otherwise. */
export async function appendMessages(
  store: EventStore,
  principal: Principal | undefined,
  stream: string,
  expected: ExpectedVersion,
  messages: ProposedMessage[],
): Promise<AppendOutcome> {
  requireScope(principal, 'append');
  const events: NewEvent[] = messages.map((message, index) => {
    const event = eventOf(message, index);
    const actor = actorFor(principal, event.metadata?.actor);
    return actor === undefined ? event : { ...event, metadata: { ...event.metadata, actor } };
  });
  if (stream.startsWith(metaPrefix) && stream.length > metaPrefix.length) {
    const target = stream.slice(metaPrefix.length);
    requireStream(principal, target);
    requireScope(principal, 'admin');
    const metaExpected: MetaExpected =
      typeof expected === 'number' ? { revision: expected - 1 } : (expected as Exclude<MetaExpected, object>);
    const result = await writeMetadata(store, target, events, metaExpected, actorFor(principal, undefined));
    if ('conflict' in result) {
      return { ok: false, expected, actualVersion: result.conflict === undefined ? 0 : result.conflict + 1 };
    }
    return { ok: true, revision: result.revision, position: undefined };
  }
  requireStream(principal, stream);
  assertAppendable(stream, 'stream');
  if (events.length === 0) {
    // Nothing to store: the answer is the expected version's check alone.
    const version = (await store.getStream(stream))?.version ?? 0;
    const holds =
      expected === 'any' ||
      (expected === 'no-stream' && version === 0) ||
      (expected === 'stream-exists' && version > 0) ||
      expected === version;
    if (!holds) return { ok: false, expected, actualVersion: version };
    return { ok: true, revision: version > 0 ? version - 1 : undefined, position: undefined };
  }
  try {
    const result = await store.append(stream, events, { expectedVersion: expected });
    return { ok: true, revision: result.streamVersion - 1, position: result.positions[result.positions.length - 1] };
  } catch (error) {
    if (error instanceof ConcurrencyError) return { ok: false, expected, actualVersion: error.actual };
    throw error;
  }
}
