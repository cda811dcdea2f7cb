/**
 * JWT bearer tokens: real key pairs of each algorithm sign real tokens; good ones map to the
 * principal their claims say, and every bad one (forged, expired, unsigned, alg-confused,
 * wrong issuer or audience, hostile claims, random text) is refused with an
 * AuthenticationError that says nothing of the token.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { base64url, type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwtVerifier } from '../src/auth/jwt.js';
import { AuthenticationError, type Principal } from '../src/auth/principal.js';

type Alg = 'RS256' | 'ES256' | 'EdDSA';
type Pair = { publicKey: CryptoKey; privateKey: CryptoKey; pem: string };
const pairs = {} as Record<Alg, Pair>;
let other: Pair;
let dir: string;

const now = () => Math.floor(Date.now() / 1000);

async function pair(alg: Alg): Promise<Pair> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { publicKey, privateKey, pem: await exportSPKI(publicKey) };
}

/** A signed token: by default RS256, sub 'alice', tenant 'acme', scope 'read append', exp in an hour. */
async function sign(
  claims: JWTPayload = {},
  options: { alg?: Alg; key?: CryptoKey; kid?: string; exp?: boolean } = {},
) {
  const { alg = 'RS256', kid, exp = true } = options;
  const key = options.key ?? pairs[alg].privateKey;
  const jwt = new SignJWT({ sub: 'alice', tenant: 'acme', scope: 'read append', ...claims }).setProtectedHeader(
    kid === undefined ? { alg } : { alg, kid },
  );
  if (exp) jwt.setExpirationTime(now() + 3600);
  return jwt.sign(key);
}

/** Expects the token refused with exactly that message, and no part of the token in the error. */
async function expectRefused(
  verify: (token: string) => Promise<Principal>,
  token: string,
  message = 'the token is not valid',
) {
  const error = await verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthenticationError);
  expect((error as Error).message).toBe(message);
  expect((error as Error).cause).toBeUndefined();
  const shown = inspect(error, { depth: 10 });
  for (const part of token.split('.').filter((p) => p.length >= 8)) expect(shown).not.toContain(part);
}

beforeAll(async () => {
  pairs.RS256 = await pair('RS256');
  pairs.ES256 = await pair('ES256');
  pairs.EdDSA = await pair('EdDSA');
  other = await pair('RS256');
  dir = await mkdtemp(join(tmpdir(), 'annals-jwt-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('valid tokens', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('%s maps to the principal its claims say', async (alg) => {
    const verify = await createJwtVerifier({ publicKey: pairs[alg].pem });
    const exp = now() + 600;
    const token = await new SignJWT({
      sub: `user-${alg}`,
      tenant: 'acme_2',
      scope: 'read subscribe',
      categories: ['order', 'invoice'],
      act_as: true,
    })
      .setProtectedHeader({ alg })
      .setExpirationTime(exp)
      .sign(pairs[alg].privateKey);
    const principal = await verify(token);
    expect(principal).toEqual({
      kind: 'token',
      id: `jwt:acme_2:user-${alg}`,
      name: `user-${alg}`,
      tenant: 'acme_2',
      scopes: new Set(['read', 'subscribe']),
      categories: ['order', 'invoice'],
      actor: `user-${alg}`,
      actAs: true,
      expiresAt: new Date(exp * 1000),
    });
  });

  it('defaults: categories null, actAs false, actor the subject', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    const principal = await verify(await sign());
    expect(principal.categories).toBeNull();
    expect(principal.actAs).toBe(false);
    expect(principal.actor).toBe('alice');
    expect([...principal.scopes]).toEqual(['read', 'append']);
  });

  it('accepts the key as a JWK in JSON', async () => {
    const verify = await createJwtVerifier({ publicKey: JSON.stringify(await exportJWK(pairs.ES256.publicKey)) });
    expect((await verify(await sign({}, { alg: 'ES256' }))).id).toBe('jwt:acme:alice');
    await expectRefused(verify, await sign({}, { alg: 'RS256' }));
  });

  it('a key is used only with the algorithm it suits', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    await expectRefused(verify, await sign({}, { alg: 'ES256' }));
  });

  it('reads the claims under the names it is given', async () => {
    const verify = await createJwtVerifier({
      publicKey: pairs.RS256.pem,
      claims: { tenant: 'org', scopes: 'perms', actor: 'email', categories: 'cats', actAs: 'trusted' },
    });
    const principal = await verify(
      await sign({ org: 'beta', perms: ['admin'], email: 'a@example.com', cats: ['x'], trusted: true }),
    );
    expect(principal).toMatchObject({
      tenant: 'beta',
      actor: 'a@example.com',
      categories: ['x'],
      actAs: true,
      id: 'jwt:beta:alice',
    });
    expect([...principal.scopes]).toEqual(['admin']);
  });
});

