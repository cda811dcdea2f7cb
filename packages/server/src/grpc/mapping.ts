/**
 * Conversions between KurrentDB's wire values and Annals' (docs/kurrent-protocol.md):
 * revisions are 0-based where versions are 1-based; `$all` positions are Annals log positions
 * (commit = prepare); `created` is 100 ns ticks since 1970; event data and custom metadata are kept
 * losslessly, JSON as JSON and anything else as base64 marked in the event's metadata.
 */
import type { EventMetadata, JsonObject, JsonValue, NewEvent, RecordedEvent } from '@annals/core';

/** The metadata key under which Annals keeps what KurrentDB needs and JSON cannot hold. */
export const kurrentKey = '$kurrent';

/** What an event appended over gRPC keeps under {@link kurrentKey}. */
interface KurrentMarks {
  /** The content type when it is not `application/json`. */
  contentType?: string;
  /** Set when `data` is `{ "$binary": base64 }`: the bytes were not JSON. */
  binary?: true;
  /** The custom metadata bytes, base64, when they were not a JSON object. */
  rawMetadata?: string;
}

/** A `UUID` message: structured (two signed 64-bit halves) or a string. */
export interface WireUuid {
  structured?: { most_significant_bits: string; least_significant_bits: string };
  string?: string;
  value?: 'structured' | 'string';
}

/**
 * `recordedAt` as KurrentDB's gRPC `created`: .NET ticks (100 ns) counted from the Unix
 * epoch, not from 0001-01-01 (the clients divide by 10 000 to get milliseconds since 1970).
 */
export function ticksOf(date: Date): string {
  return (BigInt(date.getTime()) * 10_000n).toString();
}

/** A 64-bit unsigned wire value as a safe integer, or undefined when it is not one. */
export function safeInteger(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The lower-case string form of a wire UUID, or undefined when absent or malformed. */
export function uuidOf(wire: WireUuid | null | undefined): string | undefined {
  if (!wire) return undefined;
  if (wire.structured) {
    const half = (v: string) => {
      try {
        return BigInt.asUintN(64, BigInt(v)).toString(16).padStart(16, '0');
      } catch {
        return undefined;
      }
    };
    const ms = half(wire.structured.most_significant_bits);
    const ls = half(wire.structured.least_significant_bits);
    if (ms === undefined || ls === undefined) return undefined;
    return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-${ms.slice(12)}-${ls.slice(0, 4)}-${ls.slice(4)}`;
  }
  return typeof wire.string === 'string' && uuidPattern.test(wire.string) ? wire.string.toLowerCase() : undefined;
}

/** A UUID in the form the reader asked for (`uuid_option`). */
export function wireUuid(id: string, structured: boolean): WireUuid {
  if (!structured) return { string: id };
  const hex = id.replaceAll('-', '');
  const signed = (part: string) => BigInt.asIntN(64, BigInt(`0x${part}`)).toString();
  return {
    structured: { most_significant_bits: signed(hex.slice(0, 16)), least_significant_bits: signed(hex.slice(16)) },
  };
}

/** A proposed message as it arrives. */
export interface ProposedMessage {
  id?: WireUuid;
  metadata?: Record<string, string>;
  custom_metadata?: Buffer;
  data?: Buffer;
}

/** Thrown for a message that cannot become an event: answered INVALID_ARGUMENT. */
export class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

function parseJson(bytes: Buffer): { value: JsonValue } | undefined {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as JsonValue };
  } catch {
    return undefined;
  }
}

/** A KurrentDB proposed message as an Annals event. */
export function eventOf(message: ProposedMessage, index: number): NewEvent {
  const id = uuidOf(message.id);
  if (!id) throw new BadRequest(`event ${index}: its id is not a UUID`);
  const type = message.metadata?.type;
  if (!type) throw new BadRequest(`event ${index}: its metadata has no "type"`);
  const contentType = message.metadata?.['content-type'] ?? 'application/octet-stream';
  const bytes = message.data ?? Buffer.alloc(0);
  const marks: KurrentMarks = {};
  let data: JsonValue;
  const json = contentType === 'application/json' && bytes.length > 0 ? parseJson(bytes) : undefined;
  if (json) {
    data = json.value;
  } else {
    if (contentType !== 'application/json') marks.contentType = contentType;
    marks.binary = true;
    data = { $binary: bytes.toString('base64') };
  }
  let metadata: EventMetadata = {};
  const custom = message.custom_metadata ?? Buffer.alloc(0);
  if (custom.length > 0) {
    const parsed = parseJson(custom)?.value;
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && !(kurrentKey in parsed)) {
      metadata = parsed as EventMetadata;
    } else {
      marks.rawMetadata = custom.toString('base64');
    }
  }
  if (Object.keys(marks).length > 0) metadata[kurrentKey] = marks as JsonObject;
  return { id, type, data, metadata };
}

/** What a read answers for one event: `ReadResp.ReadEvent.RecordedEvent`. */
export function recordedOf(event: RecordedEvent, structuredIds: boolean, streamName = event.streamId) {
  const { [kurrentKey]: given, ...rest } = event.metadata;
  const marks = (typeof given === 'object' && given !== null && !Array.isArray(given) ? given : {}) as KurrentMarks;
  const binary = marks.binary && typeof event.data === 'object' && event.data !== null && '$binary' in event.data;
  const data = binary
    ? Buffer.from(String((event.data as { $binary: string }).$binary), 'base64')
    : Buffer.from(JSON.stringify(event.data), 'utf8');
  const custom =
    marks.rawMetadata !== undefined
      ? Buffer.from(marks.rawMetadata, 'base64')
      : Object.keys(rest).length === 0
        ? Buffer.alloc(0)
        : Buffer.from(JSON.stringify(rest), 'utf8');
  const position = String(event.position);
  return {
    id: wireUuid(event.id, structuredIds),
    stream_identifier: { stream_name: Buffer.from(streamName, 'utf8') },
    stream_revision: String(event.streamVersion - 1),
    prepare_position: position,
    commit_position: position,
    metadata: {
      type: event.type,
      'content-type': marks.contentType ?? 'application/json',
      created: ticksOf(event.recordedAt),
    },
    custom_metadata: custom,
    data,
  };
}
