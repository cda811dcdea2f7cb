/**
 * One LISTEN connection per `pg.Pool` (src/db/pg-listener.ts): every client created on a pool,
 * whatever its role, and every channel share it; channels are refcounted; a lost connection is
 * replaced and every listener told; the last listener to leave frees the connection.
 * PostgreSQL only: PGlite has no pool.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresClient, type Listener, type SqlClient } from '../src/index.js';
import { databaseUrl, rawConnection, waitUntil } from './support/backends.js';

const run = randomBytes(4).toString('hex');
/** Every wait is bounded: a broken multiplexer fails the test rather than hang it. */
const bounded = { timeoutMs: 5000 };

interface Heard {
  name: string;
  channel: string;
  payloads: string[];
  reconnects: number;
  listener: Listener;
}

describe.skipIf(!databaseUrl)('one LISTEN connection per pool, on PostgreSQL', () => {
  let admin: pg.Client;
  const role = `lst_${run}`;
  let test = 0;

  beforeAll(async () => {
    admin = await rawConnection();
    // A real role too: its client sets it on the connections it takes, never on the LISTEN one.
    await admin.query(`create role ${role} nologin`);
  });
  afterAll(async () => {
    await admin.query(`drop role if exists ${role}`);
    await admin.end();
  });

  /**
   * A pool of 4 with an application name of its own, 3 clients on it (no role, `role: null`, a
   * role), and 8 listeners on 6 channels, two of them shared by two clients.
   */
  const setUp = async () => {
    test++;
    const applicationName = `annals_lst_${run}_${test}`;
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, application_name: applicationName });
    pool.on('error', () => {});
    const clients: SqlClient[] = [
      createPostgresClient({ pool }),
      createPostgresClient({ pool, role: null }),
      createPostgresClient({ pool, role }),
    ];
    const channels = Array.from({ length: 6 }, (_, i) => `lst_${run}_${test}_${i}`);
    const plan: [client: number, channel: number][] = [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 2],
      [1, 3],
      [1, 4],
      [2, 4],
      [2, 5],
    ];
    const heard: Heard[] = [];
    for (const [c, i] of plan) {
      const channel = channels[i] as string;
      const entry = { name: `client ${c} on ${i}`, channel, payloads: [], reconnects: 0 } as unknown as Heard;
      entry.listener = await (clients[c] as SqlClient).listen(
        channel,
        (payload) => entry.payloads.push(payload),
        () => entry.reconnects++,
      );
      heard.push(entry);
    }
    const backends = async (where = '') =>
      (
        await admin.query<{ pid: number; query: string }>(
          `select pid, query from pg_stat_activity where application_name = $1 ${where}`,
          [applicationName],
        )
      ).rows;
    const notify = (channel: string, payload: string) => admin.query('select pg_notify($1, $2)', [channel, payload]);
    /**
     * NOTIFYs each channel with its name, then waits for each of `open` listeners to hear it.
     * The channels share one connection, so by then any stray delivery would have happened.
     */
    const notifyAll = async (open: Heard[], tag: string) => {
      for (const channel of channels) await notify(channel, `${tag}:${channel}`);
      for (const entry of open) {
        await waitUntil(() => entry.payloads.includes(`${tag}:${entry.channel}`), {
          ...bounded,
          message: `${entry.name} hears ${tag}`,
        });
      }
      // The last channel's NOTIFY came last on the connection: wait for it whatever listens.
      await notify(channels[0] as string, `${tag}:end`);
      const first = open.find((entry) => entry.channel === channels[0]);
      if (first) await waitUntil(() => first.payloads.includes(`${tag}:end`), bounded);
    };
    const cleanUp = async () => {
      await Promise.all(heard.map((entry) => entry.listener.close()));
      await Promise.all(clients.map((client) => client.close()));
      await pool.end();
    };
    return { pool, clients, channels, heard, backends, notify, notifyAll, cleanUp };
  };

  it('listens on 6 channels for 3 clients on one connection, and each NOTIFY reaches its channel only', async () => {
    const t = await setUp();
    try {
      expect(t.pool.totalCount).toBe(1);
      const listening = await t.backends();
      expect(listening).toHaveLength(1);
      expect(listening[0]?.query).toMatch(/^listen /);
      await t.notifyAll(t.heard, 'a');
      for (const entry of t.heard) {
        const expected = [`a:${entry.channel}`];
        if (entry.channel === t.channels[0]) expected.push('a:end');
        expect(entry.payloads, entry.name).toEqual(expected);
      }
      // The clients' own statements take other connections; the LISTEN one stays busy.
      await Promise.all(t.clients.map((client) => client.query('select 1')));
      expect(t.pool.totalCount).toBeLessThanOrEqual(4);
      expect(t.pool.totalCount - t.pool.idleCount).toBe(1);
    } finally {
      await t.cleanUp();
    }
  });

  it('stops only the closed listener, and UNLISTENs its channel when it was the last there', async () => {
    const t = await setUp();
    try {
      const byName = (name: string) => t.heard.find((entry) => entry.name === name) as Heard;
      // Channel 2 is shared: closing one of its two listeners keeps the channel.
      await byName('client 1 on 2').listener.close();
      await byName('client 1 on 2').listener.close(); // twice is harmless
      // Channel 5 has one listener: closing it UNLISTENs.
      await byName('client 2 on 5').listener.close();
      const [backend] = await t.backends();
      expect(backend).toBeDefined();
      await waitUntil(async () => (await t.backends())[0]?.query === `unlisten ${t.channels[5]}`, {
        ...bounded,
        message: 'the channel left is UNLISTENed',
      });
      const open = t.heard.filter((entry) => entry.name !== 'client 1 on 2' && entry.name !== 'client 2 on 5');
      await t.notifyAll(open, 'b');
      expect(byName('client 1 on 2').payloads).toEqual([]);
      expect(byName('client 2 on 5').payloads).toEqual([]);
      for (const entry of open) expect(entry.payloads, entry.name).toContain(`b:${entry.channel}`);
      expect(byName('client 0 on 2').payloads).toEqual([`b:${t.channels[2]}`]);
      // Still the same one connection.
      expect(t.pool.totalCount).toBe(1);
      expect((await t.backends())[0]?.pid).toBe(backend?.pid);
    } finally {
      await t.cleanUp();
    }
  });

  it('reconnects when the connection is ended, listens again on every channel, then tells every listener', async () => {
    const t = await setUp();
    try {
      const [before] = await t.backends();
      const { rows } = await admin.query(
        'select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = $1',
        [`annals_lst_${run}_${test}`],
      );
      expect(rows).toEqual([{ ended: true }]);
      for (const entry of t.heard) {
        await waitUntil(() => entry.reconnects > 0, { ...bounded, message: `${entry.name} told of the reconnect` });
      }
      // On a new connection, still one.
      const after = await t.backends();
      expect(after).toHaveLength(1);
      expect(after[0]?.pid).not.toBe(before?.pid);
      expect(t.pool.totalCount).toBe(1);
      await t.notifyAll(t.heard, 'c');
      for (const entry of t.heard) {
        expect(entry.payloads, entry.name).toContain(`c:${entry.channel}`);
        expect(entry.reconnects, entry.name).toBe(1);
      }
    } finally {
      await t.cleanUp();
    }
  });

  it('frees the connection when the last listener leaves, and opens a new one for the next', async () => {
    const t = await setUp();
    try {
      for (const entry of t.heard) await entry.listener.close();
      // Destroyed, not returned to the pool with its LISTENs.
      expect(t.pool.totalCount).toBe(0);
      expect(t.pool.idleCount).toBe(0);
      await waitUntil(async () => (await t.backends()).length === 0, { ...bounded, message: 'the backend is gone' });

      const payloads: string[] = [];
      const again = await (t.clients[2] as SqlClient).listen(
        t.channels[3] as string,
        (payload) => payloads.push(payload),
        () => {},
      );
      try {
        expect(t.pool.totalCount).toBe(1);
        await t.notify(t.channels[3] as string, 'd');
        await waitUntil(() => payloads.includes('d'), bounded);
      } finally {
        await again.close();
      }
      expect(t.pool.totalCount).toBe(0);
    } finally {
      await t.cleanUp();
    }
  });

  it('throws the first failure to connect to the caller, and a bad channel name', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/x', max: 4 });
    pool.on('error', () => {});
    const client = createPostgresClient({ pool, role: null });
    try {
      await expect(
        client.listen(
          `lst_${run}_down`,
          () => {},
          () => {},
        ),
      ).rejects.toThrow();
      // Nothing is left retrying or held.
      expect(pool.totalCount).toBe(0);
      await expect(
        client.listen(
          `lst_${run}_down`,
          () => {},
          () => {},
        ),
      ).rejects.toThrow();
      await expect(
        client.listen(
          'bad; channel',
          () => {},
          () => {},
        ),
      ).rejects.toThrow(/bad channel name/);
    } finally {
      await pool.end();
    }
  });
});
