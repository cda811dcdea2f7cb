/**
 * JWT bearer tokens: lets a deployment accept tokens that its own identity provider signs,
 * instead of issuing API keys to every caller. A token is checked with `jose` (signature,
 * algorithm, expiry, issuer, audience) against public keys only, and its claims become a
 * {@link Principal}. Whatever is wrong with a token, the caller learns only that it is not
 * valid (or has expired): never which check failed, never any part of the token.
 */
import { readFile } from 'node:fs/promises';
import {
  type CryptoKey,
  createLocalJWKSet,
  errors,
  importJWK,
  importSPKI,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { AuthenticationError, scopes as knownScopes, type Principal, type Scope } from './principal.js';

/** How the server verifies JWT bearer tokens and reads a principal from their claims. */
export interface JwtOptions {
  /** A PEM public key (SPKI) or a JWK as JSON text; or */
  publicKey?: string;
  /** a path of a JWKS file (JSON {keys:[...]}) read at start. Exactly one of publicKey / jwksFile. */
  jwksFile?: string;
  /** Accepted algorithms. @defaultValue ['RS256','ES256','EdDSA'] (never 'none', never HS*) */
  algorithms?: string[];
  /** The `iss` a token must have, if given. */
  issuer?: string;
  /** An `aud` a token must have, if given. */
  audience?: string;
  /** Claim names: tenant (default 'tenant'), scopes (default 'scope': space-separated string or array), actor (default 'sub'), categories (default 'categories': array), actAs (default 'act_as': boolean) */
  claims?: { tenant?: string; scopes?: string; actor?: string; categories?: string; actAs?: string };
  /** Tenant when the token has no tenant claim; without it such a token is refused. */
  defaultTenant?: string;
  /** Allowed clock skew in seconds, for `nbf` and `iat`; the server refuses a token from its `exp` on. @defaultValue 30 */
  clockToleranceSeconds?: number;
}

/** Public-key signature algorithms that may be accepted; shared-secret (HS*) and `none` never are. */
const publicKeyAlgorithms = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);
const tenantPattern = /^[a-z][a-z0-9_]{0,39}$/;
/** Longer than any real token: refused before any parsing. */
const maxTokenLength = 16_384;
const invalid = 'the token is not valid';
const expired = 'the token has expired';

/**
 * Reads the keys and checks the options once, and returns the function that verifies a bearer
 * token and maps its claims to a principal.
 *
 * @throws Error when the options are wrong: both or neither of `publicKey` and `jwksFile`, a
 *   key or key file that cannot be read, an algorithm that is not a public-key one.
 * @returns A function that resolves to the token's principal, or rejects with an
 *   {@link AuthenticationError} whose message says only that the token is not valid or has expired.
 */
export async function createJwtVerifier(options: JwtOptions): Promise<(token: string) => Promise<Principal>> {
  const algorithms = options.algorithms ?? ['RS256', 'ES256', 'EdDSA'];
  if (algorithms.length === 0) throw new Error('JWT: algorithms must name at least one algorithm');
  for (const alg of algorithms) {
    if (!publicKeyAlgorithms.has(alg)) {
      throw new Error(
        `JWT: algorithm ${JSON.stringify(alg)} is not accepted; use public-key ones (${[...publicKeyAlgorithms].join(', ')})`,
      );
    }
  }
  const tolerance = options.clockToleranceSeconds ?? 30;
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new Error('JWT: clockToleranceSeconds must be a number of seconds, 0 or more');
  }
  if (options.defaultTenant !== undefined && !tenantPattern.test(options.defaultTenant)) {
    throw new Error(`JWT: defaultTenant must match ${tenantPattern}`);
  }
  const getKey = await loadKeys(options, algorithms);
  const claims = {
    tenant: options.claims?.tenant ?? 'tenant',
    scopes: options.claims?.scopes ?? 'scope',
    actor: options.claims?.actor ?? 'sub',
    categories: options.claims?.categories ?? 'categories',
    actAs: options.claims?.actAs ?? 'act_as',
  };

  return async (token) => {
    if (typeof token !== 'string' || token.length > maxTokenLength) throw new AuthenticationError(invalid);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms,
        issuer: options.issuer,
        audience: options.audience,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      // No `cause`: jose's claim errors carry the payload.
      throw new AuthenticationError(error instanceof errors.JWTExpired ? expired : invalid);
    }
    return toPrincipal(payload, claims, options.defaultTenant);
  };
}

