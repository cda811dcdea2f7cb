/**
 * `Streams.BatchAppend`: the clients' default append path, one long-lived bidirectional call
 * per connection carrying many appends, each named by a correlation id, its events possibly
 * split over several requests until `is_final`. Each append is answered on the same call, in
 * the order they complete; a refused one answers a `google.rpc.Status` whose `details` pack
 * the error the clients unpack (`WrongExpectedVersion`, `StreamDeleted`, `AccessDenied`,
 * `MaximumAppendSizeExceeded`, `Timeout`, else `Unknown`).
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { type AppendOutcome, appendMessages, expectedOf, type WireExpected } from './append.js';
import { callerOf } from './auth.js';
import type { GrpcContext } from './context.js';
import { grpcErrorOf } from './errors.js';
import { BadRequest, type ProposedMessage, type WireUuid } from './mapping.js';
import { streamNameOf } from './read-options.js';
import { send } from './sink.js';

interface BatchRequest {
  correlation_id?: WireUuid;
  options?: WireExpected & {
    stream_identifier?: { stream_name?: Buffer };
    deadline_21_10_0?: { seconds?: string; nanos?: number };
  };
  proposed_messages?: ProposedMessage[];
  is_final?: boolean;
}

interface Batch {
  options: NonNullable<BatchRequest['options']> | undefined;
  messages: ProposedMessage[];
  bytes: number;
}

/** A protobuf varint. */
function varint(value: bigint): number[] {
  const out: number[] = [];
  let rest = value;
  do {
    let byte = Number(rest & 0x7fn);
    rest >>= 7n;
    if (rest > 0n) byte |= 0x80;
    out.push(byte);
  } while (rest > 0n);
  return out;
}

/** `event_store.client.WrongExpectedVersion`, encoded by hand (it travels inside an `Any`). */
function wrongExpectedVersion(outcome: Extract<AppendOutcome, { ok: false }>): Buffer {
  const bytes: number[] = [];
  if (outcome.actualVersion > 0) bytes.push(0x08, ...varint(BigInt(outcome.actualVersion - 1)));
  else bytes.push(0x12, 0x00);
  const { expected } = outcome;
  if (typeof expected === 'number') bytes.push(0x18, ...varint(BigInt(expected - 1)));
  else bytes.push(expected === 'any' ? 0x22 : expected === 'stream-exists' ? 0x2a : 0x32, 0x00);
  return Buffer.from(bytes);
}

const status = (code: number, message: string, type: string, value: Buffer = Buffer.alloc(0)) => ({
  code,
  message,
  details: { type_url: `type.googleapis.com/event_store.client.${type}`, value },
});

const tooLarge = (limit: number) =>
  status(
    3,
    `the append is over ${limit} bytes`,
    'MaximumAppendSizeExceeded',
    Buffer.from([0x08, ...varint(BigInt(limit))]),
  );

/** An error as the `Status` a batch is answered with. */
function statusOf(error: unknown, context: GrpcContext) {
  const answer = grpcErrorOf(error);
  const exception = String(answer.metadata.get('exception')[0] ?? '');
  if (exception === 'stream-deleted') return status(answer.code, answer.message, 'StreamDeleted');
  if (exception === 'access-denied') return status(answer.code, answer.message, 'AccessDenied');
  if (exception === 'maximum-append-size-exceeded') return tooLarge(context.maxAppendBytes);
  if (answer.code === 13) context.onError(error);
  return status(answer.code, answer.message, 'Unknown');
}

/** The handler of `BatchAppend`. */
export function batchAppend(context: GrpcContext, counted: <T>(work: () => Promise<T>) => Promise<T>) {
  return (call: ServerDuplexStream<BatchRequest, unknown>) => {
    const batches = new Map<string, Batch>();
    let running = 0;
    let ended = false;
    const finish = () => {
      if (ended && running === 0 && !call.cancelled) call.end();
    };

    const answer = async (correlation: WireUuid | undefined, batch: Batch) => {
      const identifier = batch.options?.stream_identifier ?? { stream_name: Buffer.alloc(0) };
      const base = { correlation_id: correlation, stream_identifier: identifier };
      try {
        // Checked for every append (a cache hit, mostly): a key revoked while the call stays
        // open is refused from its next append on.
        const { principal: who, store } = await callerOf(context, call.metadata);
        if (!batch.options) throw new BadRequest('the first request of the append has no options');
        const deadline = batch.options.deadline_21_10_0;
        if (deadline?.seconds !== undefined && Number(deadline.seconds) * 1000 < Date.now()) {
          return { ...base, error: status(4, 'the deadline passed before the append', 'Timeout') };
        }
        if (batch.bytes > context.maxAppendBytes) {
          return { ...base, error: tooLarge(context.maxAppendBytes) };
        }
        const stream = streamNameOf(batch.options.stream_identifier);
        const outcome = await appendMessages(store, who, stream, expectedOf(batch.options), batch.messages);
        if (!outcome.ok) {
          return {
            ...base,
            error: status(9, 'wrong expected version', 'WrongExpectedVersion', wrongExpectedVersion(outcome)),
          };
        }
        const position = outcome.position === undefined ? undefined : String(outcome.position);
        return {
          ...base,
          success: {
            ...(outcome.revision === undefined ? { no_stream: {} } : { current_revision: String(outcome.revision) }),
            ...(position === undefined
              ? { no_position: {} }
              : { position: { commit_position: position, prepare_position: position } }),
          },
        };
      } catch (error) {
        return { ...base, error: statusOf(error, context) };
      }
    };

    call.on('data', (request: BatchRequest) => {
      const key = JSON.stringify(request.correlation_id ?? null);
      let batch = batches.get(key);
      if (!batch) {
        batch = { options: request.options, messages: [], bytes: 0 };
        batches.set(key, batch);
      }
      for (const message of request.proposed_messages ?? []) {
        batch.bytes += (message.data?.length ?? 0) + (message.custom_metadata?.length ?? 0);
        // Past the limit the events are not kept: the append is refused when it ends.
        if (batch.bytes <= context.maxAppendBytes) batch.messages.push(message);
      }
      if (!request.is_final) return;
      batches.delete(key);
      running++;
      const done = batch;
      counted(() => answer(request.correlation_id, done))
        .then((response) => send(call as never, response))
        .finally(() => {
          running--;
          finish();
        });
    });
    call.on('end', () => {
      ended = true;
      finish();
    });
    call.on('error', () => {
      batches.clear();
    });
  };
}
