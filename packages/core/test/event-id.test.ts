import { describe, expect, it } from 'vitest';
import { newEventId } from '../src/event-id.js';

describe('newEventId', () => {
  it('makes RFC 9562 version 7 UUIDs carrying the current time', () => {
    const before = Date.now();
    const id = newEventId();
    const after = Date.now();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const time = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(after);
  });

  it('is unique and sorts by time across milliseconds', async () => {
    const ids = new Set(Array.from({ length: 10_000 }, newEventId));
    expect(ids.size).toBe(10_000);
    const a = newEventId();
    await new Promise((resolve) => setTimeout(resolve, 3));
    const b = newEventId();
    expect(a < b).toBe(true);
  });
});
