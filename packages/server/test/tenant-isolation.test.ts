/**
 * Tenants over the server, on a real socket: one server, logged in as the NOINHERIT server
 * role, serving tenants `a` and `b` (each a schema and roles of its own). A request reaches
 * its key's tenant and nothing else: with A's key every route answers A's data only, whatever
 * ids of B (stream ids, event ids, correlation ids, positions) or SQL-injection strings it is
 * given; B's events never reach A's live stream; a key of a tenant that does not exist is
 * refused. Every string only B has carries B's marker, so a leak anywhere shows as the marker.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createTenant,
  createTenantClients,
  type SqlClient,
  type TenancyOptions,
  type TenantClients,
  tenantNames,
} from '@annals/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseUrl, postgresBackend } from '../../core/test/support/backends.js';
import { routePolicies } from '../src/auth/route-policy.js';
import { createApiKey, type RunningServer, setupApiKeys, startServer } from '../src/index.js';
import { dropTenantFixture, urlAs } from './tenant-support.js';

const tag = randomBytes(4).toString('hex');
const options: TenancyOptions = { directory: `ctl_${tag}`, schemaPrefix: `t${tag}_`, serverRole: `srv_${tag}` };
const directory = options.directory as string;
const serverRole = options.serverRole as string;
const marker = `B-SECRET-${tag}`;

interface Reply {
  status: number;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read response bodies of every shape.
  body: any;
}

const injections = [
  `x'; select * from "t${tag}_b".events; --`,
  `' or '1'='1`,
  `account-1' union select * from "t${tag}_b".events --`,
  `"t${tag}_b".events`,
  `x"; reset role; select * from "t${tag}_b".events; --`,
  `1; drop table "t${tag}_b".events`,
  `%27%20or%201%3D1--`,
  `../../../etc/passwd`,
  `${'a'.repeat(900)}'--`,
];

describe.skipIf(!databaseUrl)('tenants isolated over the server', () => {
  let admin: SqlClient;
  let clients: TenantClients;
  let server: RunningServer;
  const keys: Record<'a' | 'b' | 'ghost', string> = { a: '', b: '', ghost: '' };
  let betaKeyId = '';
  const betaIds = { events: [] as string[], streams: [`bonly_${marker}-1`, `bonly-${marker}`, `bwrite-${tag}`] };
  const betaCorrelation = `${marker}-corr`;
  const betaSubject = `${marker}-subject`;
  const alphaCorrelation = `a-corr-${tag}`;
  const alphaPositions: number[] = [];

  const call = async (key: string, method: string, path: string, body?: unknown): Promise<Reply> => {
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {}
    return { status: response.status, text, body: parsed };
  };
  const asA = (method: string, path: string, body?: unknown) => call(keys.a, method, path, body);
  const asB = (method: string, path: string, body?: unknown) => call(keys.b, method, path, body);

  /**
   * Nothing only B has shows in `text`, once what A itself sent (a B stream id A asked for,
   * echoed in a 404's detail or `instance`) is taken out: those are A's words, not B's data.
   */
  const assertNoLeak = (text: string, what: string, sent: string[] = []) => {
    let rest = text;
    const forms = sent.flatMap((value) => [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]);
    for (const form of forms.sort((x, y) => y.length - x.length)) rest = rest.split(form).join('<sent>');
    expect(rest, what).not.toContain(marker);
    for (const id of betaIds.events) expect(rest, `${what}: B's event id ${id}`).not.toContain(id);
  };
  /** What a request of A sent: the decoded segments and query values of its path, the strings of its body. */
  const sentIn = (path: string, body?: unknown): string[] => {
    const url = new URL(path, 'http://x');
    const strings = url.pathname.split('/').map((p) => decodeURIComponent(p));
    strings.push(url.pathname, path, ...url.searchParams.values());
    const walk = (value: unknown): void => {
      if (typeof value === 'string') strings.push(value);
      else if (value && typeof value === 'object') for (const v of Object.values(value)) walk(v);
    };
    walk(body);
    return strings.filter((s) => s.length > 0);
  };

  const betaCount = async () => {
    const [row] = await admin.query<{ n: string }>(
      `select count(*) as n from "${tenantNames('b', options).schema}".events`,
    );
    return Number(row?.n);
  };

  beforeAll(async () => {
    admin = postgresBackend.client();
    const t0 = Date.now();
    await createTenant(admin, 'a', options);
    await createTenant(admin, 'b', options);
    await setupApiKeys(admin, { directory, serverRoles: [serverRole] });
    const scopes = ['read', 'append', 'subscribe', 'admin'] as const;
    keys.a = (await createApiKey(admin, { name: 'a-admin', tenant: 'a', scopes: [...scopes] }, { directory })).secret;
    const betaKey = await createApiKey(
      admin,
      { name: `${marker}-key`, tenant: 'b', scopes: [...scopes], actor: `${marker}-actor` },
      { directory },
    );
    keys.b = betaKey.secret;
    betaKeyId = betaKey.id;
    keys.ghost = (
      await createApiKey(admin, { name: 'ghost', tenant: 'ghost', scopes: [...scopes] }, { directory })
    ).secret;
    clients = createTenantClients({ connectionString: urlAs(serverRole), maxConnections: 8, ...options });
    server = await startServer({
      client: clients.control,
      tenants: { clients, options },
      auth: { directory },
      port: 0,
    });
    console.log(`[tenant-isolation] tenants, keys and server up in ${Date.now() - t0} ms`);

    // B first, more events than A, so B's positions go beyond A's head.
    for (const streamId of ['account-1', ...betaIds.streams]) {
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      betaIds.events.push(...ids);
      const appended = await asB('POST', `/streams/${encodeURIComponent(streamId)}/events`, {
        events: ids.map((id, i) => ({
          id,
          type: i === 0 ? `Opened_${marker}` : 'Deposited',
          data: { owner: marker, amount: 100 + i, note: `${marker} data` },
          metadata: { correlationId: betaCorrelation, subject: betaSubject, secret: marker },
        })),
      });
      expect(appended.status, appended.text).toBe(201);
    }
    const appended = await asA('POST', '/streams/account-1/events', {
      events: [
        { type: 'Opened', data: { owner: 'alice' }, metadata: { correlationId: alphaCorrelation } },
        { type: 'Deposited', data: { amount: 5 }, metadata: { correlationId: alphaCorrelation } },
      ],
    });
    expect(appended.status, appended.text).toBe(201);
    alphaPositions.push(...appended.body.positions);
    expect(alphaPositions).toEqual([1, 2]);
  });

  afterAll(async () => {
    await server?.close().catch(() => {});
    await clients?.close().catch(() => {});
    if (!admin) return;
    await dropTenantFixture(admin, options, ['a', 'b']);
  });

  it('B sees its own data under the same stream id (the marker check is live)', async () => {
    const own = await asB('GET', '/streams/account-1/events');
    expect(own.status).toBe(200);
    expect(own.text).toContain(marker);
    expect(own.body.events.map((e: { id: string }) => e.id)).toEqual(betaIds.events.slice(0, 3));
    const position = await asB('GET', '/position');
    expect(position.body).toEqual({ position: betaIds.events.length, head: betaIds.events.length });
  });

  it('with A’s key, every route of route-policy.ts answers A’s data only', async () => {
    const e = encodeURIComponent;
    // A's writes name a B-only stream without the marker: they land in A's own log (as $lifecycle
    // events naming the stream), which the later checks of A's whole log must be able to read.
    const bStream = betaIds.streams[2] as string;
    const gets = [
      '/streams',
      '/streams?limit=1000',
      `/streams?category=${e(bStream.split('-')[0] as string)}`,
      '/streams/account-1',
      ...betaIds.streams.map((s) => `/streams/${e(s)}`),
      '/streams/account-1/events',
      '/streams/account-1/events?direction=backward',
      ...betaIds.streams.map((s) => `/streams/${e(s)}/events`),
      '/events',
      '/events?after=0&limit=100',
      '/events?after=2',
      ...betaIds.streams.map((s) => `/events?stream=${e(s)}`),
      `/events?category=bonly`,
      ...betaIds.events.map((id) => `/events/${id}`),
      '/position',
      `/position?time=${e(new Date().toISOString())}`,
      '/seals',
      '/checkpoints',
      `/audit/actors/${e(`${marker}-actor`)}`,
      '/audit/actors/key%3Aa-admin',
      `/audit/correlations/${e(betaCorrelation)}`,
      `/audit/correlations/${e(alphaCorrelation)}`,
      '/audit/range',
      '/audit/range?category=bonly',
      `/audit/subjects/${e(betaSubject)}`,
      '/changes?from=0&to=100',
      `/changes?from=2000-01-01T00:00:00Z&to=${e(new Date(Date.now() + 60_000).toISOString())}`,
      '/streams/account-1/history',
      '/streams/account-1/state',
      '/streams/account-1/state?position=9',
      '/streams/account-1/state?version=3',
      '/streams/account-1/replay',
      '/deciders',
      ...betaIds.streams.flatMap((s) => [
        `/streams/${e(s)}/history`,
        `/streams/${e(s)}/state`,
        `/streams/${e(s)}/replay`,
      ]),
      '/subscriptions/anything/parked',
      '/projections',
      '/projections/anything/rebuild',
      '/log/holders',
      '/keys',
    ];
    const covered = new Set<string>();
    const responses: Record<string, { status: number; text: string }> = {};
    for (const path of gets) {
      const response = await asA('GET', path);
      responses[path] = response;
      expect(response.status, `${path}: ${response.text}`).toBeLessThan(500);
      assertNoLeak(response.text, `GET ${path}`, sentIn(path));
    }
    // A's own data is there, with A's positions.
    const all = JSON.parse(responses['/events']?.text as string);
    expect(all.events.map((ev: { position: number }) => ev.position)).toEqual([1, 2]);
    expect(all.events.every((ev: { streamId: string }) => ev.streamId === 'account-1')).toBe(true);
    expect(JSON.parse(responses['/streams/account-1']?.text as string).version).toBe(2);
    expect(responses['/events?after=2']?.text).toContain('"events":[]');
    for (const id of betaIds.events) expect(responses[`/events/${id}`]?.status).toBe(404);
    for (const s of betaIds.streams) {
      const info = responses[`/streams/${e(s)}`];
      expect([200, 404]).toContain(info?.status);
      if (info?.status === 200) expect(JSON.parse(info.text).exists).toBe(false);
    }
    const position = JSON.parse(responses['/position']?.text as string);
    expect(position).toEqual({ position: 2, head: 2 });
    expect(JSON.parse(responses['/seals']?.text as string).head).toBe(2);
    expect(JSON.parse(responses[`/audit/correlations/${e(alphaCorrelation)}`]?.text as string).roots).toHaveLength(2);
    expect(responses[`/audit/correlations/${e(betaCorrelation)}`]?.text).toBe('{"roots":[]}');
    for (const path of gets) covered.add(`GET ${path.split('?')[0]}`);

    // Writes and admin routes aimed at B's streams: answered from A's store, B unchanged.
    const before = await betaCount();
    const writes: [string, string, unknown?][] = [
      ['POST', '/verify', {}],
      ['POST', '/verify', { streamId: bStream }],
      ['POST', '/streams/account-1/events', { events: [{ type: 'Deposited', data: { amount: 1 } }] }],
      [
        'POST',
        '/appends',
        { writes: [{ streamId: 'account-1', events: [{ type: 'Deposited', data: { amount: 2 } }] }] },
      ],
      ['POST', `/commands/account/${e(bStream)}`, { type: 'Deposit', data: { amount: 1 } }],
      ['PUT', `/streams/${e(bStream)}/metadata`, { metadata: { owner: 'a' } }],
      ['DELETE', `/streams/${e(bStream)}?reason=test`],
      ['POST', `/streams/${e(bStream)}/archive`, { reason: 'test' }],
      ['POST', `/streams/${e(bStream)}/unarchive`, { reason: 'test' }],
      ['PUT', `/streams/${e(bStream)}/retention`, { reason: 'test', maxCount: 1 }],
      ['POST', `/subjects/${e(betaSubject)}/forget`, { reason: 'test' }],
      ['POST', '/subscriptions/anything/parked/replay'],
      ['POST', '/projections/anything/rebuild'],
      ['POST', '/keys', { name: 'from-a', scopes: ['read'], tenant: 'b' }],
      ['DELETE', '/keys/0123456789abcdef'],
      ['DELETE', `/keys/${betaKeyId}`],
    ];
    for (const [method, path, body] of writes) {
      const response = await asA(method, path, body);
      expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(500);
      assertNoLeak(response.text, `${method} ${path}`, sentIn(path, body));
      covered.add(`${method} ${path.split('?')[0]}`);
    }
    expect(await betaCount()).toBe(before);
    // Keys: A made none for B, and B's key A tried to revoke still works.
    const keyRows = await admin.query<{ tenant: string }>(
      `select tenant from "${directory}".api_keys where name = 'from-a'`,
    );
    expect(keyRows.every((row) => row.tenant === 'a')).toBe(true);
    const [betaKeyRow] = await admin.query<{ revoked_at: Date | null }>(
      `select revoked_at from "${directory}".api_keys where id = $1`,
      [betaKeyId],
    );
    expect(betaKeyRow?.revoked_at).toBeNull();
    expect((await asB('GET', '/position')).status).toBe(200);
    // B's streams as B sees them: untouched (not deleted, archived, truncated).
    for (const s of betaIds.streams) {
      const info = await asB('GET', `/streams/${e(s)}`);
      expect(info.body).toMatchObject({ version: 3, exists: true, state: 'active', truncateBefore: 0 });
      expect((await asB('GET', `/streams/${e(s)}/events`)).body.events).toHaveLength(3);
    }
    // B's events still read in full, data and metadata (nothing forgotten, nothing redacted).
    const bAll = await asB('GET', '/events?limit=10000');
    expect(bAll.body.events.filter((ev: { id: string }) => betaIds.events.includes(ev.id))).toHaveLength(
      betaIds.events.length,
    );
    expect(bAll.body.events.every((ev: { redacted?: unknown }) => ev.redacted === undefined)).toBe(true);

    // Every route of the policy table was called (the two SSE routes in the next test).
    const templates = Object.keys(routePolicies).filter((r) => !r.endsWith('subscribe'));
    const asTemplate = (route: string) => {
      const [method, path] = route.split(' ') as [string, string];
      const parts = path.split('/');
      return templates.find((t) => {
        const [tm, tp] = t.split(' ') as [string, string];
        const tparts = tp.split('/');
        return (
          tm === method && tparts.length === parts.length && tparts.every((p, i) => p.startsWith(':') || p === parts[i])
        );
      });
    };
    const hit = new Set([...covered].map(asTemplate).filter(Boolean));
    expect(templates.filter((t) => !hit.has(t))).toEqual([]);
  });

  it('A’s live streams (/subscribe) receive none of B’s events while B appends', async () => {
    const follow = async (path: string) => {
      const controller = new AbortController();
      const response = await fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${keys.a}`, accept: 'text/event-stream' },
        signal: controller.signal,
      });
      expect(response.status).toBe(200);
      let text = '';
      const reading = (async () => {
        const decoder = new TextDecoder();
        try {
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            text += decoder.decode(chunk, { stream: true });
          }
        } catch {}
      })();
      return {
        stop: async () => {
          controller.abort();
          await reading;
          return text;
        },
      };
    };
    const global = await follow('/subscribe?after=0');
    const one = await follow('/streams/account-1/subscribe?after=0');
    const bOnly = await follow(`/streams/${encodeURIComponent(betaIds.streams[0] as string)}/subscribe`);
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 1000) {
      const r = await asB('POST', '/streams/account-1/events', {
        events: [{ type: 'Deposited', data: { marker, n: n++ }, metadata: { correlationId: betaCorrelation } }],
      });
      expect(r.status).toBe(201);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // And one event of A's own, which the live streams must show.
    const own = await asA('POST', '/streams/account-1/events', { events: [{ type: 'Live', data: { from: 'a' } }] });
    expect(own.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [globalText, oneText, bOnlyText] = await Promise.all([global.stop(), one.stop(), bOnly.stop()]);
    assertNoLeak(globalText, '/subscribe');
    assertNoLeak(oneText, '/streams/account-1/subscribe');
    assertNoLeak(bOnlyText, 'B-only stream subscribe');
    expect(globalText).toContain('"type":"Live"');
    expect(oneText).toContain('"type":"Live"');
    expect(n).toBeGreaterThan(5);
  });

  it('SQL-injection strings in every path and query parameter: never 5xx, never B’s data', async () => {
    const before = await betaCount();
    const e = encodeURIComponent;
    for (const evil of injections) {
      const x = e(evil);
      const paths: [string, string, unknown?][] = [
        ['GET', `/streams/${x}`],
        ['GET', `/streams/${x}/events`],
        ['GET', `/streams?category=${x}&after=${x}`],
        ['GET', `/events?stream=${x}&category=${x}&type=${x}`],
        ['GET', `/events/${x}`],
        ['GET', `/events?after=${x}`],
        ['GET', `/position?time=${x}`],
        ['GET', `/audit/actors/${x}?from=${x}`],
        ['GET', `/audit/actors/${x}`],
        ['GET', `/audit/correlations/${x}`],
        ['GET', `/audit/range?category=${x}&type=${x}`],
        ['GET', `/audit/range?from=${x}`],
        ['GET', `/audit/subjects/${x}`],
        ['GET', `/changes?from=${x}&to=${x}`],
        ['GET', `/changes?from=0&to=10&category=${x}&decider=${x}`],
        ['GET', `/streams/${x}/history?fromVersion=${x}`],
        ['GET', `/streams/${x}/history`],
        ['GET', `/streams/${x}/state?time=${x}`],
        ['GET', `/streams/${x}/state?decider=${x}`],
        ['GET', `/streams/${x}/state`],
        ['GET', `/streams/${x}/replay?decider=${x}`],
        ['GET', `/streams/${x}/replay`],
        ['GET', `/subscriptions/${x}/parked`],
        ['GET', `/subscribe?after=${x}`],
        ['GET', `/streams/${x}/subscribe?after=${x}`],
        ['POST', '/verify', { streamId: evil }],
        ['POST', `/subscriptions/${x}/parked/replay`],
        ['GET', `/projections/${x}/rebuild`],
        ['POST', `/projections/${x}/rebuild`],
        ['POST', `/commands/${x}/${x}`, { type: evil, data: {} }],
        ['PUT', `/streams/${x}/metadata`, { metadata: { evil } }],
        ['DELETE', `/streams/${x}?reason=${x}`],
        ['POST', `/streams/${x}/archive`, { reason: evil }],
        ['PUT', `/streams/${x}/retention`, { reason: evil, maxCount: 1 }],
        ['POST', `/subjects/${x}/forget`, { reason: evil }],
        ['DELETE', `/keys/${x}`],
        [
          'POST',
          `/streams/${x}/events`,
          { events: [{ type: 'Evil', data: { evil }, metadata: { correlationId: evil } }] },
        ],
      ];
      for (const [method, path, body] of paths) {
        const response = await asA(method, path, body);
        expect(response.status, `${method} ${path}: ${response.text.slice(0, 300)}`).toBeLessThan(500);
        assertNoLeak(response.text, `${method} ${path}`, sentIn(path, body));
      }
    }
    expect(await betaCount()).toBe(before);
    const all = await asA('GET', '/events?limit=10000');
    assertNoLeak(all.text, 'A’s whole log after the injections');
  });

  it('a key of a tenant that does not exist is refused (401)', async () => {
    for (const path of ['/events', '/position', '/streams/account-1', `/streams/${betaIds.streams[0]}/events`]) {
      const response = await call(keys.ghost, 'GET', path);
      expect(response.status, response.text).toBe(401);
      assertNoLeak(response.text, `ghost ${path}`, sentIn(path));
    }
    const post = await call(keys.ghost, 'POST', '/streams/account-1/events', { events: [{ type: 'X', data: {} }] });
    expect(post.status).toBe(401);
    const garbage = await call(`ank_0123456789abcdef_${'x'.repeat(43)}`, 'GET', '/events');
    expect(garbage.status).toBe(401);
  });

  it('100 appends each by A and B at once: each log dense, its own events only', async () => {
    const head = async (key: string) => (await call(key, 'GET', '/events?limit=10000')).body.events.length as number;
    const [aBefore, bBefore] = [await head(keys.a), await head(keys.b)];
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const mine = i % 2 === 0 ? 'a' : 'b';
        return call(keys[mine], 'POST', `/streams/account-${i % 5}/events`, {
          events: [{ type: 'Concurrent', data: { tenant: mine, i, ...(mine === 'b' ? { marker } : {}) } }],
        });
      }),
    );
    console.log(`[tenant-isolation] 200 concurrent appends over HTTP in ${Date.now() - t0} ms`);
    for (const r of results) expect(r.status, r.text).toBe(201);
    for (const [key, tenant, before] of [
      [keys.a, 'a', aBefore],
      [keys.b, 'b', bBefore],
    ] as const) {
      const events = (await call(key, 'GET', '/events?limit=10000')).body.events as {
        position: number;
        type: string;
        data: { tenant?: string };
      }[];
      expect(events.map((ev) => ev.position)).toEqual(Array.from({ length: before + 100 }, (_, k) => k + 1));
      const concurrent = events.filter((ev) => ev.type === 'Concurrent');
      expect(concurrent).toHaveLength(100);
      expect(concurrent.every((ev) => ev.data.tenant === tenant)).toBe(true);
    }
    assertNoLeak((await asA('GET', '/events?limit=10000')).text, 'A’s log after concurrent appends');
  });
});
