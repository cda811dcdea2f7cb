/**
 * The raw ceilings: the same workloads as hand-written SQL through `pg`, on a plain table
 * shaped like Annals' events table (same columns, same unique keys), with no event-store
 * logic: no concurrency check, no ordering guarantee, no idempotency.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type EventShape, eventData } from './events.js';
import { type Measurement, measure, timeIt } from './measure.js';

type Named = Measurement & { name: string };

async function withPool<T>(url: string, max: number, work: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max });
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}

/**
 * A plain table shaped like Annals' events table (same unique keys; with `category`, also its
 * generated category column, so that rows are as wide and cost as much to write and read).
 */
export async function createTable(pool: pg.Pool, table: string, o: { category?: boolean } = {}): Promise<void> {
  await pool.query(`drop table if exists ${table}`);
  await pool.query(`create table ${table} (
    position bigint generated always as identity primary key,
    stream_id text not null,
    stream_version bigint not null,
    event_id uuid not null unique,
    event_type text not null,
    data jsonb not null,
    metadata jsonb not null default '{}',
    recorded_at timestamptz not null default now(),${
      o.category
        ? `
    category text not null generated always as (split_part(stream_id, '-', 1)) stored,`
        : ''
    }
    unique (stream_id, stream_version))`);
}

/**
 * One INSERT per transaction from `callers` connections, versions tracked by the caller. With
 * `shape`, the events of that shape (data and metadata) into a table with the category column;
 * without, a small deposit and no metadata.
 */
export function singleInsertPerTransaction(
  url: string,
  o: { events: number; streams: number; callers: number; shape?: EventShape },
): Promise<Named> {
  return withPool(url, o.callers, async (pool) => {
    await createTable(pool, 'raw_single', { category: o.shape !== undefined });
    const perCaller = Math.floor(o.streams / o.callers);
    const m = await measure(o.events, o.callers, async (caller, i, versions) => {
      const stream = caller + o.callers * (i % perCaller);
      const version = (versions.get(stream) ?? 0) + 1;
      const { data, metadata } = o.shape ? eventData(i, o.shape) : { data: { amount: i, caller }, metadata: {} };
      await pool.query(
        `insert into raw_single (stream_id, stream_version, event_id, event_type, data, metadata)
         values ($1, $2, $3, $4, $5, $6)`,
        [`account-${stream}`, version, randomUUID(), 'Deposited', JSON.stringify(data), JSON.stringify(metadata)],
      );
      versions.set(stream, version);
    });
    return { name: 'one INSERT per transaction', ...m };
  });
}

/** Per append: BEGIN, read the stream's version, INSERT the next, COMMIT. */
export function readVersionThenInsert(
  url: string,
  o: { events: number; streams: number; callers: number },
): Promise<Named> {
  return withPool(url, o.callers, async (pool) => {
    await createTable(pool, 'raw_checked');
    const perCaller = Math.floor(o.streams / o.callers);
    const m = await measure(o.events, o.callers, async (caller, i) => {
      const stream = `account-${caller + o.callers * (i % perCaller)}`;
      const client = await pool.connect();
      try {
        await client.query('begin');
        const { rows } = await client.query(
          'select coalesce(max(stream_version), 0) as v from raw_checked where stream_id = $1',
          [stream],
        );
        await client.query(
          `insert into raw_checked (stream_id, stream_version, event_id, event_type, data) values ($1, $2, $3, $4, $5)`,
          [stream, Number(rows[0].v) + 1, randomUUID(), 'Deposited', JSON.stringify({ amount: i, caller })],
        );
        await client.query('commit');
      } finally {
        client.release();
      }
    });
    return { name: 'read version, then INSERT', ...m };
  });
}

/**
 * Multi-row INSERT of `batch` rows per statement (unnest arrays) from `writers` connections,
 * events of `shape` (data and metadata).
 */
export function multiRowInsert(
  url: string,
  o: { events: number; batch: number; writers: number; shape: EventShape },
): Promise<Named> {
  return withPool(url, o.writers, async (pool) => {
    const table = `raw_batch_${o.writers}`;
    await createTable(pool, table, { category: true });
    const m = await measure(o.events / o.batch, o.writers, async (writer, i) => {
      const ids = Array.from({ length: o.batch }, () => randomUUID());
      const events = Array.from({ length: o.batch }, (_, k) => eventData(i * o.batch + k, o.shape));
      await pool.query(
        `insert into ${table} (stream_id, stream_version, event_id, event_type, data, metadata)
         select $1, v, id, 'ItemAdded', d, m
           from unnest($2::uuid[], $3::jsonb[], $4::jsonb[]) with ordinality as t(id, d, m, v)`,
        [
          `cart-${writer}-${i}`,
          ids,
          events.map((e) => JSON.stringify(e.data)),
          events.map((e) => JSON.stringify(e.metadata)),
        ],
      );
    });
    m.eventsPerSecond *= o.batch;
    return { name: `multi-row INSERT of ${o.batch}`, ...m };
  });
}

/** COPY of `events` rows in one stream of text. */
export function copyImport(url: string, o: { events: number }): Promise<Named> {
  return withPool(url, 1, async (pool) => {
    await createTable(pool, 'raw_copy');
    const client = await pool.connect();
    try {
      const m = await timeIt(o.events, () => copyRows(client, 'raw_copy', o.events));
      return { name: 'COPY', ...m };
    } finally {
      client.release();
    }
  });
}