describe('JWKS file', () => {
  it('picks the key by kid', async () => {
    const jwks = {
      keys: [
        { ...(await exportJWK(pairs.RS256.publicKey)), kid: 'rsa-1', alg: 'RS256' },
        { ...(await exportJWK(pairs.ES256.publicKey)), kid: 'ec-1', alg: 'ES256' },
        { ...(await exportJWK(other.publicKey)), kid: 'rsa-2', alg: 'RS256' },
      ],
    };
    const file = join(dir, 'jwks.json');
    await writeFile(file, JSON.stringify(jwks));
    const verify = await createJwtVerifier({ jwksFile: file });

    expect((await verify(await sign({ sub: 'r' }, { kid: 'rsa-1' }))).name).toBe('r');
    expect((await verify(await sign({ sub: 'e' }, { alg: 'ES256', kid: 'ec-1' }))).name).toBe('e');
    expect((await verify(await sign({ sub: 'o' }, { key: other.privateKey, kid: 'rsa-2' }))).name).toBe('o');
    // Signed by one key, naming another.
    await expectRefused(verify, await sign({}, { kid: 'rsa-2' }));
    await expectRefused(verify, await sign({}, { kid: 'nope' }));
    // Two RSA keys and no kid: which one is ambiguous.
    await expectRefused(verify, await sign({}));
  });

  it('refuses a file that cannot be read or has no keys', async () => {
    await expect(createJwtVerifier({ jwksFile: join(dir, 'missing.json') })).rejects.toThrow(
      /cannot read the JWKS file/,
    );
    const bad = join(dir, 'bad.json');
    await writeFile(bad, 'not json');
    await expect(createJwtVerifier({ jwksFile: bad })).rejects.toThrow(/cannot read the JWKS file/);
    await writeFile(bad, '{"nokeys":1}');
    await expect(createJwtVerifier({ jwksFile: bad })).rejects.toThrow(/no "keys" array/);
    await writeFile(bad, JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }));
    await expect(createJwtVerifier({ jwksFile: bad })).rejects.toThrow(/no public key/);
  });
});

