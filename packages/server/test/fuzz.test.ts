/**
 * No input may produce a 5xx. Random methods, paths (every route's pattern with hostile
 * segments), query strings, headers and bodies go to a real server over a real socket, on
 * each backend. For every answer: the status is below 500; a 4xx is
 * `application/problem+json` whose `status` is the HTTP status and which has a `code`; a
 * refused request leaves the log as it was (its head and last event); and the process still
 * answers `/health/live` after each batch. SSE routes that accept a request are aborted at
 * once: only their status and headers are checked.
 *
 * The seed is fixed; `ANNALS_FUZZ_RUNS=5000` runs many more batches (and `ANNALS_FUZZ_SEED`
 * another seed).
 */
import {
  type Decider,
  DomainError,
  type DomainEvent,
  type EventStore,
  openEventStore,
  type RecordedEvent,
} from '@annals/core';
import fc from 'fast-check';
import { Client, Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from './support.js';

const runs = Number(process.env.ANNALS_FUZZ_RUNS ?? 400);
const seed = Number(process.env.ANNALS_FUZZ_SEED ?? 20_260_512);

/** A small decider that checks its input (and folds any stored event) the way an application's should. */
type CounterCommand = { type: string; data: unknown };
type CounterEvent = DomainEvent & { type: 'Incremented'; data: { by: number } };
const counter: Decider<CounterCommand, CounterEvent, { total: number }> = {
  initialState: () => ({ total: 0 }),
  decide(command) {
    const by = (command.data as { by?: unknown } | null)?.by;
    if (command.type !== 'Increment') throw new DomainError('unknown-command', 'only Increment');
    if (!Number.isSafeInteger(by) || (by as number) <= 0) throw new DomainError('invalid-amount', 'by: 1 or more');
    return { type: 'Incremented', data: { by: by as number } };
  },
  // The log holds whatever the fuzz appended to these streams: fold only what is a count.
  evolve: (state, event) => {
    const by = (event.data as { by?: unknown } | null)?.by;
    return { total: state.total + (event.type === 'Incremented' && Number.isSafeInteger(by) ? (by as number) : 0) };
  },
};

// --- what a request is made of ------------------------------------------------------------

const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH'];

/** Characters undici sends as they are in a path; everything else is percent-encoded. */
const rawSafe = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;
/** Percent-encodes `text` as UTF-8, leaving some safe characters raw (or none, with `all`). */
function encode(text: string, all = false): string {
  let out = '';
  for (const char of text) {
    if (!all && rawSafe.test(char)) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  }
  return out;
}

const hostileText = fc.constantFrom(
  '',
  ' ',
  '..',
  '.',
  '../../etc/passwd',
  "'; drop table events; --",
  '" or 1=1 --',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection string, sent as it is.
  '${jndi:ldap://x/a}',
  '<script>alert(1)</script>',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'NaN',
  '-1',
  '1e309',
  'null',
  '\u0000',
  '\u202e\u200b\ufeff',
  '😀'.repeat(50),
  'a\r\nb',
  '\\x00',
);

/** The n-th of `list` (modulo its length): a choice the seed decides among values known only at run time. */
const pick = (list: string[], n: number) => list[n % list.length] as string;

/** One path segment, already as it goes on the wire. */
function segmentOf(known: () => string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.nat().map((n) => pick(known(), n)) },
    { weight: 6, arbitrary: fc.constantFrom('fuzz-1', 'fuzz-2', 'account-1', 'x', 'counter', 'fuzz', 'c-1') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '',
        '..',
        '%2e%2e',
        '%00',
        'a%00b',
        '%2F',
        'a%2Fb',
        '%2f..%2f',
        '%ZZ',
        '%',
        '%E0%A4%A',
        '%C0%AE',
        '%FF',
        '%F0%9F%98%80',
        '%EF%BB%BF',
        '%20',
        '+',
      ),
    },
    { weight: 2, arbitrary: hostileText.map((text) => encode(text)) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((text) => encode(text)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map((text) => encode(text, true)) },
    { weight: 1, arbitrary: fc.integer({ min: 900, max: 6000 }).map((n) => 'x'.repeat(n)) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 1200 }).map((n) => '%F0%9F%98%80'.repeat(n)) },
  );
}

