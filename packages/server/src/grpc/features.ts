/**
 * `event_store.client.server_features.ServerFeatures`: the methods served, exactly. The
 * clients ask once per connection and choose their calls by it (with BatchAppend listed, they
 * append through it unless a call carries its own credentials).
 */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';

/** The KurrentDB server version whose v1 protocol this endpoint speaks. */
export const protocolVersion = '24.10.0';

const streams = 'event_store.client.streams.Streams';
const persistent = 'event_store.client.persistent_subscriptions.PersistentSubscriptions';
const both = ['stream', 'all'];

/** Every method served, as `GetSupportedMethods` lists them. */
export const supportedMethods: ReadonlyArray<{ service_name: string; method_name: string; features: string[] }> = [
  { service_name: streams, method_name: 'read', features: [] },
  { service_name: streams, method_name: 'append', features: [] },
  { service_name: streams, method_name: 'batchappend', features: [] },
  { service_name: streams, method_name: 'delete', features: [] },
  { service_name: streams, method_name: 'tombstone', features: [] },
  ...['create', 'update', 'delete', 'read', 'getinfo', 'replayparked', 'list'].map((method_name) => ({
    service_name: persistent,
    method_name,
    features: both,
  })),
  { service_name: persistent, method_name: 'restartsubsystem', features: [] },
  {
    service_name: 'event_store.client.server_features.ServerFeatures',
    method_name: 'getsupportedmethods',
    features: [],
  },
];

/** The service's handlers. */
export function serverFeaturesService(): UntypedServiceImplementation {
  return {
    GetSupportedMethods(_call: unknown, callback: (error: null, answer: unknown) => void) {
      callback(null, { methods: supportedMethods, event_store_server_version: protocolVersion });
    },
  };
}
