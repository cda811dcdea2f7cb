/**
 * `event_store.client.streams.Streams`: Append, BatchAppend, Read, Delete and Tombstone over
 * an Annals store, through its public API only.
 */
import { ConcurrencyError, type ExpectedVersion, lifecycle, StreamDeletedError } from '@annals/core';
import {
  type Metadata,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { appendMessages, expectedOf, type WireExpected } from './append.js';
import { actorFor, callerOf, requireScope, requireStream } from './auth.js';
import { batchAppend } from './batch-append.js';
import type { GrpcContext } from './context.js';
import { GrpcError, grpcErrorOf } from './errors.js';
import { follow } from './follow.js';
import { BadRequest, type ProposedMessage } from './mapping.js';
import { metaPrefix } from './metadata-stream.js';
import { planOf, streamNameOf, type WireReadOptions } from './read-options.js';
import { readEvents } from './reads.js';

/** The expected-revision fields of a `WrongExpectedVersion` answer. */
function expectedFields(expected: ExpectedVersion) {
  if (typeof expected === 'number') return { expected_revision: String(expected - 1) };
  if (expected === 'no-stream') return { expected_no_stream: {} };
  if (expected === 'stream-exists') return { expected_stream_exists: {} };
  return { expected_any: {} };
}

const wrongExpected = (expected: ExpectedVersion, actualVersion: number) => ({
  wrong_expected_version: {
    ...(actualVersion > 0 ? { current_revision: String(actualVersion - 1) } : { current_no_stream: {} }),
    ...expectedFields(expected),
  },
});

interface AppendRequest {
  options?: WireExpected & { stream_identifier?: { stream_name?: Buffer } };
  proposed_message?: ProposedMessage;
}

interface StreamRequest {
  options?: WireExpected & { stream_identifier?: { stream_name?: Buffer } };
}

/** A failure as the status a call ends with; unexpected ones are reported, never shown. */
function failed(context: GrpcContext, error: unknown): GrpcError {
  const answer = grpcErrorOf(error);
  if (answer.code === status.INTERNAL) context.onError(error);
  return answer;
}

/** The service's handlers. */
export function streamsService(context: GrpcContext): UntypedServiceImplementation {
  async function append(requests: AppendRequest[], metadata: Metadata) {
    const { principal, store } = await callerOf(context, metadata);
    const [first, ...rest] = requests;
    if (!first?.options) throw new BadRequest('the append does not begin with its options');
    const messages = rest.map((request, index) => {
      if (!request.proposed_message) throw new BadRequest(`message ${index + 1} is not an event`);
      return request.proposed_message;
    });
    const expected = expectedOf(first.options);
    const outcome = await appendMessages(
      store,
      principal,
      streamNameOf(first.options.stream_identifier),
      expected,
      messages,
    );
    if (!outcome.ok) return wrongExpected(outcome.expected, outcome.actualVersion);
    const position = outcome.position === undefined ? undefined : String(outcome.position);
    return {
      success: {
        ...(outcome.revision === undefined ? { no_stream: {} } : { current_revision: String(outcome.revision) }),
        ...(position === undefined
          ? { no_position: {} }
          : { position: { commit_position: position, prepare_position: position } }),
      },
    };
  }

  async function change(call: ServerUnaryCall<StreamRequest, unknown>, to: 'delete' | 'tombstone') {
    const { principal, store } = await callerOf(context, call.metadata);
    requireScope(principal, 'admin');
    const options = call.request.options;
    if (!options) throw new BadRequest('the request has no options');
    const stream = streamNameOf(options.stream_identifier);
    requireStream(principal, stream);
    const expected = expectedOf(options);
    if (expected === 'no-stream') {
      // Deleting what must not exist: only a stream without events qualifies.
      const version = (await store.getStream(stream))?.version ?? 0;
      if (version > 0) throw new ConcurrencyError(stream, expected, version);
    }
    const actor = actorFor(principal, undefined);
    const result = await lifecycle(store)[to](stream, {
      reason: `${to === 'delete' ? 'deleted' : 'tombstoned'} through the KurrentDB protocol`,
      ...(actor ? { actor } : {}),
      expectedVersion: expected === 'no-stream' ? 'any' : expected,
    });
    if (to === 'delete' && !result.changed && result.previousState === 'tombstoned') {
      throw new StreamDeletedError(stream, true);
    }
    if (result.position === null) return { no_position: {} };
    const position = String(result.position);
    return { position: { commit_position: position, prepare_position: position } };
  }

  /** Counts a call in flight until `work` settles. */
  const counted = <T>(work: () => Promise<T>): Promise<T> => {
    context.calls++;
    return work().finally(() => {
      context.calls--;
    });
  };

  const unary =
    <R>(handler: (call: ServerUnaryCall<R, unknown>) => Promise<unknown>) =>
    (call: ServerUnaryCall<R, unknown>, callback: sendUnaryData<unknown>) => {
      counted(() => handler(call)).then(
        (answer) => callback(null, answer),
        (error: unknown) => callback(failed(context, error)),
      );
    };

  return {
    Append(call: ServerReadableStream<AppendRequest, unknown>, callback: sendUnaryData<unknown>) {
      const requests: AppendRequest[] = [];
      let bytes = 0;
      let refused = false;
      call.on('data', (request: AppendRequest) => {
        if (refused) return;
        const message = request.proposed_message;
        bytes += (message?.data?.length ?? 0) + (message?.custom_metadata?.length ?? 0);
        if (bytes > context.maxAppendBytes) {
          refused = true;
          callback(
            new GrpcError(
              status.INVALID_ARGUMENT,
              `the append is over ${context.maxAppendBytes} bytes`,
              'maximum-append-size-exceeded',
              { 'maximum-append-size': String(context.maxAppendBytes) },
            ),
          );
          return;
        }
        requests.push(request);
      });
      call.on('error', () => {
        refused = true;
      });
      call.on('end', () => {
        if (refused || call.cancelled) return;
        counted(() => append(requests, call.metadata)).then(
          (answer) => callback(null, answer),
          (error: unknown) => callback(failed(context, error)),
        );
      });
    },
    BatchAppend: batchAppend(context, counted),
    Delete: unary<StreamRequest>((call) => change(call, 'delete')),
    Tombstone: unary<StreamRequest>((call) => change(call, 'tombstone')),
    Read(call: ServerWritableStream<{ options?: WireReadOptions }, unknown>) {
      const run = async () => {
        // A key revoked after this instant, while the call is still being set up, ends it too.
        const authenticatedAt = Date.now();
        const { principal, store } = await callerOf(context, call.metadata);
        const plan = planOf(call.request.options);
        requireScope(principal, plan.subscription ? 'subscribe' : 'read');
        const target = plan.stream?.startsWith(metaPrefix) ? plan.stream.slice(metaPrefix.length) : plan.stream;
        if (target !== undefined) requireStream(principal, target);
        const authenticator = context.authenticator;
        const watch =
          principal && authenticator
            ? (end: () => void) => authenticator.watch(principal, end, authenticatedAt)
            : undefined;
        if (plan.subscription) await follow(context, store, call, plan, principal?.categories ?? null, watch);
        else await readEvents(store, call, plan, principal?.categories ?? null);
      };
      counted(run).then(
        () => call.end(),
        (error: unknown) => {
          if (!call.cancelled) call.emit('error', failed(context, error));
        },
      );
    },
  };
}