const numberText = fc.oneof(
  fc.constantFrom(
    '0',
    '1',
    '-1',
    '1.5',
    '-0',
    '1e3',
    '1e309',
    'NaN',
    'Infinity',
    '-Infinity',
    '0x10',
    '9007199254740991',
    '9007199254740993',
    '99999999999999999999999',
    '',
    ' 1',
    '1 ',
    'true',
    '[]',
    '{}',
  ),
  fc.integer().map(String),
  fc.double().map(String),
  fc.bigInt().map(String),
);

const queryValue = fc.oneof(
  numberText,
  fc.constantFrom('forward', 'backward', 'sideways', 'account', 'fuzz', 'fuzz-1', 'counter', 'Incremented'),
  fc.date({ noInvalidDate: false }).map((date) => (Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString())),
  fc.constantFrom('2026-13-45T99:99:99Z', '2026-01-01', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00.001Z'),
  hostileText,
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.integer({ min: 2000, max: 5000 }).map((n) => '9'.repeat(n)),
);

const queryKey = fc.oneof(
  fc.constantFrom(
    'after',
    'limit',
    'fromVersion',
    'toVersion',
    'direction',
    'category',
    'type',
    'stream',
    'version',
    'position',
    'time',
    'decider',
    'from',
    'to',
    '__proto__',
    'constructor',
    'limit[]',
    'after[0]',
    '',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

const hostileQuery = fc
  .array(
    fc.tuple(queryKey, queryValue, fc.boolean(), fc.boolean()).map(([key, value, bare, raw]) => {
      const k = encode(key, !raw);
      return bare ? k : `${k}=${raw ? encode(value) : encode(value, true)}`;
    }),
    { minLength: 1, maxLength: 6 },
  )
  .chain((pairs) => fc.constantFrom('&', '&&', ';').map((separator) => `?${pairs.join(separator)}`));
/** Known keys with values that are often right: these get past validation to the store. */
const plausibleQuery = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'after',
        'limit',
        'fromVersion',
        'toVersion',
        'direction',
        'category',
        'type',
        'stream',
        'version',
      ),
      fc.oneof(
        fc.constantFrom('0', '1', '2', '3', '10', '1000', 'forward', 'backward', 'fuzz', 'fuzz-1', 'Fuzzed'),
        fc.integer({ min: -2, max: 20 }).map(String),
      ),
    ),
    { minLength: 1, maxLength: 3 },
  )
  .map((pairs) => `?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`);
const timeQuery = fc
  .tuple(
    fc.constantFrom('time', 'from', 'to', 'position'),
    fc.oneof(
      fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01') }).map((date) => date.toISOString()),
      fc.nat(50).map(String),
    ),
  )
  .map(([key, value]) => `?${key}=${encodeURIComponent(value)}`);
const queryString = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: plausibleQuery },
  { weight: 1, arbitrary: timeQuery },
  { weight: 3, arbitrary: hostileQuery },
);

/** Printable ASCII: what a header value may hold. */
const headerText = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength });

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'application/json; charset=latin1',
  'application/json;;;',
  'application/problem+json',
  'application/merge-patch+json',
  'text/plain',
  'text/plain; charset=utf-8',
  'text/event-stream',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  '*/*',
  'json',
  '',
);

const headers = fc.record(
  {
    'content-type': fc.oneof(
      { weight: 8, arbitrary: fc.constant('application/json') },
      { weight: 3, arbitrary: contentType },
      { weight: 1, arbitrary: headerText(60) },
    ),
    'last-event-id': fc.oneof(numberText, headerText(40), fc.constantFrom('0', '1', '18446744073709551616')),
    traceparent: fc.oneof(
      headerText(80),
      fc.constantFrom(
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        '00-00000000000000000000000000000000-b7ad6b7169203331-01',
        '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01',
        'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331',
        `00-${'a'.repeat(2000)}`,
      ),
    ),
    accept: fc.constantFrom('*/*', 'application/json', 'text/event-stream', 'text/html', 'application/xml', ''),
    'x-padding': fc.integer({ min: 1000, max: 8000 }).map((n) => 'p'.repeat(n)),
  },
  { requiredKeys: [] },
);

