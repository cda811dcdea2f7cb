/**
 * A child of the `kurrent` bench section: a gRPC server of the KurrentDB protocol that does no
 * work — reads are answered from messages encoded once, appends succeed at once — so that
 * the official client's own ceiling on this machine can be measured beside Annals. Its
 * streamed answers go through Annals' own pipelined writes, the fastest way grpc-js has.
 */
import { type MethodDefinition, Server, ServerCredentials } from '@grpc/grpc-js';
import { protocolVersion, supportedMethods } from '../packages/server/src/grpc/features.js';
import { pipelinedWrites } from '../packages/server/src/grpc/pipelined-writes.js';
import { protocol } from '../packages/server/src/grpc/protocol.js';

const { streams: streamsClient, serverFeatures } = protocol();
const streams = streamsClient.service;
// biome-ignore lint/suspicious/noExplicitAny: the loaded service's messages are untyped.
const read = streams.Read as MethodDefinition<any, any>;

/** Answers shaped as Annals sends them for the bench's events (`{"i":n}`), encoded once. */
const answers: Buffer[] = Array.from({ length: 1000 }, (_, i) =>
  read.responseSerialize({
    event: {
      event: {
        id: { string: '0190c2a4-7f00-7000-8000-000000000000' },
        stream_identifier: { stream_name: Buffer.from(`seed-${i}`) },
        stream_revision: String(i),
        prepare_position: String(i + 1),
        commit_position: String(i + 1),
        metadata: { type: 'Seeded', 'content-type': 'application/json', created: '17640000000000000' },
        custom_metadata: Buffer.alloc(0),
        data: Buffer.from(JSON.stringify({ i })),
      },
      commit_position: String(i + 1),
    },
  }),
);

const server = new Server({ interceptors: [pipelinedWrites()] });
server.addService(
  { ...streams, Read: { ...read, responseSerialize: (bytes: Buffer) => bytes } },
  {
    // biome-ignore lint/suspicious/noExplicitAny: untyped calls.
    Read: async (call: any) => {
      const count = Number(call.request.options?.count ?? 0);
      for (let i = 0; i < count && !call.cancelled; i++) {
        if (!call.write(answers[i % answers.length])) await new Promise((resolve) => call.once('drain', resolve));
      }
      call.end();
    },
    // biome-ignore lint/suspicious/noExplicitAny: untyped calls.
    BatchAppend: (call: any) => {
      let position = 0;
      // biome-ignore lint/suspicious/noExplicitAny: untyped requests.
      call.on('data', (request: any) => {
        if (!request.is_final) return;
        position++;
        call.write({
          correlation_id: request.correlation_id,
          stream_identifier: request.options?.stream_identifier,
          success: {
            current_revision: '0',
            position: { commit_position: String(position), prepare_position: String(position) },
          },
        });
      });
      call.on('end', () => call.end());
    },
  },
);
server.addService(serverFeatures.service, {
  GetSupportedMethods: (_call: unknown, callback: (error: null, answer: unknown) => void) =>
    callback(null, { methods: supportedMethods, event_store_server_version: protocolVersion }),
});
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) process.send?.({ error: error.message });
  else process.send?.({ port });
});
process.on('disconnect', () => server.forceShutdown());
