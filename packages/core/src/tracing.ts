/**
 * OpenTelemetry spans, through `@opentelemetry/api` only: without an SDK installed every call
 * here is a no-op (a non-recording span, no context to carry), so the library costs nothing
 * until an application registers a tracer provider.
 *
 * - `annals.command` (the command handler), `annals.append` (an append, its child when the
 *   command appends), `annals.subscription.batch` and `annals.projection.batch` (a page handed
 *   to a handler, or applied by a projection).
 * - **The trace travels with the event.** An append made while a span is active stamps each
 *   event's metadata with that span's W3C `traceparent` (unless it has one). A batch span
 *   links to the `traceparent` of each event it handles (at most {@link maxLinks}), so a
 *   projection running in another process, minutes later, links back to the request that
 *   appended its events; the NATS relay passes it on as a message header.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  type Link,
  ProxyTracerProvider,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { EventMetadata, RecordedEvent } from './types.js';

/** The metadata key of an event's trace context (the W3C header's own name). */
export const traceparentKey = 'traceparent';
/** Most links a batch span carries (one per distinct appending span). */
export const maxLinks = 128;

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const tracer = () => trace.getTracer('@annals/core');
/** The provider the API answers with while no SDK is registered. */
const noopProvider = new ProxyTracerProvider().getDelegate();
/** A span that records nothing, handed to work run without an SDK. */
const silentSpan = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether an SDK is registered: without one, spans are skipped outright (a call costs ~2 µs). */
function tracing(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== noopProvider;
}

/**
 * Runs `work` in a span named `name`: the span ends with it, and records the error it throws.
 */
export function inSpan<T>(
  name: string,
  attributes: Record<string, string | number | undefined>,
  work: (span: Span) => Promise<T>,
  links?: Link[] | (() => Link[]),
): Promise<T> {
  if (!tracing()) return work(silentSpan);
  return tracer().startActiveSpan(
    name,
    { attributes: defined(attributes), links: typeof links === 'function' ? links() : links },
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The active span's trace context as a W3C `traceparent`, or undefined when none is recording. */
export function activeTraceparent(): string | undefined {
  const span = trace.getSpanContext(context.active());
  if (!span || !isSpanContextValid(span)) return undefined;
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * The writes with the active trace context in each event's metadata, as new objects (the
 * caller's are not touched); the writes themselves when no span is recording, or when they
 * are not the shape an append takes (validation then says what is wrong).
 */
export function withTraceContext<W>(writes: W): W {
  const traceparent = activeTraceparent();
  if (!traceparent || !Array.isArray(writes)) return writes;
  return writes.map((write) => {
    if (typeof write !== 'object' || write === null || !Array.isArray(write.events)) return write;
    return {
      ...write,
      events: write.events.map((event: unknown) => {
        if (typeof event !== 'object' || event === null) return event;
        const metadata = (event as { metadata?: unknown }).metadata;
        if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
          return event;
        }
        if (metadata && traceparentKey in metadata) return event;
        return { ...event, metadata: { ...(metadata as EventMetadata | undefined), [traceparentKey]: traceparent } };
      }),
    };
  }) as W;
}

/** Links to the spans that appended `events` (their `traceparent`), each once. */
export function linksOf(events: readonly RecordedEvent[]): Link[] {
  const links = new Map<string, Link>();
  for (const event of events) {
    const value = event.metadata[traceparentKey];
    const match = typeof value === 'string' ? traceparentPattern.exec(value) : null;
    if (!match || links.has(value as string)) continue;
    const [, traceId = '', spanId = '', flags = '00'] = match;
    const spanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
    if (!isSpanContextValid(spanContext)) continue;
    links.set(value as string, { context: spanContext });
    if (links.size >= maxLinks) break;
  }
  return [...links.values()];
}

/** The attributes of a batch span: how many events, which positions. */
export function batchAttributes(
  name: string | undefined,
  events: readonly RecordedEvent[],
): Record<string, string | number | undefined> {
  return {
    'annals.name': name,
    'annals.events': events.length,
    'annals.position.first': events[0]?.position,
    'annals.position.last': events.at(-1)?.position,
  };
}

function defined(attributes: Record<string, string | number | undefined>): Record<string, string | number> {
  const result: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) result[key] = value;
  return result;
}