// Bodies are JSON text, written by hand so they can hold what JSON.stringify never writes
// (1e309, 9007199254740993, duplicate keys, __proto__).
const jsonText = fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? 'null');
const wrongValue = fc.oneof(
  jsonText,
  fc.constantFrom(
    'null',
    'true',
    '-1',
    '1.5',
    '-0',
    '1e309',
    '-1e309',
    '9007199254740993',
    '""',
    '"x"',
    '[]',
    '{}',
    '[{}]',
    '"any"',
    '"no-stream"',
    '"stream-exists"',
    '"ANY"',
    '"1"',
    '{"__proto__":{"polluted":true}}',
  ),
  fc.integer({ min: 300, max: 2000 }).map((n) => JSON.stringify('t'.repeat(n))),
);
const object = (entries: [string, string][]) =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;
/** An object whose fields are each absent, right, or wrong; sometimes with an unknown field. */
function shaped(fields: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const keys = Object.keys(fields);
  return fc
    .tuple(
      ...keys.map((key) =>
        fc.oneof(
          { weight: 1, arbitrary: fc.constant(undefined) },
          { weight: 8, arbitrary: fields[key] as fc.Arbitrary<string> },
          { weight: 1, arbitrary: wrongValue },
        ),
      ),
      fc.option(fc.tuple(fc.constantFrom('extra', '__proto__', 'constructor', ''), wrongValue), { freq: 10 }),
    )
    .map((values) => {
      const extra = values.pop() as [string, string] | null;
      const entries = keys.flatMap((key, i) => (values[i] === undefined ? [] : [[key, values[i] as string]])) as [
        string,
        string,
      ][];
      if (extra) entries.push(extra);
      return object(entries);
    });
}
/** Nested arrays or objects, `depth` deep. */
const deep = fc
  .tuple(fc.integer({ min: 100, max: 200_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
  );
const huge = fc.constantFrom(1100 * 1024, 3 * 1024 * 1024, 4.5 * 1024 * 1024).map((n) => JSON.stringify('h'.repeat(n)));

/** The bodies to send to a route (by its OpenAPI pattern). */
function bodies(
  knownIds: () => string[],
): Record<'hostile' | 'nearlyRight', (pattern: string) => fc.Arbitrary<string | undefined>> {
  const uuid = fc.oneof(
    fc.noBias(fc.uuid()).map((id) => JSON.stringify(id)),
    fc.nat().map((n) => JSON.stringify(pick(knownIds(), n))),
    fc.constantFrom(
      '"not-a-uuid"',
      '""',
      '"00000000-0000-0000-0000-000000000000"',
      '"{0af76519-16cd-43dd-8448-eb211c80319c}"',
      '"0AF76519-16CD-43DD-8448-EB211C80319C"',
      '"0af7651916cd43dd8448eb211c80319c"',
      JSON.stringify('f'.repeat(5000)),
    ),
  );
  const type = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('"Fuzzed"', '"Incremented"', '"fuzz"') },
    { weight: 1, arbitrary: fc.constantFrom('""', '"a b"', '"\\u0000"', JSON.stringify('T'.repeat(300))) },
    { weight: 1, arbitrary: hostileText.map((text) => JSON.stringify(text)) },
  );
  const data = fc.oneof(
    { weight: 5, arbitrary: jsonText },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: huge },
  );
  const metadata = fc.oneof(
    jsonText,
    fc.constantFrom(
      '{"actor":"a","reason":"r"}',
      '{"correlationId":"c","causationId":"d"}',
      '{"traceparent":"x"}',
      '{"actor":{"x":1}}',
    ),
  );
  const event = shaped({ type, data, metadata, id: uuid });
  const events = fc.oneof(
    fc.array(event, { minLength: 0, maxLength: 4 }).map((list) => `[${list.join(',')}]`),
    wrongValue,
    fc.integer({ min: 1001, max: 5000 }).map((n) => `[${Array(n).fill('{"type":"T","data":1}').join(',')}]`),
  );
  const expectedVersion = fc.oneof(
    numberText.filter((text) => /^-?\d/.test(text)),
    wrongValue,
  );
  const append = shaped({ events, expectedVersion });
  const streamId = fc.oneof(
    fc.constantFrom('"fuzz-1"', '"fuzz-2"', '""', '"a/b"', JSON.stringify('s'.repeat(2000)), '"\\u0000"'),
    hostileText.map((text) => JSON.stringify(text)),
  );
  const writes = fc.oneof(
    fc.array(shaped({ streamId, events, expectedVersion }), { maxLength: 3 }).map((list) => `[${list.join(',')}]`),
    wrongValue,
  );
  const command = shaped({
    type: fc.oneof(fc.constant('"Increment"'), type),
    data: fc.oneof(
      fc.integer({ min: -5, max: 5 }).map((by) => `{"by":${by}}`),
      fc.constantFrom('{"by":1e309}', '{"by":"1"}', '{"by":9007199254740993}', 'null'),
      data,
    ),
    id: fc.oneof(uuid, fc.constantFrom('"c-1"', '"c-2"')),
    context: shaped({ actor: type, reason: type, correlationId: type, causationId: type, metadata }),
  });
  const forget = shaped({ reason: type, actor: type });
  const lifecycleChange = shaped({ reason: type, actor: type, expectedVersion });
  const retention = shaped({ reason: type, actor: type, maxCount: expectedVersion, maxAge: expectedVersion });
  const verify = shaped({
    streamId,
    anchor: shaped({
      position: numberText.filter((text) => /^-?\d/.test(text)),
      hash: fc.constantFrom('"00"', `"${'a'.repeat(64)}"`),
    }),
  });
  const invalidJson = fc.oneof(
    fc.constantFrom(
      '{',
      '{"events":[',
      '{"events":[{"type":"T","data":1},]}',
      "{'events':[]}",
      'NaN',
      '\ufeff{"events":[{"type":"T","data":1}]}',
      '{"events":[{"type":"T","data":1}]}garbage',
      '{"events":[{"type":"T","data":1}],"events":5}',
      '\u0000',
      '',
      ' ',
      'undefined',
    ),
    fc.string({ unit: 'binary', maxLength: 60 }),
  );
  const anyBody = fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: append },
    { weight: 2, arbitrary: shaped({ writes }) },
    { weight: 2, arbitrary: command },
    { weight: 1, arbitrary: forget },
    { weight: 1, arbitrary: verify },
    { weight: 2, arbitrary: jsonText },
    { weight: 2, arbitrary: invalidJson },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: huge },
  );
  /** Half the time the body the route takes (mostly well formed), else any body. */
  const forRoute = (own: fc.Arbitrary<string | undefined>) =>
    fc.oneof({ weight: 1, arbitrary: own }, { weight: 1, arbitrary: anyBody });
  const hostile = (pattern: string): fc.Arbitrary<string | undefined> => {
    if (pattern === '/streams/{streamId}/events') return forRoute(append);
    if (pattern === '/appends') return forRoute(shaped({ writes }));
    if (pattern.startsWith('/commands/')) return forRoute(command);
    if (pattern.endsWith('/forget')) return forRoute(forget);
    if (pattern.endsWith('/archive') || pattern.endsWith('/unarchive')) return forRoute(lifecycleChange);
    if (pattern.endsWith('/retention')) return forRoute(retention);
    if (pattern === '/verify') return forRoute(fc.option(verify, { nil: undefined }));
    if (pattern.endsWith('/metadata')) return forRoute(metadata);
    return anyBody;
  };

  // Nearly right: well-formed bodies that reach the store, where versions, ids and rules
  // decide (appends, conflicts, reused ids, refused commands).
  const okEvent = fc
    .record(
      {
        type: fc.constantFrom('"Fuzzed"', '"Incremented"'),
        data: jsonText,
        metadata: fc.constantFrom('{"actor":"a","reason":"r"}', '{"correlationId":"c-1"}', '{}'),
        id: fc.oneof(
          { weight: 4, arbitrary: fc.noBias(fc.uuid()).map((id) => JSON.stringify(id)) },
          { weight: 1, arbitrary: fc.nat().map((n) => JSON.stringify(pick(knownIds(), n))) },
        ),
      },
      { requiredKeys: ['type', 'data'] },
    )
    .map((fields) => object(Object.entries(fields)));
  const okEvents = fc.array(okEvent, { minLength: 1, maxLength: 3 }).map((list) => `[${list.join(',')}]`);
  const okVersion = fc.constantFrom('"any"', '"no-stream"', '"stream-exists"', '0', '1', '2', '3', '4', '5');
  const okAppend = fc
    .record({ events: okEvents, expectedVersion: okVersion }, { requiredKeys: ['events'] })
    .map((fields) => object(Object.entries(fields)));
  const okWrites = fc
    .array(
      fc
        .record(
          {
            streamId: fc.constantFrom('"fuzz-1"', '"fuzz-2"', '"fuzz-3"'),
            events: okEvents,
            expectedVersion: okVersion,
          },
          { requiredKeys: ['streamId', 'events'] },
        )
        .map((fields) => object(Object.entries(fields))),
      { minLength: 1, maxLength: 3 },
    )
    .map((list) => `{"writes":[${list.join(',')}]}`);
  const okCommand = fc
    .record(
      {
        type: fc.constantFrom('"Increment"', '"Decrement"'),
        data: fc.integer({ min: -1, max: 5 }).map((by) => `{"by":${by}}`),
        id: fc.constantFrom('"c-1"', '"c-2"', '"c-3"'),
        context: fc.constantFrom('{"actor":"a","reason":"r"}', '{"correlationId":"c-1"}', '{}'),
      },
      { requiredKeys: ['type', 'data'] },
    )
    .map((fields) => object(Object.entries(fields)));
  const nearlyRight = (pattern: string): fc.Arbitrary<string | undefined> => {
    if (pattern === '/streams/{streamId}/events') return okAppend;
    if (pattern === '/appends') return okWrites;
    if (pattern.startsWith('/commands/')) return okCommand;
    if (pattern.endsWith('/forget')) return fc.constantFrom('{"reason":"asked"}', '{"reason":"asked","actor":"a"}');
    if (pattern.endsWith('/archive') || pattern.endsWith('/unarchive')) {
      return fc.constantFrom('{"reason":"asked"}', '{"reason":"asked","actor":"a","expectedVersion":1}');
    }
    if (pattern.endsWith('/retention')) {
      return fc.constantFrom(
        '{"reason":"r","maxCount":2}',
        '{"reason":"r","maxAge":60,"maxCount":null}',
        '{"reason":"r","truncateBefore":1}',
      );
    }
    if (pattern === '/verify') return fc.constantFrom(undefined, '{}', '{"streamId":"fuzz-1"}');
    if (pattern.endsWith('/metadata')) return fc.constantFrom('{}', '{"owner":"o"}', '{"n":[1,2,3]}');
    return fc.constant(undefined);
  };
  return { hostile, nearlyRight };
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

