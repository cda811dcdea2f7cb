/** What every gRPC handler shares: the store, the authenticator, the open subscriptions. */
import type { EventStore } from '@annals/core';
import type { Authenticator } from '../auth/authenticator.js';

/** The shared state of one gRPC endpoint. */
export interface GrpcContext {
  store: EventStore;
  authenticator: Authenticator | undefined;
  /** The tenant whose keys are accepted. */
  tenant: string;
  /** Stops of the subscriptions being served, by id: what cancelling or closing ends. */
  subscriptions: Map<string, () => void>;
  /** Calls being answered now: what closing waits for. */
  calls: number;
  /** Most bytes of event data and metadata one append may carry. */
  maxAppendBytes: number;
  /** Told of errors that are not the caller's (answered INTERNAL). */
  onError: (error: unknown) => void;
}