/** Without `shape`, tiny data and no metadata (the import ceiling); with it, events of that shape. */
async function copyRows(client: pg.PoolClient, table: string, events: number, shape?: EventShape): Promise<void> {
  function* lines() {
    for (let i = 0; i < events; i++) {
      const head = `import-${i >> 10}\t${(i & 1023) + 1}\t${randomUUID()}\tImported`;
      if (!shape) {
        yield `${head}\t{"i": ${i}}\n`;
        continue;
      }
      // JSON of these shapes holds no tab, newline or backslash: COPY's text format takes it as is.
      const { data, metadata } = eventData(i, shape);
      yield `${head}\t${JSON.stringify(data)}\t${JSON.stringify(metadata)}\n`;
    }
  }
  const columns = `stream_id, stream_version, event_id, event_type, data${shape ? ', metadata' : ''}`;
  await pipeline(Readable.from(lines()), client.query(copyFrom(`copy ${table} (${columns}) from stdin`)));
}

/** Keyset-paged reads of the whole table of `events` events of `shape`, 1000 rows a page. */
export function pagedRead(url: string, o: { events: number; shape: EventShape }): Promise<Named> {
  return withPool(url, 1, async (pool) => {
    await createTable(pool, 'raw_read', { category: true });
    const client = await pool.connect();
    try {
      await copyRows(client, 'raw_read', o.events, o.shape);
      await client.query('vacuum analyze raw_read');
      let count = 0;
      const m = await timeIt(o.events, async () => {
        let after = 0;
        for (;;) {
          const { rows } = await client.query(
            `select position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at
               from raw_read where position > $1 order by position limit 1000`,
            [after],
          );
          count += rows.length;
          if (rows.length < 1000) break;
          after = Number(rows.at(-1).position);
        }
      });
      if (count !== o.events) throw new Error(`raw read ${count} of ${o.events}`);
      return { name: 'keyset pages of 1000', ...m };
    } finally {
      client.release();
    }
  });
}

/** One SELECT of a whole stream (`expect` events, 1000 by default), `repeats` times. */
export function readOneStream(
  url: string,
  o: { schema: string; streamId: string; repeats: number; expect?: number },
): Promise<Named> {
  const expected = o.expect ?? 1000;
  return withPool(url, 1, async (pool) => {
    const m = await measure(o.repeats, 1, async () => {
      const { rows } = await pool.query(
        `select position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at
           from "${o.schema}".events where stream_id = $1 order by stream_version`,
        [o.streamId],
      );
      if (rows.length !== expected) throw new Error(`raw stream read ${rows.length}`);
    });
    m.eventsPerSecond *= expected;
    return { name: 'one SELECT', ...m };
  });
}

/**
 * A plain copy of a store's events (same rows, same columns) for the audit queries, with the
 * indexes a hand-written audit log would have: the stream, the actor and the type by time,
 * the correlation id, and time alone. Filled by one INSERT ... SELECT, indexed afterwards.
 */
export function auditCopy(url: string, o: { fromSchema: string; table: string }): Promise<Named> {
  return withPool(url, 1, async (pool) => {
    await createTable(pool, o.table);
    const [{ count }] = (await pool.query(`select count(*)::int as count from "${o.fromSchema}".events`)).rows;
    const m = await timeIt(count, async () => {
      // Constraints and indexes after the rows: the way a bulk load is done by hand.
      await pool.query(`alter table ${o.table} drop constraint ${o.table}_event_id_key,
                          drop constraint ${o.table}_stream_id_stream_version_key`);
      await pool.query(
        `insert into ${o.table} overriding system value
         select position, stream_id, stream_version, event_id, event_type, data, metadata, recorded_at
           from "${o.fromSchema}".events order by position`,
      );
      await pool.query(`alter table ${o.table} add unique (event_id), add unique (stream_id, stream_version)`);
      await pool.query(`create index on ${o.table} ((metadata ->> 'actor'), recorded_at, position)`);
      await pool.query(`create index on ${o.table} ((metadata ->> 'correlationId'), position)`);
      await pool.query(`create index on ${o.table} (event_type, recorded_at, position)`);
      await pool.query(`create index on ${o.table} (recorded_at, position)`);
      await pool.query(`vacuum analyze ${o.table}`);
    });
    return { name: 'INSERT ... SELECT, then index', ...m };
  });
}

/**
 * The ceiling of sealing and verifying: every row read in keyset pages, in the canonical form
 * a seal covers (jsonb as text, time in microseconds), and one SHA-256 each in Node. No chain,
 * no seal written or read.
 */
export function hashAll(url: string, o: { table: string; events: number; pageSize: number }): Promise<Named> {
  return withPool(url, 1, async (pool) => {
    let count = 0;
    const m = await timeIt(o.events, async () => {
      let after = 0;
      for (;;) {
        const { rows } = await pool.query({
          name: `hash_${o.table}`,
          text: `select position, stream_id, stream_version, event_id::text as event_id, event_type,
                        data::text as data, metadata::text as metadata,
                        (extract(epoch from recorded_at) * 1000000)::int8::text as recorded_at
                   from ${o.table} where position > $1 order by position limit $2`,
          values: [after, o.pageSize],
        });
        for (const r of rows) {
          createHash('sha256')
            .update(
              JSON.stringify([
                Number(r.position),
                r.stream_id,
                Number(r.stream_version),
                r.event_id,
                r.event_type,
                r.data,
                r.metadata,
                r.recorded_at,
              ]),
            )
            .digest();
        }
        count += rows.length;
        if (rows.length < o.pageSize) break;
        after = Number(rows.at(-1).position);
      }
    });
    if (count !== o.events) throw new Error(`raw hash read ${count} of ${o.events}`);
    return { name: `pages of ${o.pageSize} + sha256 in Node`, ...m };
  });
}
