/**
 * Turns an `Authorization` header into a principal. API keys are looked up by id and kept for
 * `cacheMs`, so a request costs one SHA-256, not a round trip; a revocation reaches every
 * server at once through NOTIFY (key-queries.ts), which drops the key from the cache and ends
 * the long-lived connections (SSE) that it holds. When the LISTEN connection was lost the
 * notifications sent meanwhile are too: then the whole cache is dropped and every watched key
 * looked up again. Tokens (JWT) are checked by their signature and expire; they are not revoked.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Listener, SqlClient } from '@annals/core';
import { findKeyRow, parseApiKey, principalOfKey, secretMatches } from './api-keys.js';
import { revokedChannel } from './key-queries.js';
import { AuthenticationError, type Principal } from './principal.js';

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** API keys, read through `client` (which may read the directory's `api_keys`). */
  keys?: { client: SqlClient; directory?: string };
  /** Verifies a bearer token that is not an API key (see jwt.ts). */
  verifyToken?: (token: string) => Promise<Principal>;
  /** How long a looked-up key is trusted without asking the database again. @defaultValue 30 000 */
  cacheMs?: number;
}

interface CachedKey {
  hash: Uint8Array;
  /** The secret once it matched the hash: later requests compare it, without hashing again. */
  verified?: Buffer;
  principal: Principal | undefined;
  until: number;
}

const maxTimer = 2 ** 31 - 1;

/** How long an id with no key is remembered as such: a key created since is found after it. */
const unknownKeyMs = 2000;

/** The credential of a `Bearer` header, or undefined when it is not one. */
function credentialOf(header: string): string | undefined {
  return /^Bearer +([\x21-\x7e]{1,8192})$/i.exec(header.trim())?.[1];
}