describe('refused tokens', () => {
  it('an expired one, with a message that has none of the token', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    const token = await new SignJWT({ sub: 'alice', tenant: 'acme', scope: 'read' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(now() - 120)
      .sign(pairs.RS256.privateKey);
    await expectRefused(verify, token, 'the token has expired');
  });

  it('an expiry within the clock tolerance is accepted; beyond it, not', async () => {
    const token = await new SignJWT({ sub: 'alice', tenant: 'acme', scope: 'read' })
      .setProtectedHeader({ alg: 'RS256' })
      .setExpirationTime(now() - 10)
      .sign(pairs.RS256.privateKey);
    expect((await (await createJwtVerifier({ publicKey: pairs.RS256.pem }))(token)).name).toBe('alice');
    const strict = await createJwtVerifier({ publicKey: pairs.RS256.pem, clockToleranceSeconds: 0 });
    await expectRefused(strict, token, 'the token has expired');
  });

  it('one signed by another key', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    await expectRefused(verify, await sign({}, { key: other.privateKey }));
  });

  it('a tampered one', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    const [header, , signature] = (await sign()).split('.');
    const payload = base64url.encode(JSON.stringify({ sub: 'alice', tenant: 'acme', scope: 'admin', exp: now() + 60 }));
    await expectRefused(verify, `${header}.${payload}.${signature}`);
  });

  it("an unsigned one (alg 'none')", async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify({ sub: 'alice', tenant: 'acme', scope: 'admin', exp: now() + 60 }));
    await expectRefused(verify, `${header}.${payload}.`);
  });

  it('HS256 signed with the public key as the secret (alg confusion)', async () => {
    const pem = pairs.RS256.pem;
    const jwkText = JSON.stringify(await exportJWK(pairs.RS256.publicKey));
    for (const secret of [pem, jwkText]) {
      const token = await new SignJWT({ sub: 'mallory', tenant: 'acme', scope: 'admin' })
        .setProtectedHeader({ alg: 'HS256' })
        .setExpirationTime(now() + 60)
        .sign(new TextEncoder().encode(secret));
      await expectRefused(await createJwtVerifier({ publicKey: pem }), token);
      await expectRefused(await createJwtVerifier({ publicKey: jwkText }), token);
      await expectRefused(await createJwtVerifier({ publicKey: pem, algorithms: ['RS256'] }), token);
    }
  });

  it('one without an expiry', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    await expectRefused(verify, await sign({}, { exp: false }));
  });

  it('one without a subject', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    await expectRefused(verify, await sign({ sub: undefined }));
  });

  it('the wrong issuer or audience', async () => {
    const verify = await createJwtVerifier({
      publicKey: pairs.RS256.pem,
      issuer: 'https://id.example',
      audience: 'annals',
    });
    expect((await verify(await sign({ iss: 'https://id.example', aud: 'annals' }))).name).toBe('alice');
    expect((await verify(await sign({ iss: 'https://id.example', aud: ['other', 'annals'] }))).name).toBe('alice');
    await expectRefused(verify, await sign({ iss: 'https://evil.example', aud: 'annals' }));
    await expectRefused(verify, await sign({ iss: 'https://id.example', aud: 'other' }));
    await expectRefused(verify, await sign({ aud: 'annals' }));
    await expectRefused(verify, await sign({ iss: 'https://id.example' }));
  });

  it('a tenant that is not a tenant name', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem, defaultTenant: 'fallback' });
    for (const tenant of ["a'; drop table x; --", 'Acme', '1acme', '', 'a'.repeat(41), 'acme-x', 42, ['acme']]) {
      await expectRefused(verify, await sign({ tenant }));
    }
    expect((await verify(await sign({ tenant: `a${'b'.repeat(39)}` }))).tenant).toHaveLength(40);
  });

  it('claims of the wrong type', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    for (const claims of [
      { sub: 12 },
      { sub: '' },
      { scope: 7 },
      { scope: { read: true } },
      { scope: ['read', 3] },
      { categories: 'order' },
      { categories: ['order', 1] },
      { act_as: 'true' },
      { act_as: 1 },
      { sub: 'x'.repeat(257) },
    ]) {
      await expectRefused(verify, await sign(claims as JWTPayload));
    }
    const actor = await createJwtVerifier({ publicKey: pairs.RS256.pem, claims: { actor: 'who' } });
    await expectRefused(actor, await sign({ who: 5 }));
    await expectRefused(actor, await sign({ who: '' }));
    await expectRefused(actor, await sign({ who: 'y'.repeat(257) }));
    expect((await actor(await sign({ who: 'y'.repeat(256) }))).actor).toHaveLength(256);
  });
});

describe('scopes and tenants', () => {
  it('scopes as a space-separated string or as an array', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    expect([...(await verify(await sign({ scope: 'append  subscribe' }))).scopes]).toEqual(['append', 'subscribe']);
    expect([...(await verify(await sign({ scope: ['admin', 'read'] }))).scopes]).toEqual(['read', 'admin']);
  });

  it('unknown scopes are dropped', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    const principal = await verify(await sign({ scope: 'openid read profile ADMIN write' }));
    expect([...principal.scopes]).toEqual(['read']);
  });

  it('no known scope: refused', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    await expectRefused(verify, await sign({ scope: 'openid profile' }));
    await expectRefused(verify, await sign({ scope: [] }));
    await expectRefused(verify, await sign({ scope: '' }));
    await expectRefused(verify, await sign({ scope: undefined }));
  });

  it('defaultTenant when the token has none; refused without one', async () => {
    const withDefault = await createJwtVerifier({ publicKey: pairs.RS256.pem, defaultTenant: 'main' });
    expect((await withDefault(await sign({ tenant: undefined }))).tenant).toBe('main');
    expect((await withDefault(await sign({ tenant: 'acme' }))).tenant).toBe('acme');
    const without = await createJwtVerifier({ publicKey: pairs.RS256.pem });
    await expectRefused(without, await sign({ tenant: undefined }));
  });
});

