/**
 * Collects an async iterable into an array (Node 20 has no `Array.fromAsync`). Only for
 * bounded reads: use `for await` to stream a large log in constant memory.
 *
 * @example
 * ```ts
 * const events = await toArray(store.readStream('account-42'));
 * ```
 */
export async function toArray<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
