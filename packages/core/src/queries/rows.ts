/**
 * Maps rows of the events table to {@link RecordedEvent}; one place for both drivers' types.
 * Events come out as stored: personal fields still encrypted. The store's reads
 * (store/event-reads.ts) reveal them; nothing else reads events from these queries.
 */
import type { EventMetadata, JsonValue, RecordedEvent } from '../types.js';

/** The columns every event read selects, in the order {@link toRecordedEvent} expects. */
export const eventColumns = 'position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at';

/** A row of {@link eventColumns}. int8 arrives as a string from pg and a bigint from PGlite. */
export interface EventRow {
  position: string | number | bigint;
  stream_id: string;
  stream_version: string | number | bigint;
  event_id: string;
  event_type: string;
  data: JsonValue;
  metadata: EventMetadata;
  recorded_at: Date;
}

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    position: Number(row.position),
    streamId: row.stream_id,
    streamVersion: Number(row.stream_version),
    id: row.event_id,
    type: row.event_type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}

const timestampPattern =
  /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?( BC)?$/;

/**
 * A `timestamptz` in PostgreSQL's text form (DateStyle ISO) to the Date pg's default parser
 * makes of it, in a third of its time: the default runs two regular expressions and several
 * parseInt per value, a tenth of the client's time of a log read. The usual form
 * (`2026-12-02 08:00:37.123456+00`, offset `+HH` or `+HH:MM`, a year of four digits from 100)
 * is read by character codes; any other (BC, seconds in the offset, infinity) by
 * {@link parseTimestampSlowly}. Milliseconds are computed as pg does (`1000 * parseFloat`,
 * truncated by Date.UTC), so both give the same instant.
 */
export function parseTimestamptz(text: string): Date | number {
  const length = text.length;
  if (length < 22 || text.charCodeAt(4) !== 45 || text.charCodeAt(10) !== 32) return parseTimestampSlowly(text);
  const two = (i: number) => (text.charCodeAt(i) - 48) * 10 + text.charCodeAt(i + 1) - 48;
  const year = two(0) * 100 + two(2);
  let i = 19;
  let ms = 0;
  if (text.charCodeAt(19) === 46) {
    i = 20;
    for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i));
    ms = 1000 * Number.parseFloat(text.slice(19, i));
  }
  const sign = text.charCodeAt(i);
  let offset: number;
  if (length === i + 3) offset = two(i + 1) * 60;
  else if (length === i + 6 && text.charCodeAt(i + 3) === 58) offset = two(i + 1) * 60 + two(i + 4);
  else return parseTimestampSlowly(text);
  if ((sign !== 43 && sign !== 45) || year < 100 || Number.isNaN(offset + year)) return parseTimestampSlowly(text);
  const utc = Date.UTC(year, two(5) - 1, two(8), two(11), two(14), two(17), ms);
  return new Date(utc - (sign === 45 ? -offset : offset) * 60_000);
}

/** Any `timestamptz` text, as pg's default parser reads it (BC years, years 0-99, infinity). */
function parseTimestampSlowly(text: string): Date | number {
  if (/^-?infinity$/.test(text)) return text.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  const m = timestampPattern.exec(text);
  if (!m) return new Date(Number.NaN);
  const bc = m[12] !== undefined;
  const year = bc ? 1 - Number(m[1]) : Number(m[1]);
  const ms = m[7] ? 1000 * Number.parseFloat(m[7]) : 0;
  const date = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
  if (year >= 0 && year < 100) date.setUTCFullYear(year);
  const offset = m[8] ? (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) * 1000 : 0;
  date.setTime(date.getTime() - (m[8] === '-' ? -offset : offset));
  return date;
}

/** The result parsers of event reads: only `timestamptz` (oid 1184) differs from the defaults. */
export const eventParsers: Readonly<Record<number, (text: string) => unknown>> = { 1184: parseTimestamptz };