const describeRequest = (request: FuzzRequest) => {
  const cut = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}... (${text.length} chars)` : text);
  return JSON.stringify({
    method: request.method,
    path: cut(request.path),
    headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, cut(v)])),
    body: request.body === undefined ? undefined : cut(request.body),
  });
};

// --- the test -----------------------------------------------------------------------------

describe.each(backends)('fuzz on $name', (backend) => {
  let server: TestServer;
  let store: EventStore;
  let pool: Pool;
  /** Route patterns by method, from the server's own OpenAPI document (plus the hidden one). */
  let routes: { method: string; pattern: string }[] = [];
  let knownIds: string[] = [];
  /** How many answers of each status the run saw. */
  const seen = new Map<number, number>();

  beforeAll(async () => {
    server = await startTestServer(backend, {
      app: {
        deciders: { counter: { decider: counter } },
        subscriptions: { fuzz: () => {} },
      },
    });
    store = await openEventStore({ client: server.client, schema: server.schema, closeClient: false });
    pool = new Pool(server.url, { connections: 4, headersTimeout: 20_000, bodyTimeout: 20_000 });
    for (const stream of ['fuzz-1', 'fuzz-2', 'account-1']) {
      await store.append(stream, [
        { type: 'Fuzzed', data: { n: 1 }, metadata: { actor: 'fuzz', correlationId: 'c-1' } },
        { type: 'Fuzzed', data: { n: 2 } },
      ]);
    }
    const events: RecordedEvent[] = [];
    for await (const event of store.readAll({})) events.push(event);
    knownIds = events.map((event) => event.id);
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    routes = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => ({ method: method.toUpperCase(), pattern: path })),
    );
    routes.push({ method: 'GET', pattern: '/openapi.json' });
    expect(routes.length).toBeGreaterThan(25);
  });

  afterAll(async () => {
    await pool?.close();
    await store?.close();
    await server?.cleanup();
  });

  /** The log as far as a refused request could have changed it: its head and last event. */
  async function logState(): Promise<string> {
    const head = await store.headPosition();
    let last: RecordedEvent | undefined;
    for await (const event of store.readAll({ after: Math.max(0, head - 1), limit: 1 })) last = event;
    return JSON.stringify({ head, last });
  }

  async function send(request: FuzzRequest): Promise<void> {
    const where = describeRequest(request);
    const before = await logState();
    // SSE answers never end: those go on a connection of their own, closed after the headers.
    const live = request.path.includes('subscribe');
    const client = live ? new Client(server.url, { headersTimeout: 20_000 }) : pool;
    const abort = new AbortController();
    let status: number;
    let type: string;
    let text = '';
    try {
      const response = await client.request({
        method: request.method as 'GET',
        path: request.path,
        headers: request.headers,
        body: request.body,
        signal: abort.signal,
      });
      status = response.statusCode;
      type = String(response.headers['content-type'] ?? '');
      if (type.startsWith('text/event-stream')) {
        abort.abort();
        await response.body.dump().catch(() => {});
      } else {
        text = await response.body.text();
      }
    } finally {
      if (live) await client.destroy();
    }
    seen.set(status, (seen.get(status) ?? 0) + 1);
    expect(status, where).toBeLessThan(500);
    if (status >= 400) {
      expect(type, where).toMatch(/^application\/problem\+json/);
      if (request.method !== 'HEAD') {
        const problem = JSON.parse(text) as { status?: unknown; code?: unknown };
        expect(problem.status, where).toBe(status);
        expect(typeof problem.code, where).toBe('string');
      }
    }
    if (status === 200 && type.startsWith('text/event-stream')) {
      expect(request.method, where).toMatch(/^(GET|HEAD)$/);
    }
    if (status < 200 || status >= 300) expect(await logState(), where).toBe(before);
  }

  it('answers every request below 500, refusals as problems that change nothing', async () => {
    const segment = segmentOf(() => knownIds);
    const bodyFor = bodies(() => knownIds);
    const path = fc
      .tuple(
        fc.nat(routes.length - 1),
        fc.array(segment, { minLength: 3, maxLength: 3 }),
        fc.oneof(
          { weight: 8, arbitrary: fc.constant('') },
          { weight: 1, arbitrary: fc.constantFrom('/', '//', '/..', '/extra', '%2F', '#frag') },
        ),
        fc.oneof(
          { weight: 8, arbitrary: fc.constant('') },
          { weight: 1, arbitrary: fc.constantFrom('/', '//', '/v1', '/.', '/%2e%2e') },
        ),
      )
      .map(([index, segments, suffix, prefix]) => {
        const route = routes[index] as { method: string; pattern: string };
        let i = 0;
        const filled = route.pattern.replace(/\{[^}]+\}/g, () => segments[i++] as string);
        return { route, path: prefix + filled + suffix };
      });
    const anyPath = fc.oneof(
      fc.array(segment, { maxLength: 5 }).map((segments) => `/${segments.join('/')}`),
      fc.constantFrom('/', '//', '/%00', '/..', '/streams', '/streams/', '/audit', '/health', '/metrics/x'),
    );
    const hostileRequest: fc.Arbitrary<FuzzRequest> = fc
      .tuple(
        fc.oneof(
          { weight: 6, arbitrary: path },
          { weight: 1, arbitrary: anyPath.map((p) => ({ route: undefined, path: p })) },
        ),
        fc.oneof(
          { weight: 6, arbitrary: fc.constant(undefined) },
          { weight: 1, arbitrary: fc.constantFrom(...methods) },
        ),
        queryString,
        headers,
      )
      .chain(([target, method, query, headerSet]) =>
        bodyFor.hostile(target.route?.pattern ?? '').map((body) => [target, method, query, headerSet, body] as const),
      )
      .map(([target, method, query, headerSet, body]) => {
        const verb = method ?? target.route?.method ?? 'GET';
        return {
          method: verb,
          path: target.path + query,
          headers:
            body !== undefined && headerSet['content-type'] === undefined
              ? { ...headerSet, 'content-type': 'application/json' }
              : headerSet,
          // undici sends no body with GET or HEAD.
          body: ['GET', 'HEAD'].includes(verb) ? undefined : body,
        };
      });
    const writing = routes.flatMap((route, i) => (['POST', 'PUT'].includes(route.method) ? [i] : []));
    const plausibleRequest: fc.Arbitrary<FuzzRequest> = fc
      .tuple(
        fc.oneof(fc.nat(routes.length - 1), fc.constantFrom(...writing)),
        fc.array(fc.constantFrom('fuzz-1', 'fuzz-2', 'fuzz-3', 'counter', 'fuzz', 'c-1', 'a'), {
          minLength: 3,
          maxLength: 3,
        }),
        fc.oneof(fc.constant(''), plausibleQuery),
        fc.record(
          {
            traceparent: fc.constantFrom('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'garbage'),
            'last-event-id': fc.constantFrom('0', '1', '5', '', 'x'),
          },
          { requiredKeys: [] },
        ),
      )
      .chain(([index, segments, query, headerSet]) => {
        const route = routes[index] as { method: string; pattern: string };
        let i = 0;
        const path = route.pattern.replace(/\{[^}]+\}/g, () => segments[i++] as string) + query;
        return bodyFor.nearlyRight(route.pattern).map((body) => ({
          method: route.method,
          path,
          headers: body === undefined ? headerSet : { ...headerSet, 'content-type': 'application/json' },
          body: ['GET', 'HEAD'].includes(route.method) ? undefined : body,
        }));
      });
    const request = fc.oneof({ weight: 2, arbitrary: hostileRequest }, { weight: 1, arbitrary: plausibleRequest });

    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 4 }), async (batch) => {
        for (const one of batch) await send(one);
        const live = await pool.request({ method: 'GET', path: '/health/live' });
        expect(live.statusCode).toBe(200);
        await live.body.dump();
      }),
      { seed, numRuns: runs, endOnFailure: false, interruptAfterTimeLimit: runs > 1000 ? undefined : 60_000 },
    );
    // The run did reach the store: some requests were accepted and appended.
    expect(await store.headPosition()).toBeGreaterThan(6);
    // ...and past validation to the store's own refusals.
    if (runs >= 200) expect([...seen.keys()]).toEqual(expect.arrayContaining([200, 201, 400, 404, 405, 409, 413, 415]));
  }, 600_000);
});
