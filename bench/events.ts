/**
 * The event shapes the benchmark writes. Realistic: what the command handler writes for a
 * deposit, about 180 bytes of data and 100 of metadata (an actor and a correlation id), the
 * size the index and parse costs of a real log come from. Tiny: a few bytes and no metadata,
 * kept beside it to show how much of a figure is per event rather than per byte.
 */
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '@annals/core';

export type EventShape = 'realistic' | 'tiny';

const filler = 'x'.repeat(120);

/** The data and metadata of the `i`-th event of a shape. */
export function eventData(i: number, shape: EventShape): { data: JsonObject; metadata: JsonObject } {
  return shape === 'realistic'
    ? {
        data: { amount: i, currency: 'EUR', account: `acc-${i % 9973}`, note: filler },
        metadata: { actor: `user-${i % 97}`, correlationId: randomUUID() },
      }
    : { data: { i }, metadata: {} };
}
