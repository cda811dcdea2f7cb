/**
 * OpenTelemetry spans of one request end to end, with the SDK's in-memory exporter: a command
 * handled inside a request's span, its append, and a subscription and a projection that later
 * handle the event, linked back to the append through the trace context in its metadata.
 * Before the SDK is registered, the library stamps nothing and records nothing.
 */
import { context, type Span, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandHandler, type Decider, projections, subscriptions, toArray } from '../src/index.js';
import { backends, useTestStore } from './support/backends.js';

type Increment = { type: 'Increment'; data: { by: number } };
type Incremented = { type: 'Incremented'; data: { by: number } };
const counter: Decider<Increment, Incremented, number> = {
  decide: (command) => [{ type: 'Incremented', data: { by: command.data.by } }],
  evolve: (state, event) => state + event.data.by,
  initialState: () => 0,
};

describe.each(backends)('traces on $name', (backend) => {
  const t = useTestStore(backend);

  describe('without an SDK', () => {
    it('stamps no trace context and records nothing', async () => {
      await t.store.append('counter-1', [{ type: 'Incremented', data: { by: 1 } }]);
      const [event] = await toArray(t.store.readStream('counter-1'));
      expect(event?.metadata).toEqual({});
    });
  });

  describe('with the SDK and its in-memory exporter', () => {
    const exporter = new InMemorySpanExporter();
    beforeAll(() => {
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    });
    afterAll(() => {
      trace.disable();
      context.disable();
    });

    const named = (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name);
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

    it('follows one command from its request to the append, a subscription and a projection', async () => {
      exporter.reset();
      const { store } = t;
      const accounts = commandHandler(store, counter, { name: 'counter' });
      const request = await trace.getTracer('test').startActiveSpan('POST /counters/counter-7', async (span: Span) => {
        await accounts.handle('counter-7', { type: 'Increment', data: { by: 2 } }, { actor: 'ada' });
        span.end();
        return span.spanContext();
      });
      const [root] = named('POST /counters/counter-7');
      const [command] = named('annals.command');
      const appends = named('annals.append');
      const append = appends.find((span) => parentOf(span) === command?.spanContext().spanId);
      expect(command && parentOf(command)).toBe(root?.spanContext().spanId);
      expect(command?.attributes).toMatchObject({ 'annals.stream': 'counter-7', 'annals.command': 'Increment' });
      expect(append?.spanContext().traceId).toBe(request.traceId);
      expect(append?.attributes).toMatchObject({ 'annals.stream': 'counter-7', 'annals.events': 1 });

      // The event carries the append's trace context.
      const [event] = await toArray(store.readStream('counter-7'));
      const traceparent = `00-${request.traceId}-${append?.spanContext().spanId}-01`;
      expect(event?.metadata.traceparent).toBe(traceparent);

      // Handled later, outside the request: each batch span links back to the append.
      const seen: string[] = [];
      const subscription = subscriptions(store).subscribe({
        name: 'mailer',
        handler: (events) => {
          seen.push(...events.map((e) => e.id));
        },
      });
      const runner = projections(store).run({
        name: 'totals',
        handleBatch: async () => {},
      });
      try {
        await subscription.waitFor(event?.position as number);
        await runner.waitFor(event?.position as number);
      } finally {
        await subscription.stop();
        await runner.stop();
      }
      expect(seen).toContain(event?.id);
      for (const name of ['annals.subscription.batch', 'annals.projection.batch']) {
        const batch = named(name).find((span) => span.links.some((l) => l.context.traceId === request.traceId));
        expect(batch, name).toBeDefined();
        expect(batch?.spanContext().traceId, `${name} is a trace of its own`).not.toBe(request.traceId);
        expect(batch?.links.map((l) => l.context.spanId)).toContain(append?.spanContext().spanId);
        expect(batch?.attributes['annals.events']).toBeGreaterThanOrEqual(1);
      }
    });

    it("keeps a trace context the caller gave, and never changes the caller's objects", async () => {
      const given = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', actor: 'ada' };
      const events = [{ type: 'Incremented', data: { by: 1 }, metadata: given }];
      await trace.getTracer('test').startActiveSpan('request', async (span: Span) => {
        await t.store.append('counter-8', events);
        await t.store.append('counter-9', [{ type: 'Incremented', data: { by: 1 } }]);
        span.end();
      });
      expect(events[0]?.metadata).toBe(given);
      expect(given).toEqual({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', actor: 'ada' });
      const [kept] = await toArray(t.store.readStream('counter-8'));
      expect(kept?.metadata).toEqual(given);
      const [stamped] = await toArray(t.store.readStream('counter-9'));
      expect(stamped?.metadata.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    });

    it('records a failed append as an error span, and bad input stays a typed error', async () => {
      exporter.reset();
      await expect(t.store.append('', [{ type: 'Incremented', data: {} }])).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      });
      await expect(t.store.append('counter-1', 'nope' as never)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      const failed = named('annals.append');
      expect(failed.length).toBe(2);
      for (const span of failed) expect(span.status.code).toBe(2);
    });
  });
});
