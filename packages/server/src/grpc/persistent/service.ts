/**
 * `event_store.client.persistent_subscriptions.PersistentSubscriptions` over an Annals store,
 * through its public API only: groups are defined in the store's own log (registry.ts) and
 * served by a dispatcher per group (dispatcher.ts), which reads through a durable Annals
 * subscription. Scopes: defining, changing, deleting and replaying take `admin`; consuming
 * takes `subscribe`; info and lists take `read`. A key restricted to categories reaches the
 * groups of its categories' streams only, and no `$all` group.
 */
import type { EventStore } from '@annals/core';
import {
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Principal } from '../../auth/principal.js';
import { actorFor, callerOf, requireScope, requireStream } from '../auth.js';
import type { GrpcContext } from '../context.js';
import { accessDenied, GrpcError, grpcErrorOf, unauthenticated } from '../errors.js';
import { BadRequest, safeInteger, uuidOf, type WireUuid } from '../mapping.js';
import { type Consumer, consumerId, GroupDispatcher, type NackAction } from './dispatcher.js';
import { type GroupDefinition, GroupRegistry, groupMissing } from './registry.js';
import {
  groupNameOf,
  type Source,
  settingsInfo,
  settingsOf,
  sourceName,
  sourceOf,
  type WireGroupOptions,
} from './settings.js';

type Empty = Record<string, never>;

interface StreamOrAll {
  stream_identifier?: { stream_name?: Buffer };
  all?: Empty;
  group_name?: string;
}

interface ReadRequest {
  options?: StreamOrAll & { buffer_size?: number; uuid_option?: { structured?: Empty; string?: Empty } };
  ack?: { ids?: WireUuid[] };
  nack?: { ids?: WireUuid[]; action?: NackAction; reason?: string };
}

/** The most events a consumer may hold unacknowledged. */
const maxBufferSize = 10_000;

/** The groups of one store in this server: their definitions and the dispatchers at work. */
interface Groups {
  registry: GroupRegistry;
  dispatchers: Map<string, GroupDispatcher>;
}

const keyOf = (definition: { source: Source; group: string }) =>
  JSON.stringify([sourceName(definition.source), definition.group]);

/** Refuses a principal that may not reach `source`. */
function requireSource(principal: Principal | undefined, source: Source): void {
  if ('stream' in source) requireStream(principal, source.stream);
  else if (principal?.categories) throw accessDenied('a key restricted to categories may not use $all groups');
}

