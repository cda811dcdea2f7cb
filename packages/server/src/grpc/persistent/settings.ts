/**
 * A persistent subscription group's definition as Annals keeps it (plain JSON, stored in the
 * `$persistent-subscriptions` stream), read from `Create`/`Update` requests and shown back as
 * `SubscriptionInfo` fields the clients parse.
 */
import { BadRequest, safeInteger } from '../mapping.js';
import { matcherOf, streamNameOf } from '../read-options.js';

type Empty = Record<string, never>;

/** What a group reads: one stream, or the whole log. */
export type Source = { stream: string } | { all: true };

/** The name KurrentDB gives a source: the stream's, or `$all`. */
export const sourceName = (source: Source): string => ('stream' in source ? source.stream : '$all');

/** Where a group begins without a checkpoint: a stream revision (0-based), or a log position. */
export type StartFrom = 'start' | 'end' | number;

export type ConsumerStrategy = 'RoundRobin' | 'DispatchToSingle' | 'Pinned' | 'PinnedByCorrelation';

/** A `$all` group's server-side filter, on stream names or event types. */
export interface GroupFilter {
  on: 'stream' | 'type';
  prefixes?: string[];
  regex?: string;
}

/** The settings of a group, as KurrentDB names them (times in milliseconds). */
export interface GroupSettings {
  startFrom: StartFrom;
  resolveLinks: boolean;
  extraStatistics: boolean;
  /** 0: a message sent is never taken back for lack of an answer. */
  messageTimeoutMs: number;
  maxRetryCount: number;
  checkpointAfterMs: number;
  minCheckpointCount: number;
  maxCheckpointCount: number;
  /** 0: unbounded. */
  maxSubscriberCount: number;
  liveBufferSize: number;
  readBatchSize: number;
  historyBufferSize: number;
  consumerStrategy: ConsumerStrategy;
  filter?: GroupFilter;
}

/** The most events a group holds between its checkpoint and its furthest delivery. */
export const maxWindow = 5000;

interface WireExpression {
  regex?: string;
  prefix?: string[];
}

/** The wire shape of `CreateReq.Options` / `UpdateReq.Options` (proto-loader objects). */
export interface WireGroupOptions {
  stream_identifier?: { stream_name?: Buffer };
  stream?: {
    stream_identifier?: { stream_name?: Buffer };
    revision?: string;
    start?: Empty;
    end?: Empty;
  };
  all?: {
    position?: { commit_position?: string; prepare_position?: string };
    start?: Empty;
    end?: Empty;
    filter?: { stream_identifier?: WireExpression; event_type?: WireExpression };
    no_filter?: Empty;
  };
  group_name?: string;
  settings?: {
    resolve_links?: boolean;
    revision?: string;
    extra_statistics?: boolean;
    max_retry_count?: number;
    min_checkpoint_count?: number;
    max_checkpoint_count?: number;
    max_subscriber_count?: number;
    live_buffer_size?: number;
    read_batch_size?: number;
    history_buffer_size?: number;
    named_consumer_strategy?: 'DispatchToSingle' | 'RoundRobin' | 'Pinned';
    message_timeout_ticks?: string;
    message_timeout_ms?: number;
    checkpoint_after_ticks?: string;
    checkpoint_after_ms?: number;
    consumer_strategy?: string;
  };
}

/** The largest u64, which clients send for "the end". */
const endOfStream = '18446744073709551615';

/** A group name: non-empty, printable, at most 256 characters. */
export function groupNameOf(name: string | undefined): string {
  if (!name) throw new BadRequest('the group name is empty');
  if (name.length > 256) throw new BadRequest('the group name is over 256 characters');
  // Every control character (C0, DEL and C1), as the store refuses them in names.
  if (/\p{Cc}/u.test(name)) throw new BadRequest('the group name has control characters');
  return name;
}

/** The source a request names: a stream identifier, or `all`. */
export function sourceOf(options: { stream_identifier?: { stream_name?: Buffer }; all?: unknown }): Source {
  if (options.all !== undefined && !options.stream_identifier?.stream_name?.length) return { all: true };
  return { stream: streamNameOf(options.stream_identifier) };
}

const ticksToMs = (ticks: string | undefined) => {
  const n = safeInteger(ticks);
  return n === undefined ? undefined : Math.floor(n / 10_000);
};

function count(value: number | undefined, field: string, least: number, most: number): number {
  const n = value ?? 0;
  if (!Number.isSafeInteger(n) || n < least || n > most) {
    throw new BadRequest(`${field} must be an integer from ${least} to ${most}, got ${n}`);
  }
  return n;
}

function strategyOf(wire: NonNullable<WireGroupOptions['settings']>): ConsumerStrategy {
  const named = wire.consumer_strategy || wire.named_consumer_strategy || 'DispatchToSingle';
  if (named === 'RoundRobin' || named === 'DispatchToSingle' || named === 'Pinned' || named === 'PinnedByCorrelation') {
    return named;
  }
  throw new BadRequest(`unknown consumer strategy ${JSON.stringify(named).slice(0, 100)}`);
}

