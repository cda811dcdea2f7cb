/**
 * A `ReadReq.Options` as Annals reads it: what to read (a stream from a version, or the log
 * from a position), which way, how many or live, and the server-side filter.
 */
import type { RecordedEvent } from '@annals/core';
import { BadRequest, safeInteger } from './mapping.js';

type Empty = Record<string, never>;

/** The wire shape of `ReadReq.Options` (proto-loader objects, 64-bit integers as strings). */
export interface WireReadOptions {
  stream?: { stream_identifier?: { stream_name?: Buffer }; revision?: string; start?: Empty; end?: Empty };
  all?: { position?: { commit_position?: string; prepare_position?: string }; start?: Empty; end?: Empty };
  read_direction?: 'Forwards' | 'Backwards';
  count?: string;
  subscription?: Empty;
  filter?: {
    stream_identifier?: { regex?: string; prefix?: string[] };
    event_type?: { regex?: string; prefix?: string[] };
    max?: number;
    count?: Empty;
    checkpointIntervalMultiplier?: number;
  };
  uuid_option?: { structured?: Empty; string?: Empty };
}

/** Where a read begins: `start`, `end`, or at a revision (stream) / position (log). */
export type From = 'start' | 'end' | number;

/** What a read asks for. */
export interface ReadPlan {
  /** The stream's name, or undefined for `$all`. */
  stream: string | undefined;
  from: From;
  backwards: boolean;
  /** How many events; undefined when it is a subscription. */
  count: number | undefined;
  subscription: boolean;
  /** The server-side filter of a `$all` read; undefined: every event. */
  filter: ((event: RecordedEvent) => boolean) | undefined;
  /** Events examined between two checkpoints of a filtered subscription. */
  checkpointInterval: number;
  structuredIds: boolean;
}

/** The longest stream name, regex or prefix list a request may carry. */
const maxNameLength = 4096;
const maxPrefixes = 1000;

/** Default search window of KurrentDB, which checkpoints are counted in. */
const defaultWindow = 32;

/** A matcher of names: any of the prefixes, else the regex (a KurrentDB filter expression). */
export function matcherOf(expression: { regex?: string; prefix?: string[] }): (value: string) => boolean {
  const prefixes = expression.prefix ?? [];
  if (prefixes.length > maxPrefixes || prefixes.some((p) => p.length > maxNameLength)) {
    throw new BadRequest('too many or too long filter prefixes');
  }
  if (prefixes.length > 0) return (value) => prefixes.some((p) => value.startsWith(p));
  const source = expression.regex ?? '';
  if (source.length > maxNameLength) throw new BadRequest('the filter regex is too long');
  let regex: RegExp;
  try {
    regex = new RegExp(source);
  } catch {
    throw new BadRequest('the filter regex is not valid');
  }
  return (value) => regex.test(value);
}

/** A stream identifier's name, refusing the empty, the overlong and the ill-formed. */
export function streamNameOf(identifier: { stream_name?: Buffer } | undefined): string {
  const bytes = identifier?.stream_name;
  if (!bytes || bytes.length === 0) throw new BadRequest('the stream name is empty');
  if (bytes.length > maxNameLength) throw new BadRequest('the stream name is too long');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new BadRequest('the stream name is not UTF-8');
  }
}

/** The plan of a read request; throws {@link BadRequest}. */
export function planOf(options: WireReadOptions | undefined): ReadPlan {
  if (!options) throw new BadRequest('the read has no options');
  const backwards = options.read_direction === 'Backwards';
  const subscription = options.subscription !== undefined;
  let count: number | undefined;
  if (!subscription) {
    count = safeInteger(options.count ?? '0');
    // Clients send u64::MAX for "all of it".
    if (count === undefined) count = Number.MAX_SAFE_INTEGER;
  }
  let stream: string | undefined;
  let from: From;
  if (options.stream) {
    stream = streamNameOf(options.stream.stream_identifier);
    if (options.stream.revision !== undefined) {
      from = safeInteger(options.stream.revision) ?? 'end';
    } else from = options.stream.end ? 'end' : 'start';
  } else if (options.all) {
    if (options.all.position) {
      const position = safeInteger(options.all.position.commit_position ?? '0');
      from = position ?? 'end';
    } else from = options.all.end ? 'end' : 'start';
  } else {
    throw new BadRequest('the read names neither a stream nor $all');
  }
  let filter: ReadPlan['filter'];
  let checkpointInterval = Number.POSITIVE_INFINITY;
  const wire = options.filter;
  if (wire) {
    if (stream !== undefined) throw new BadRequest('filters apply to $all only');
    if (wire.stream_identifier) {
      const matches = matcherOf(wire.stream_identifier);
      filter = (event) => matches(event.streamId);
    } else if (wire.event_type) {
      const matches = matcherOf(wire.event_type);
      filter = (event) => matches(event.type);
    }
    const window = wire.max && wire.max > 0 ? wire.max : defaultWindow;
    checkpointInterval = window * Math.max(1, wire.checkpointIntervalMultiplier ?? 1);
  }
  return {
    stream,
    from,
    backwards,
    count,
    subscription,
    filter,
    checkpointInterval,
    structuredIds: options.uuid_option?.string === undefined,
  };
}
