/**
 * Keyset paging as an async iterable: memory stays at one page whatever the length read.
 * Each round trip asks for one row more than it yields; that row only tells whether another
 * page exists, which saves the empty round trip that would otherwise end every read.
 */
export async function* paged<T, Cursor>(
  start: Cursor,
  pageSize: number,
  limit: number,
  fetch: (cursor: Cursor, rows: number) => Promise<T[]>,
  cursorAfter: (last: T) => Cursor,
): AsyncGenerator<T> {
  let cursor = start;
  let remaining = limit;
  while (remaining > 0) {
    const size = Math.min(pageSize, remaining);
    const rows = await fetch(cursor, size + 1);
    const page = rows.length > size ? rows.slice(0, size) : rows;
    for (const item of page) yield item;
    remaining -= page.length;
    const last = page.at(-1);
    if (rows.length <= size || last === undefined) return;
    cursor = cursorAfter(last);
  }
}
