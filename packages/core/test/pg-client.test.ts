/**
 * The pg adapter's own connections: what it sets on them, and that a connection string can
 * set otherwise.
 */
import { describe, expect, it } from 'vitest';
import { createPostgresClient } from '../src/index.js';
import { databaseUrl } from './support/backends.js';

describe.skipIf(!databaseUrl)('the PostgreSQL client', () => {
  const setting = async (connectionString: string) => {
    const client = createPostgresClient({ connectionString, maxConnections: 1 });
    try {
      const [row] = await client.query<{ jit: string }>('show jit');
      return row?.jit;
    } finally {
      await client.close();
    }
  };

  it('opens its connections without JIT, unless the connection string says otherwise', async () => {
    const url = databaseUrl as string;
    expect(await setting(url)).toBe('off');
    const own = `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c jit=on')}`;
    expect(await setting(own)).toBe('on');
  });
});
