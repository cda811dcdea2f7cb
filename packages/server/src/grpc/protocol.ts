/**
 * The KurrentDB v1 gRPC protocol, from the `.proto` files of the official Node client
 * (`protos/`, Apache-2.0, unchanged), loaded at start. 64-bit integers arrive and leave as
 * decimal strings (the files mark them `jstype = JS_STRING`); bytes as Buffers.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type GrpcObject, loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** The protos sit beside the sources; a build in `dist/grpc` finds them under `src/grpc`. */
function protoRoot(): string {
  for (const candidate of ['./protos', '../../src/grpc/protos']) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('the KurrentDB .proto files are missing from @annals/server');
}

const files = [
  'kurrentdb/protocols/v1/streams.proto',
  'kurrentdb/protocols/v1/serverfeatures.proto',
  'annals/persistent_subscriptions.proto',
];

let loaded:
  | {
      streams: ServiceClientConstructor;
      serverFeatures: ServiceClientConstructor;
      persistentSubscriptions: ServiceClientConstructor;
    }
  | undefined;

/** The service constructors (their `.service` is the definition a server adds). */
export function protocol() {
  if (loaded) return loaded;
  const definition = loadSync(files, {
    includeDirs: [protoRoot()],
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  });
  const root = loadPackageDefinition(definition) as unknown as {
    event_store: { client: { streams: GrpcObject; server_features: GrpcObject; persistent_subscriptions: GrpcObject } };
  };
  loaded = {
    streams: root.event_store.client.streams.Streams as ServiceClientConstructor,
    serverFeatures: root.event_store.client.server_features.ServerFeatures as ServiceClientConstructor,
    persistentSubscriptions: root.event_store.client.persistent_subscriptions
      .PersistentSubscriptions as ServiceClientConstructor,
  };
  return loaded;
}
