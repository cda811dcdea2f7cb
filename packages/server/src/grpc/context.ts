/** What every gRPC handler shares: where stores are found, the authenticator, the open subscriptions. */
import type { EventStore } from '@annals/core';
import type { Authenticator } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';

/** The shared state of one gRPC endpoint. */
export interface GrpcContext {
  /**
   * The store a caller reaches: its tenant's (undefined when the tenant has no store here);
   * with auth off (no principal), the one store of a single-store endpoint.
   */
  storeFor(principal: Principal | undefined): Promise<EventStore | undefined>;
  authenticator: Authenticator | undefined;
  /** Stops of the subscriptions being served, by id: what cancelling or closing ends. */
  subscriptions: Map<string, () => void>;
  /** Calls being answered now: what closing waits for. */
  calls: number;
  /** Most bytes of event data and metadata one append may carry. */
  maxAppendBytes: number;
  /** Told of errors that are not the caller's (answered INTERNAL). */
  onError: (error: unknown) => void;
}
