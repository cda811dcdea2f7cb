/** Writing to a server stream at the pace its client reads. */
import type { ServerWritableStream } from '@grpc/grpc-js';

/** A call that messages are written to. */
export type ReadCall = ServerWritableStream<unknown, unknown>;

/**
 * Writes `message`; when the stream's buffer is full, waits until it drains or the call
 * ends, so a slow reader holds a bounded amount of memory.
 */
export async function send(call: ReadCall, message: unknown): Promise<void> {
  if (call.cancelled) return;
  if (call.write(message)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    call.on('close', done);
  });
}