function filterOf(wire: NonNullable<WireGroupOptions['all']>['filter']): GroupFilter | undefined {
  if (!wire) return undefined;
  const expression = wire.stream_identifier ?? wire.event_type;
  if (!expression) return undefined;
  const filter: GroupFilter = { on: wire.stream_identifier ? 'stream' : 'type' };
  if (expression.prefix && expression.prefix.length > 0) filter.prefixes = [...expression.prefix];
  else filter.regex = expression.regex ?? '';
  matcherOf(expression); // refuses a bad regex or too many prefixes now, not when it runs
  return filter;
}

/** Where a request says the group begins. */
function startOf(options: WireGroupOptions, source: Source): StartFrom {
  if ('stream' in source) {
    const given = options.stream;
    if (given?.start) return 'start';
    if (given?.end) return 'end';
    const revision = given?.revision ?? options.settings?.revision;
    if (revision === undefined || revision === '0') return 'start';
    if (revision === endOfStream) return 'end';
    const n = safeInteger(revision);
    if (n === undefined) throw new BadRequest('the start revision is out of range');
    return n;
  }
  const all = options.all;
  if (all?.end) return 'end';
  if (all?.position) {
    const n = safeInteger(all.position.commit_position ?? '0');
    if (n === undefined) throw new BadRequest('the start position is out of range');
    return n === 0 ? 'start' : n;
  }
  return 'start';
}

/** The settings a `Create` or `Update` asks for; throws {@link BadRequest}. */
export function settingsOf(options: WireGroupOptions, source: Source, kept?: GroupFilter): GroupSettings {
  const wire = options.settings;
  if (!wire) throw new BadRequest('the request has no settings');
  const settings: GroupSettings = {
    startFrom: startOf(options, source),
    resolveLinks: wire.resolve_links === true,
    extraStatistics: wire.extra_statistics === true,
    messageTimeoutMs: count(
      wire.message_timeout_ms ?? ticksToMs(wire.message_timeout_ticks),
      'messageTimeout',
      0,
      2 ** 31 - 1,
    ),
    maxRetryCount: count(wire.max_retry_count, 'maxRetryCount', 0, 2 ** 31 - 1),
    checkpointAfterMs: count(
      wire.checkpoint_after_ms ?? ticksToMs(wire.checkpoint_after_ticks),
      'checkPointAfter',
      0,
      2 ** 31 - 1,
    ),
    minCheckpointCount: count(wire.min_checkpoint_count, 'checkPointLowerBound', 0, 2 ** 31 - 1),
    maxCheckpointCount: count(wire.max_checkpoint_count, 'checkPointUpperBound', 0, 2 ** 31 - 1),
    maxSubscriberCount: count(wire.max_subscriber_count, 'maxSubscriberCount', 0, 2 ** 31 - 1),
    liveBufferSize: count(wire.live_buffer_size, 'liveBufferSize', 1, 2 ** 31 - 1),
    readBatchSize: count(wire.read_batch_size, 'readBatchSize', 1, 2 ** 31 - 1),
    historyBufferSize: count(wire.history_buffer_size, 'historyBufferSize', 1, 2 ** 31 - 1),
    consumerStrategy: strategyOf(wire),
  };
  if (settings.minCheckpointCount > settings.maxCheckpointCount) {
    throw new BadRequest('checkPointLowerBound is above checkPointUpperBound');
  }
  const filter = 'all' in source ? ((options.all ? filterOf(options.all.filter) : undefined) ?? kept) : undefined;
  if (filter) settings.filter = filter;
  return settings;
}

/** The event filter of a group's settings (undefined: every event). */
export function filterOfSettings(settings: GroupSettings): ((stream: string, type: string) => boolean) | undefined {
  const filter = settings.filter;
  if (!filter) return undefined;
  const matches = matcherOf({ regex: filter.regex, prefix: filter.prefixes });
  return filter.on === 'stream' ? (stream) => matches(stream) : (_stream, type) => matches(type);
}

/** A position as `$all` groups show it: `C:<commit>/P:<prepare>` (the same number here). */
export const positionText = (position: number) => `C:${position}/P:${position}`;

/** `start_from` as the clients parse it. */
export function startFromText(source: Source, start: StartFrom): string {
  if ('stream' in source) return start === 'start' ? '0' : start === 'end' ? '-1' : String(start);
  return start === 'start' ? positionText(0) : start === 'end' ? 'C:-1/P:-1' : positionText(start);
}

/** The settings part of a `SubscriptionInfo`. */
export function settingsInfo(source: Source, settings: GroupSettings) {
  return {
    resolve_link_tos: settings.resolveLinks,
    start_from: startFromText(source, settings.startFrom),
    message_timeout_milliseconds: settings.messageTimeoutMs,
    extra_statistics: settings.extraStatistics,
    max_retry_count: settings.maxRetryCount,
    live_buffer_size: settings.liveBufferSize,
    buffer_size: settings.historyBufferSize,
    read_batch_size: settings.readBatchSize,
    check_point_after_milliseconds: settings.checkpointAfterMs,
    min_check_point_count: settings.minCheckpointCount,
    max_check_point_count: settings.maxCheckpointCount,
    named_consumer_strategy: settings.consumerStrategy,
    max_subscriber_count: settings.maxSubscriberCount,
  };
}