/** The key lookup for `jwtVerify`, from the one public key or the JWKS file. */
async function loadKeys(options: JwtOptions, algorithms: string[]): Promise<JWTVerifyGetKey> {
  if ((options.publicKey === undefined) === (options.jwksFile === undefined)) {
    throw new Error('JWT: give exactly one of publicKey and jwksFile');
  }
  if (options.jwksFile !== undefined) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(await readFile(options.jwksFile, 'utf8'));
    } catch (error) {
      throw new Error(`JWT: cannot read the JWKS file ${options.jwksFile}: ${(error as Error).message}`);
    }
    if (!Array.isArray(jwks?.keys)) throw new Error(`JWT: the JWKS file ${options.jwksFile} has no "keys" array`);
    const keys = jwks.keys.filter((key) => key?.kty !== 'oct' && key?.d === undefined);
    if (keys.length === 0) throw new Error(`JWT: the JWKS file ${options.jwksFile} has no public key`);
    return createLocalJWKSet({ keys });
  }

  // One key: imported for each accepted algorithm it suits; a token's `alg` picks one.
  const text = (options.publicKey as string).trim();
  const imported = new Map<string, CryptoKey>();
  if (text.startsWith('{')) {
    let jwk: JWK;
    try {
      jwk = JSON.parse(text);
    } catch {
      throw new Error('JWT: publicKey is neither a PEM public key nor JSON of a JWK');
    }
    if (jwk.kty === 'oct' || jwk.d !== undefined) throw new Error('JWT: publicKey must be a public key');
    for (const alg of algorithms) {
      if (jwk.alg !== undefined && jwk.alg !== alg) continue;
      const key = await importJWK(jwk, alg).catch(() => undefined);
      if (key !== undefined && !(key instanceof Uint8Array)) imported.set(alg, key);
    }
  } else {
    for (const alg of algorithms) {
      const key = await importSPKI(text, alg).catch(() => undefined);
      if (key !== undefined) imported.set(alg, key);
    }
  }
  if (imported.size === 0) {
    throw new Error(`JWT: publicKey is not a public key for any of the algorithms ${algorithms.join(', ')}`);
  }
  return (header) => {
    const key = imported.get(header.alg ?? '');
    if (key === undefined) throw new AuthenticationError(invalid);
    return key;
  };
}

/** The principal a verified token's claims stand for; refuses claims of the wrong type. */
function toPrincipal(
  payload: JWTPayload,
  claims: { tenant: string; scopes: string; actor: string; categories: string; actAs: string },
  defaultTenant: string | undefined,
): Principal {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 256) refuse();

  const tenant = payload[claims.tenant] ?? defaultTenant;
  if (typeof tenant !== 'string' || !tenantPattern.test(tenant)) refuse();

  const rawScopes = payload[claims.scopes];
  let names: unknown[] = [];
  if (typeof rawScopes === 'string') names = rawScopes.split(' ');
  else if (Array.isArray(rawScopes)) names = rawScopes;
  else refuse();
  if (!names.every((name) => typeof name === 'string')) refuse();
  const scopes = new Set<Scope>(knownScopes.filter((scope) => names.includes(scope)));
  if (scopes.size === 0) refuse();

  const rawCategories = payload[claims.categories];
  let categories: readonly string[] | null = null;
  if (rawCategories !== undefined) {
    if (!Array.isArray(rawCategories) || !rawCategories.every((c) => typeof c === 'string')) refuse();
    categories = Object.freeze([...rawCategories]);
  }

  const actor = payload[claims.actor] ?? sub;
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 256) refuse();

  const actAs = payload[claims.actAs] ?? false;
  if (typeof actAs !== 'boolean') refuse();

  return {
    kind: 'token',
    // Per tenant: tokens of two tenants with one subject share no limit or connection count.
    id: `jwt:${tenant}:${sub}`,
    name: sub,
    tenant,
    scopes,
    categories,
    actor,
    actAs,
    expiresAt: new Date((payload.exp as number) * 1000),
  };
}

function refuse(): never {
  throw new AuthenticationError(invalid);
}
