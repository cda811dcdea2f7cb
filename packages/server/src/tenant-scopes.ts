/**
 * The store each request reaches. A server serves one store (tenant `default` unless named),
 * or, with tenants, the store of the principal's tenant: opened on its first request over a
 * client that runs as the tenant's own role (so PostgreSQL, not this code, keeps tenants
 * apart; docs/tenancy.md), with its own live hub, kept open until the server closes.
 */
import type { EventStore } from '@annals/core';
import { LiveHub, type LiveHubOptions } from './live-hub.js';

/** One tenant's parts, as the routes see them. */
export interface TenantScope {
  tenant: string;
  store: EventStore;
  hub: LiveHub;
  /** A value made once per tenant and kept (facets, command handlers). */
  memo<T>(key: string, make: () => T): T;
}

/** Opens tenant `tenant`'s store, or undefined when there is no such tenant. */
export type OpenTenantStore = (tenant: string) => Promise<EventStore | undefined>;

export class TenantScopes {
  readonly #open: OpenTenantStore;
  readonly #hubOptions: LiveHubOptions;
  readonly #scopes = new Map<string, Promise<TenantScope | undefined>>();
  readonly #ready: TenantScope[] = [];

  constructor(open: OpenTenantStore, hubOptions: LiveHubOptions = {}) {
    this.#open = open;
    this.#hubOptions = hubOptions;
  }

  /** A server of one store: every principal of `tenant` reaches it, no other. */
  static single(tenant: string, store: EventStore, hubOptions?: LiveHubOptions): TenantScopes {
    return new TenantScopes(async (name) => (name === tenant ? store : undefined), hubOptions);
  }

  /** The scope of `tenant`; undefined when it has no store here. */
  get(tenant: string): Promise<TenantScope | undefined> {
    let scope = this.#scopes.get(tenant);
    if (!scope) {
      scope = this.#make(tenant);
      this.#scopes.set(tenant, scope);
      // A failed open (database down) is tried again by the next request.
      scope.then(
        (made) => made === undefined && this.#scopes.delete(tenant),
        () => this.#scopes.delete(tenant),
      );
    }
    return scope;
  }

  /** The scopes opened so far. */
  get opened(): readonly TenantScope[] {
    return this.#ready;
  }

  /** Ends every hub's SSE clients (with their retry hint). */
  async close(): Promise<void> {
    await Promise.all(this.#ready.map((scope) => scope.hub.close()));
  }

  async #make(tenant: string): Promise<TenantScope | undefined> {
    const store = await this.#open(tenant);
    if (!store) return undefined;
    const memos = new Map<string, unknown>();
    const scope: TenantScope = {
      tenant,
      store,
      hub: new LiveHub(store, this.#hubOptions),
      memo<T>(key: string, make: () => T): T {
        if (!memos.has(key)) memos.set(key, make());
        return memos.get(key) as T;
      },
    };
    this.#ready.push(scope);
    return scope;
  }
}
