/**
 * API keys over HTTP, for an `admin` of a tenant: list, create and revoke the keys of its own
 * tenant (never another's: the tenant is the caller's, not a parameter). A new key's secret is
 * in the creation's answer only. Served only with authentication on.
 */
import type { SqlClient } from '@annals/core';
import { Type } from 'typebox';
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Scope } from '../auth/principal.js';
import { HttpProblem, problem } from '../problems.js';
import type { Api } from '../route-kit.js';
import { problemResponses, Timestamp } from '../schemas.js';

const ScopeSchema = Type.Union([
  Type.Literal('read'),
  Type.Literal('append'),
  Type.Literal('subscribe'),
  Type.Literal('admin'),
]);

const KeySchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  tenant: Type.String(),
  scopes: Type.Array(ScopeSchema),
  categories: Type.Union([Type.Array(Type.String()), Type.Null()]),
  actor: Type.String(),
  actAs: Type.Boolean(),
  createdAt: Timestamp,
  expiresAt: Type.Union([Timestamp, Type.Null()]),
  revokedAt: Type.Union([Timestamp, Type.Null()]),
});

export function keyRoutes(
  api: Api,
  keys: { client: SqlClient; directory?: string },
  auth: Pick<Authenticator, 'revoked'>,
): void {
  const options = { directory: keys.directory };
  api.get(
    '/keys',
    {
      schema: {
        summary: "The API keys of the caller's tenant (never their secrets)",
        tags: ['keys'],
        response: { 200: Type.Object({ keys: Type.Array(KeySchema) }), ...problemResponses },
      },
    },
    async (request) => ({ keys: await listApiKeys(keys.client, request.principal.tenant, options) }),
  );

  api.post(
    '/keys',
    {
      schema: {
        summary: "Create an API key of the caller's tenant; its secret is in this answer only",
        tags: ['keys'],
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 128 }),
            scopes: Type.Array(ScopeSchema, { minItems: 1, maxItems: 4 }),
            categories: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1 })),
            actor: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
            actAs: Type.Optional(Type.Boolean()),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([KeySchema, Type.Object({ secret: Type.String() })]), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { expiresAt, ...rest } = request.body;
      // A key may not hand out more than it holds: naming an actor, or acting for others, takes
      // a key that may act for others; and the new key ends no later than the one creating it.
      const creator = request.principal;
      if ((rest.actAs || rest.actor !== undefined) && !creator.actAs) {
        throw new HttpProblem(
          problem(403, 'FORBIDDEN', 'only a key that may act for others can create one with an actor of its choosing'),
        );
      }
      const asked = expiresAt === undefined ? undefined : new Date(expiresAt);
      if (creator.expiresAt && (asked === undefined || asked > creator.expiresAt)) {
        throw new HttpProblem(
          problem(403, 'FORBIDDEN', `a key made by this one must expire by ${creator.expiresAt.toISOString()}`, {
            field: 'body.expiresAt',
          }),
        );
      }
      const key = await createApiKey(
        keys.client,
        {
          ...rest,
          scopes: rest.scopes as Scope[],
          tenant: request.principal.tenant,
          expiresAt: asked,
        },
        options,
      );
      return reply.code(201).send(key);
    },
  );

  api.delete(
    '/keys/:keyId',
    {
      schema: {
        summary: 'Revoke a key of the caller’s tenant: every server refuses it at once, its live connections end',
        tags: ['keys'],
        params: Type.Object({ keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }) }),
        response: { 200: Type.Object({ id: Type.String(), revoked: Type.Boolean() }), ...problemResponses },
      },
    },
    async (request) => {
      const revoked = await revokeApiKey(keys.client, request.params.keyId, request.principal.tenant, options);
      // Another tenant's key, or none: the same answer, so ids of other tenants say nothing.
      if (!revoked) throw new HttpProblem(problem(404, 'KEY_NOT_FOUND', 'no active key has that id here'));
      auth.revoked(request.params.keyId);
      return { id: request.params.keyId, revoked };
    },
  );
}