describe('options', () => {
  it('refuses both or neither key source', async () => {
    await expect(createJwtVerifier({})).rejects.toThrow('JWT: give exactly one of publicKey and jwksFile');
    await expect(createJwtVerifier({ publicKey: pairs.RS256.pem, jwksFile: join(dir, 'x.json') })).rejects.toThrow(
      'JWT: give exactly one of publicKey and jwksFile',
    );
  });

  it("refuses HS algorithms and 'none'", async () => {
    for (const algorithms of [['HS256'], ['RS256', 'HS512'], ['none'], []]) {
      const error = await createJwtVerifier({ publicKey: pairs.RS256.pem, algorithms }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error).not.toBeInstanceOf(AuthenticationError);
      expect((error as Error).message).toMatch(/^JWT: algorithm/);
    }
  });

  it('refuses a key that is not a public key', async () => {
    await expect(createJwtVerifier({ publicKey: 'not a key' })).rejects.toThrow(/not a public key for any/);
    await expect(createJwtVerifier({ publicKey: '{"kty":' })).rejects.toThrow(/neither a PEM/);
    await expect(createJwtVerifier({ publicKey: '{"kty":"oct","k":"c2VjcmV0"}' })).rejects.toThrow(/must be a public/);
    // An EC key with only RSA accepted.
    await expect(createJwtVerifier({ publicKey: pairs.ES256.pem, algorithms: ['RS256'] })).rejects.toThrow(
      /not a public key for any/,
    );
  });

  it('refuses a bad defaultTenant or clock tolerance', async () => {
    await expect(createJwtVerifier({ publicKey: pairs.RS256.pem, defaultTenant: 'No' })).rejects.toThrow(
      /defaultTenant/,
    );
    await expect(createJwtVerifier({ publicKey: pairs.RS256.pem, clockToleranceSeconds: -1 })).rejects.toThrow(
      /clockToleranceSeconds/,
    );
  });
});

describe('fuzz', () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/);
  const jsonSegment = fc.jsonValue().map((v) => base64url.encode(JSON.stringify(v)));
  const header = fc
    .constantFrom('RS256', 'ES256', 'EdDSA', 'none', 'HS256', 'rs256', '')
    .map((alg) => base64url.encode(JSON.stringify({ alg, typ: 'JWT' })));
  const token = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'grapheme', maxLength: 100 }),
    fc.tuple(segment, segment, segment).map((parts) => parts.join('.')),
    fc.tuple(header, jsonSegment, segment).map((parts) => parts.join('.')),
    fc.array(fc.oneof(segment, jsonSegment), { maxLength: 6 }).map((parts) => parts.join('.')),
  );

  it('200 random strings: every one an AuthenticationError, nothing else', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.RS256.pem, defaultTenant: 'main' });
    let count = 0;
    await fc.assert(
      fc.asyncProperty(token, async (text) => {
        count++;
        const error = await verify(text).then(
          () => 'accepted',
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(AuthenticationError);
      }),
      { numRuns: 200, seed: 20_260_512 },
    );
    expect(count).toBeGreaterThanOrEqual(200);
  });

  it('signed tokens with random claims: a principal or an AuthenticationError, nothing else', async () => {
    const verify = await createJwtVerifier({ publicKey: pairs.EdDSA.pem });
    // Each claim: a good value or any JSON at all, so that both answers come up.
    const either = (good: fc.Arbitrary<unknown>) => fc.oneof({ weight: 3, arbitrary: good }, fc.jsonValue());
    const claims = fc.record(
      {
        sub: either(fc.string({ minLength: 1, maxLength: 20 })),
        tenant: either(fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/)),
        scope: either(fc.subarray(['read', 'append', 'openid', 'admin'], { minLength: 1 })),
        categories: either(fc.array(fc.string())),
        act_as: either(fc.boolean()),
      },
      { requiredKeys: [] },
    );
    const answers = { principal: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(claims, async (c) => {
        const result = await verify(await sign(c as JWTPayload, { alg: 'EdDSA' })).then(
          (p) => p,
          (e: unknown) => e,
        );
        if (result instanceof Error) {
          expect(result).toBeInstanceOf(AuthenticationError);
          answers.refused++;
        } else {
          expect((result as Principal).id).toBe(`jwt:${(result as Principal).tenant}:${c.sub ?? 'alice'}`);
          answers.principal++;
        }
      }),
      { numRuns: 100, seed: 20_260_512 },
    );
    expect(answers.principal).toBeGreaterThan(0);
    expect(answers.refused).toBeGreaterThan(0);
  });
});