/** The service's handlers, and what closes the groups at work when the endpoint closes. */
export function persistentSubscriptionsService(context: GrpcContext): {
  service: UntypedServiceImplementation;
  close(): Promise<void>;
} {
  const byStore = new WeakMap<EventStore, Groups>();
  const open = new Set<GroupDispatcher>();

  const groupsOf = (store: EventStore): Groups => {
    let groups = byStore.get(store);
    if (!groups) {
      groups = { registry: new GroupRegistry(store), dispatchers: new Map() };
      byStore.set(store, groups);
    }
    return groups;
  };

  /** The dispatcher of a group as defined now: one defined otherwise (elsewhere, since) is replaced. */
  const dispatcherOf = (store: EventStore, definition: GroupDefinition): GroupDispatcher => {
    const { dispatchers } = groupsOf(store);
    const key = keyOf(definition);
    const known = dispatchers.get(key);
    if (
      known &&
      known.definition.generation === definition.generation &&
      JSON.stringify(known.definition.settings) === JSON.stringify(definition.settings)
    ) {
      return known;
    }
    if (known) void closeDispatcher(store, known);
    const dispatcher = new GroupDispatcher(store, definition, context.onError);
    dispatchers.set(key, dispatcher);
    open.add(dispatcher);
    return dispatcher;
  };

  const closeDispatcher = async (store: EventStore, dispatcher: GroupDispatcher, error?: GrpcError) => {
    const { dispatchers } = groupsOf(store);
    const key = keyOf(dispatcher.definition);
    if (dispatchers.get(key) === dispatcher) dispatchers.delete(key);
    open.delete(dispatcher);
    await dispatcher.close(error);
  };

  const defined = async (store: EventStore, source: Source, group: string) => {
    const definition = await groupsOf(store).registry.get(source, group);
    if (!definition) throw groupMissing(source, group);
    return definition;
  };

  const infoOf = async (store: EventStore, definition: GroupDefinition) => ({
    event_source: sourceName(definition.source),
    group_name: definition.group,
    ...settingsInfo(definition.source, definition.settings),
    ...(await dispatcherOf(store, definition).state()),
  });

  const failed = (error: unknown): GrpcError => {
    const answer = grpcErrorOf(error);
    if (answer.code === status.INTERNAL) context.onError(error);
    return answer;
  };

  const unary =
    <R>(handler: (call: ServerUnaryCall<R, unknown>) => Promise<unknown>) =>
    (call: ServerUnaryCall<R, unknown>, callback: sendUnaryData<unknown>) => {
      context.calls++;
      handler(call)
        .then(
          (answer) => callback(null, answer),
          (error: unknown) => callback(failed(error)),
        )
        .finally(() => {
          context.calls--;
        });
    };

  /** Who calls, their store, and the group the options name. */
  const target = async (metadata: ServerUnaryCall<unknown, unknown>['metadata'], options: unknown) => {
    const caller = await callerOf(context, metadata);
    if (!options) throw new BadRequest('the request has no options');
    const given = options as WireGroupOptions;
    const source = sourceOf({
      stream_identifier: given.stream_identifier ?? given.stream?.stream_identifier,
      all: given.all,
    });
    requireSource(caller.principal, source);
    return { ...caller, source, group: groupNameOf(given.group_name), options: given };
  };

  const service: UntypedServiceImplementation = {
    Create: unary<{ options?: WireGroupOptions }>(async (call) => {
      const { principal, store, source, group, options } = await target(call.metadata, call.request.options);
      requireScope(principal, 'admin');
      const settings = settingsOf(options, source);
      // A stream the store could never hold (a control character, too long) has no group.
      if ('stream' in source) await store.getStream(source.stream);
      await groupsOf(store).registry.create(source, group, settings, actorFor(principal, undefined));
      return {};
    }),

    Update: unary<{ options?: WireGroupOptions }>(async (call) => {
      const { principal, store, source, group, options } = await target(call.metadata, call.request.options);
      requireScope(principal, 'admin');
      // Checked before anything is recorded: a bad request changes nothing.
      settingsOf(options, source);
      const updated = await groupsOf(store).registry.update(
        source,
        group,
        (known) => settingsOf(options, source, known.settings.filter),
        actorFor(principal, undefined),
      );
      // Its consumers are dropped and subscribe again under the new settings.
      const running = groupsOf(store).dispatchers.get(keyOf(updated));
      if (running) await closeDispatcher(store, running);
      return {};
    }),

    Delete: unary<{ options?: StreamOrAll }>(async (call) => {
      const { principal, store, source, group } = await target(call.metadata, call.request.options);
      requireScope(principal, 'admin');
      await groupsOf(store).registry.delete(source, group, actorFor(principal, undefined));
      const running = groupsOf(store).dispatchers.get(keyOf({ source, group }));
      if (running) await closeDispatcher(store, running);
      return {};
    }),

    GetInfo: unary<{ options?: StreamOrAll }>(async (call) => {
      const { principal, store, source, group } = await target(call.metadata, call.request.options);
      requireScope(principal, 'read');
      return { subscription_info: await infoOf(store, await defined(store, source, group)) };
    }),

    List: unary<{ options?: { list_all_subscriptions?: Empty; list_for_stream?: { stream?: unknown; all?: Empty } } }>(
      async (call) => {
        const { principal, store } = await callerOf(context, call.metadata);
        requireScope(principal, 'read');
        const options = call.request.options;
        if (!options) throw new BadRequest('the request has no options');
        let only: Source | undefined;
        if (options.list_for_stream) {
          const wanted = options.list_for_stream;
          only = sourceOf({
            stream_identifier: wanted.stream as { stream_name?: Buffer } | undefined,
            all: wanted.all,
          });
          requireSource(principal, only);
        }
        const all = await groupsOf(store).registry.list();
        const visible = all.filter((definition) => {
          if (only) return sourceName(definition.source) === sourceName(only);
          try {
            requireSource(principal, definition.source);
            return true;
          } catch {
            return false;
          }
        });
        return { subscriptions: await Promise.all(visible.map((definition) => infoOf(store, definition))) };
      },
    ),

    ReplayParked: unary<{ options?: StreamOrAll & { stop_at?: string; no_limit?: Empty } }>(async (call) => {
      const { principal, store, source, group } = await target(call.metadata, call.request.options);
      requireScope(principal, 'admin');
      const given = call.request.options?.stop_at;
      const stopAt = given === undefined ? undefined : safeInteger(given);
      if (given !== undefined && stopAt === undefined) throw new BadRequest('stop_at is out of range');
      const dispatcher = dispatcherOf(store, await defined(store, source, group));
      // As KurrentDB does, the call returns at once; the events go out as consumers take them.
      void dispatcher.replayParked(stopAt);
      return {};
    }),

    RestartSubsystem: unary<unknown>(async (call) => {
      const { principal, store } = await callerOf(context, call.metadata);
      requireScope(principal, 'admin');
      const running = [...groupsOf(store).dispatchers.values()];
      await Promise.all(running.map((dispatcher) => closeDispatcher(store, dispatcher)));
      return {};
    }),

    Read(call: ServerDuplexStream<ReadRequest, unknown>) {
      context.calls++;
      const id = consumerId();
      let dispatcher: GroupDispatcher | undefined;
      let consumer: Consumer | undefined;
      let unwatch: (() => void) | undefined;
      let finished = false;
      let handling = Promise.resolve();
      const finish = (error?: GrpcError) => {
        if (finished) return;
        finished = true;
        context.subscriptions.delete(id);
        unwatch?.();
        const leaving = consumer && dispatcher ? dispatcher.leave(consumer) : Promise.resolve();
        if (!call.cancelled) {
          if (error) call.emit('error', error);
          else call.end();
        }
        void leaving.finally(() => {
          context.calls--;
        });
      };
      context.subscriptions.set(id, () => finish(new GrpcError(status.UNAVAILABLE, 'the server is shutting down')));
      call.on('cancelled', () => finish());
      call.on('end', () => finish());
      call.on('error', () => finish());

      const begin = async (options: NonNullable<ReadRequest['options']>) => {
        // A key revoked after this instant, while the call is still being set up, ends it too.
        const authenticatedAt = Date.now();
        const { principal, store } = await callerOf(context, call.metadata);
        requireScope(principal, 'subscribe');
        const source = sourceOf(options);
        requireSource(principal, source);
        const group = groupNameOf(options.group_name);
        const definition = await defined(store, source, group);
        const size = options.buffer_size ?? 0;
        // Cancelled meanwhile: nothing to watch or join (finish has run, and would not unwatch).
        if (finished) return;
        const authenticator = context.authenticator;
        if (principal && authenticator) {
          unwatch = authenticator.watch(
            principal,
            () => finish(unauthenticated('the credentials are no longer valid')),
            authenticatedAt,
          );
        }
        const [name] = call.metadata.get('connection-name');
        consumer = {
          id,
          call: call as never,
          slots: Math.min(maxBufferSize, Math.max(1, size)),
          structuredIds: options.uuid_option?.string === undefined,
          from: call.getPeer(),
          username: principal?.actor ?? '',
          connectionName: typeof name === 'string' ? name : '',
          drop: (error) => finish(error),
        };
        if (finished) return;
        dispatcher = dispatcherOf(store, definition);
        // Refused (full, closed) before the confirmation; joined only after it is written, so
        // events never come before it.
        dispatcher.assertRoom();
        call.write({ subscription_confirmation: { subscription_id: id } });
        dispatcher.join(consumer);
      };

      const handle = async (request: ReadRequest) => {
        if (finished) return;
        if (!consumer || !dispatcher) {
          if (!request.options) throw new BadRequest('the first request of a read has no options');
          await begin(request.options);
          return;
        }
        const ids = (wire: WireUuid[] | undefined) =>
          (wire ?? []).map(uuidOf).filter((value): value is string => value !== undefined);
        if (request.ack) dispatcher.ack(ids(request.ack.ids));
        else if (request.nack) {
          dispatcher.nack(consumer, ids(request.nack.ids), request.nack.action ?? 'Unknown', request.nack.reason ?? '');
        }
      };

      call.on('data', (request: ReadRequest) => {
        handling = handling.then(() => handle(request)).catch((error: unknown) => finish(failed(error)));
      });
    },
  };

  return {
    service,
    async close() {
      const closing = [...open].map((dispatcher) =>
        dispatcher.close(new GrpcError(status.UNAVAILABLE, 'the server is shutting down')),
      );
      open.clear();
      await Promise.all(closing);
    },
  };
}