/** Authenticates requests; see the module comment. */
export class Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #cache = new Map<string, CachedKey>();
  readonly #watchers = new Map<string, Set<() => void>>();
  #listener: Listener | undefined;
  /** Counts revocations heard: a key read while one arrived may predate it, so is not cached. */
  #revocations = 0;
  /** Keys revoked in the last minutes, and when: for requests authenticated just before. */
  readonly #recentlyRevoked = new Map<string, number>();
  /** Lookups in flight, by key id: a burst of requests with one key asks the database once. */
  readonly #lookups = new Map<string, Promise<CachedKey>>();

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
  }

  /** Starts listening for revocations (call before serving). */
  async start(): Promise<void> {
    const keys = this.#options.keys;
    if (!keys) return;
    this.#listener = await keys.client.listen(
      revokedChannel(keys.directory ?? 'annals_control'),
      (id) => this.#revoked(id),
      () => void this.#recheck(),
    );
  }

  /**
   * Key `id` was revoked by this process: forgotten at once, its live connections ended. Every
   * other server hears it through NOTIFY; this one must not wait for its own notification, or
   * the next request with the key could still pass.
   */
  revoked(id: string): void {
    this.#revoked(id);
  }

  async close(): Promise<void> {
    await this.#listener?.close();
    this.#listener = undefined;
  }

  /**
   * The principal of an API key this server holds in its cache, valid now; undefined for
   * anything else (then {@link Authenticator.authenticate} decides). Synchronous: most
   * requests of a busy server end here, without a promise.
   */
  cached(header: string | undefined): Principal | undefined {
    const credential = header === undefined ? undefined : credentialOf(header);
    const key = credential === undefined ? undefined : parseApiKey(credential);
    if (!key) return undefined;
    const now = Date.now();
    const cached = this.#cache.get(key.id);
    const principal = cached?.principal;
    if (!cached || cached.until <= now || !principal) return undefined;
    if (principal.expiresAt && principal.expiresAt.getTime() <= now) return undefined;
    return this.#matches(key.secret, cached) ? principal : undefined;
  }

  /** Whether `secret` is the key's, in constant time; the first match is kept for the next ones. */
  #matches(secret: string, cached: CachedKey): boolean {
    const given = Buffer.from(secret);
    if (cached.verified) return cached.verified.length === given.length && timingSafeEqual(given, cached.verified);
    if (!secretMatches(secret, cached.hash)) return false;
    cached.verified = given;
    return true;
  }

  /** The principal of an `Authorization` header; throws {@link AuthenticationError}. */
  async authenticate(header: string | undefined): Promise<Principal> {
    if (header === undefined || header === '') throw new AuthenticationError('credentials are missing');
    const credential = credentialOf(header);
    if (credential === undefined) {
      throw new AuthenticationError('the Authorization header must be "Bearer <key or token>"');
    }
    const key = parseApiKey(credential);
    if (key) return this.#byKey(key.id, key.secret);
    if (credential.startsWith('ank_') || !this.#options.verifyToken) {
      throw new AuthenticationError('the key is not valid');
    }
    const principal = await this.#options.verifyToken(credential);
    // Refused from the moment its live connections are ended (watch), whatever clock
    // tolerance the verifier allows: a reconnect after the end must get 401, not a stream.
    if (principal.expiresAt && principal.expiresAt.getTime() <= Date.now()) {
      throw new AuthenticationError('the token has expired');
    }
    return principal;
  }

  /**
   * Calls `onEnd` when `principal` stops being valid: revoked, or past its expiry. For
   * connections that outlive a request (SSE). Returns the function that stops watching.
   */
  watch(principal: Principal, onEnd: () => void, authenticatedAt = Date.now()): () => void {
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      stop();
      onEnd();
    };
    let timer: NodeJS.Timeout | undefined;
    if (principal.expiresAt) {
      timer = setTimeout(end, Math.min(maxTimer, Math.max(0, principal.expiresAt.getTime() - Date.now())));
      timer.unref();
    }
    let set = this.#watchers.get(principal.id);
    if (!set) {
      set = new Set();
      this.#watchers.set(principal.id, set);
    }
    set.add(end);
    // Revoked between its authentication and now: ended at once.
    const revokedAt = this.#recentlyRevoked.get(principal.id);
    if (revokedAt !== undefined && revokedAt >= authenticatedAt) queueMicrotask(end);
    const stop = () => {
      clearTimeout(timer);
      const watching = this.#watchers.get(principal.id);
      watching?.delete(end);
      if (watching?.size === 0) this.#watchers.delete(principal.id);
    };
    return stop;
  }

  async #byKey(id: string, secret: string): Promise<Principal> {
    const now = Date.now();
    let cached = this.#cache.get(id);
    if (!cached || cached.until <= now) {
      let lookup = this.#lookups.get(id);
      if (!lookup) {
        lookup = this.#lookUp(id, now).finally(() => this.#lookups.delete(id));
        this.#lookups.set(id, lookup);
      }
      cached = await lookup;
    }
    const matches = this.#matches(secret, cached);
    const principal = cached.principal;
    if (!matches || !principal) throw new AuthenticationError('the key is not valid');
    if (principal.expiresAt && principal.expiresAt.getTime() <= now) {
      throw new AuthenticationError('the key has expired');
    }
    return principal;
  }

  /** Reads key `id` and caches it (an unknown id too, briefly: it costs a round trip each). */
  async #lookUp(id: string, now: number): Promise<CachedKey> {
    const keys = this.#options.keys;
    if (!keys) return { hash: new Uint8Array(32), principal: undefined, until: now };
    const heard = this.#revocations;
    const row = await findKeyRow(keys.client, id, keys);
    // An unknown id is checked against a hash all the same, so timing says nothing of it.
    const cached: CachedKey = {
      hash: row?.secret_sha256 ?? new Uint8Array(32),
      principal: row ? principalOfKey(row, now) : undefined,
      until: now + (row ? (this.#options.cacheMs ?? 30_000) : unknownKeyMs),
    };
    // A row read while a revocation arrived may predate it: not kept.
    if (heard === this.#revocations) this.#cache.set(id, cached);
    // Ids with no key, sent by anyone, must not grow the cache without bound.
    if (this.#cache.size > 10_000) {
      for (const [key, entry] of this.#cache) if (entry.until <= now) this.#cache.delete(key);
    }
    return cached;
  }

  #revoked(id: string): void {
    this.#revocations++;
    this.#cache.delete(id);
    const now = Date.now();
    this.#recentlyRevoked.delete(id);
    this.#recentlyRevoked.set(id, now);
    for (const [old, at] of this.#recentlyRevoked) {
      if (at > now - 5 * 60_000) break;
      this.#recentlyRevoked.delete(old);
    }
    for (const end of [...(this.#watchers.get(id) ?? [])]) end();
  }

  /** After a lost LISTEN: forget every cached key, and end watched ones revoked meanwhile. */
  async #recheck(): Promise<void> {
    this.#revocations++;
    this.#cache.clear();
    const keys = this.#options.keys;
    if (!keys) return;
    for (const id of [...this.#watchers.keys()]) {
      const row = await findKeyRow(keys.client, id, keys).catch(() => undefined);
      if (row && !principalOfKey(row)) this.#revoked(id);
    }
  }
}
