/** Writing to a server stream at the pace its client reads. */
import type { ServerWritableStream } from '@grpc/grpc-js';

/** A call that messages are written to. */
export type ReadCall = ServerWritableStream<unknown, unknown>;

/** The wait for a call's buffer to drain, shared by every writer of that call. */
const draining = new WeakMap<ReadCall, Promise<void>>();

function drained(call: ReadCall): Promise<void> {
  let wait = draining.get(call);
  if (!wait) {
    wait = new Promise<void>((resolve) => {
      const done = () => {
        call.off('drain', done);
        call.off('cancelled', done);
        call.off('close', done);
        draining.delete(call);
        resolve();
      };
      call.on('drain', done);
      call.on('cancelled', done);
      call.on('close', done);
    });
    draining.set(call, wait);
  }
  return wait;
}

/**
 * Writes `message`; when the stream's buffer is full, waits until it drains or the call
 * ends, so a slow reader holds a bounded amount of memory. Many appends answered on one
 * `BatchAppend` call wait on one set of listeners.
 */
export async function send(call: ReadCall, message: unknown): Promise<void> {
  if (call.cancelled) return;
  if (call.write(message)) return;
  await drained(call);
}
