/** Reads a whole JetStream stream back, in sequence order, through an ordered consumer. */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

export interface ReadMessage {
  seq: number;
  subject: string;
  headers: Record<string, string>;
  body: unknown;
}

/** Every message of `stream`, oldest first; `[]` when the stream does not exist. */
export async function readJetStream(url: string, stream: string): Promise<ReadMessage[]> {
  const connection = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(connection);
    const info = await jsm.streams.info(stream).catch(() => undefined);
    if (!info || info.state.messages === 0) return [];
    const last = info.state.last_seq;
    const consumer = await jetstream(connection).consumers.get(stream);
    const messages: ReadMessage[] = [];
    const iterator = await consumer.consume({ max_messages: 5000 });
    for await (const message of iterator) {
      const headers: Record<string, string> = {};
      for (const [key, values] of message.headers ?? []) headers[key] = values[0] ?? '';
      let body: unknown = message.string();
      try {
        body = message.json();
      } catch {
        // Not JSON (a message the relay did not publish): its text.
      }
      messages.push({ seq: message.seq, subject: message.subject, headers, body });
      if (message.seq >= last) break;
    }
    await iterator.close();
    return messages;
  } finally {
    await connection.close();
  }
}
