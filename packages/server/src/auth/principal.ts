/**
 * Who is asking: the principal an API key or a token stands for, and what it may do. Every
 * authenticated request carries one; routes check its scopes and categories, and its actor
 * is stamped on every event it appends (docs/tenancy.md).
 */

/** What a principal may do. `admin` includes every other scope. */
export type Scope = 'read' | 'append' | 'subscribe' | 'admin';

/** Every scope, in the order they are documented. */
export const scopes: readonly Scope[] = ['read', 'append', 'subscribe', 'admin'];

/** An authenticated caller. */
export interface Principal {
  /** How it authenticated. */
  kind: 'key' | 'token' | 'anonymous';
  /** The key's id, or the token's subject: what rate limits and connection caps count by. */
  id: string;
  /** A name for people (the key's name, the token's subject). Never a secret. */
  name: string;
  /** The tenant whose store every request of this principal reaches. */
  tenant: string;
  scopes: ReadonlySet<Scope>;
  /** Stream categories it may touch; null: all. */
  categories: readonly string[] | null;
  /** The `actor` of the events it appends. */
  actor: string;
  /** Whether it may name another actor in what it appends (a trusted backend acting for users). */
  actAs: boolean;
  /** When it stops being valid; null: never. */
  expiresAt: Date | null;
}

/** Why a credential was refused: a 401, whose message never says more than this. */
export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
}
