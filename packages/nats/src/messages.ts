/**
 * One event as one JetStream message: the data as the JSON body, the rest as headers.
 *
 * Personal fields (events written under a personal-data policy name them in their metadata)
 * are published as `null` unless the relay is told to include them: a copy in JetStream is
 * out of reach of `forgetSubject`, which can only make the log's own copy unreadable.
 */
import type { JsonValue, RecordedEvent } from '@annals/core';
import { type MsgHdrs, MsgHdrsImpl } from '@nats-io/transport-node';

/** The headers every relayed message carries (`Nats-Msg-Id` is the event id). */
export const header = {
  position: 'Annals-Position',
  stream: 'Annals-Stream',
  version: 'Annals-Version',
  type: 'Annals-Type',
  recordedAt: 'Annals-Recorded-At',
  correlationId: 'Annals-Correlation-Id',
  causationId: 'Annals-Causation-Id',
  actor: 'Annals-Actor',
  /** The W3C trace context of the append, from the event's metadata (see OpenTelemetry in the README). */
  traceparent: 'traceparent',
  /** The name of the relay that published it. */
  relay: 'Annals-Relay',
  /** Comma-separated paths of the data published as `null` (personal or forgotten fields). */
  redacted: 'Annals-Redacted',
} as const;

/** Whether personal fields are published as stored in the clear, or as `null`. */
export type PersonalDataMode = 'redact' | 'include';

export interface RelayMessage {
  headers: MsgHdrs;
  body: Uint8Array;
}

const encoder = new TextEncoder();
/** Header values end at a line break, so text holding one is left out of the headers. */
const printable = /^[^\r\n\0]*$/;

/**
 * The message of one event; `extra` headers are added as given (printable values only).
 * Built from a record rather than header by header: setting a header scans every header set
 * before it, and a relay sets a dozen on every message.
 */
export function messageOf(
  event: RecordedEvent,
  personalData: PersonalDataMode,
  extra: Record<string, string> = {},
): RelayMessage {
  const record: Record<string, string[]> = {
    [header.position]: [String(event.position)],
    [header.stream]: [event.streamId],
    [header.version]: [String(event.streamVersion)],
    [header.type]: [event.type],
    [header.recordedAt]: [event.recordedAt.toISOString()],
    'Content-Type': ['application/json'],
  };
  for (const name in extra) if (isPrintable(extra[name])) record[name] = [extra[name]];
  const { correlationId, causationId, actor } = event.metadata;
  if (isPrintable(correlationId)) record[header.correlationId] = [correlationId];
  if (isPrintable(causationId)) record[header.causationId] = [causationId];
  if (isPrintable(actor)) record[header.actor] = [actor];
  // The trace context of the append (W3C), so that a consumer's span can link to the request.
  const traceparent = event.metadata.traceparent;
  if (isPrintable(traceparent)) record.traceparent = [traceparent];
  let data = event.data;
  const redacted = new Set(event.redacted ?? []);
  if (personalData === 'redact') {
    const fields = personalFieldsOf(event);
    if (fields.length > 0) {
      data = structuredClone(data);
      for (const path of fields) if (setNull(data, path)) redacted.add(path);
    }
  }
  if (redacted.size > 0) record[header.redacted] = [[...redacted].join(',')];
  return { headers: MsgHdrsImpl.fromRecord(record), body: encoder.encode(JSON.stringify(data)) };
}

function isPrintable(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && printable.test(value);
}

/** The personal fields an event's metadata names (`$personal.fields`), if any. */
function personalFieldsOf(event: RecordedEvent): string[] {
  const marker = event.metadata.$personal;
  if (typeof marker !== 'object' || marker === null || Array.isArray(marker)) return [];
  const fields = (marker as { fields?: JsonValue }).fields;
  return Array.isArray(fields) ? fields.filter((field): field is string => typeof field === 'string') : [];
}

/** Sets the value at a dotted path to `null`, when the path leads to a value. */
function setNull(data: JsonValue, path: string): boolean {
  const keys = path.split('.');
  let node: JsonValue | undefined = data;
  for (const key of keys.slice(0, -1)) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return false;
    node = node[key];
  }
  const last = keys.at(-1) as string;
  if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, last)) return false;
  node[last] = null;
  return true;
}
