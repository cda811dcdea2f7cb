/**
 * A table of many rows that stays smooth: past `threshold` rows it is windowed. Rows have a
 * fixed height (`rowHeight`, kept by CSS: one line, cut with an ellipsis), so the rows in view
 * are known from the scroll offset alone; only those plus `overscan` on each side are in the
 * DOM, between two spacer rows that keep the scroll height of the whole. The table says how
 * many rows it has (`aria-rowcount`) and each row its index (`aria-rowindex`), so assistive
 * technology counts them all. Keyboard: Tab moves through the links of the rows rendered;
 * with the focus in the table, ArrowDown / ArrowUp go to the next / previous row, PageDown /
 * PageUp by a screenful, Home / End (with Ctrl, or on a row) to the first / last row, each
 * scrolled into view and focused (its first link, or the row itself). At or under the
 * threshold it is a plain table with every row.
 */
import type { ComponentChildren, JSX } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

/** The height of a row of a windowed table, in CSS pixels (see `.windowed` in styles.css). */
export const rowHeight = 32;
const overscan = 10;

interface WindowedTableProps<T> {
  /** The table's accessible name. */
  label: string;
  /** The header row's cells (`<th>`s). */
  head: ComponentChildren;
  rows: readonly T[];
  rowKey: (row: T) => string | number;
  /** How many cells a row has. */
  columns: number;
  /** A row's cells (`<td>`s). */
  cells: (row: T, index: number) => ComponentChildren;
  /** Rows up to which every row is rendered (default 100). */
  threshold?: number;
}

export function WindowedTable<T>(props: WindowedTableProps<T>) {
  const { label, head, rows, rowKey, cells, threshold = 100 } = props;
  if (rows.length <= threshold) {
    return (
      <table aria-label={label}>
        <thead>
          <tr>{head}</tr>
        </thead>
        <tbody>
          {rows.map((row, index) => (
            <tr key={rowKey(row)}>{cells(row, index)}</tr>
          ))}
        </tbody>
      </table>
    );
  }
  return <Windowed {...props} />;
}

function Windowed<T>({ label, head, rows, rowKey, cells, columns }: WindowedTableProps<T>) {
  const frame = useRef<HTMLElement>(null);
  const header = useRef<HTMLTableSectionElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [headerHeight, setHeaderHeight] = useState(rowHeight);
  /** The row to focus once it is rendered (after a key moved to it). */
  const [focusRow, setFocusRow] = useState<number | undefined>();
  const frameRequest = useRef<number | undefined>(undefined);

  useLayoutEffect(() => {
    const element = frame.current;
    if (!element) return;
    const measure = () => {
      setViewport(element.clientHeight || 600);
      setHeaderHeight(header.current?.offsetHeight || rowHeight);
    };
    measure();
    const observer = typeof ResizeObserver === 'undefined' ? undefined : new ResizeObserver(measure);
    observer?.observe(element);
    return () => {
      observer?.disconnect();
      if (frameRequest.current !== undefined) cancelAnimationFrame(frameRequest.current);
    };
  }, []);

  const count = rows.length;
  const visible = Math.ceil(viewport / rowHeight);
  const top = Math.max(0, scrollTop - headerHeight);
  const start = Math.max(0, Math.min(count - 1, Math.floor(top / rowHeight) - overscan));
  const end = Math.min(count, Math.floor(top / rowHeight) + visible + overscan);

  /** The row a key moved to, until it has the focus: a key pressed meanwhile moves on from it. */
  const moving = useRef<number | undefined>(undefined);
  useLayoutEffect(() => {
    if (focusRow === undefined) return;
    const row = frame.current?.querySelector<HTMLElement>(`tr[data-index="${focusRow}"]`);
    if (!row) return;
    (row.querySelector<HTMLElement>('a, button, input') ?? row).focus({ preventScroll: true });
    moving.current = undefined;
    setFocusRow(undefined);
  }, [focusRow, start, end]);

  const onScroll = () => {
    // One render a frame at most, however fast the wheel.
    if (frameRequest.current !== undefined) return;
    frameRequest.current = requestAnimationFrame(() => {
      frameRequest.current = undefined;
      setScrollTop(frame.current?.scrollTop ?? 0);
    });
  };

  const moveTo = (index: number) => {
    const element = frame.current;
    if (!element) return;
    const target = Math.max(0, Math.min(count - 1, index));
    const rowTop = headerHeight + target * rowHeight;
    if (rowTop < element.scrollTop + headerHeight) element.scrollTop = rowTop - headerHeight;
    else if (rowTop + rowHeight > element.scrollTop + element.clientHeight) {
      element.scrollTop = rowTop + rowHeight - element.clientHeight;
    }
    setScrollTop(element.scrollTop);
    moving.current = target;
    setFocusRow(target);
  };

  const onKeyDown = (event: KeyboardEvent) => {
    const row = (event.target as HTMLElement).closest?.('tr[data-index]');
    const current = moving.current ?? (row ? Number(row.getAttribute('data-index')) : -1);
    const page = Math.max(1, visible - 1);
    const onRow = current >= 0;
    const next =
      event.key === 'ArrowDown'
        ? current + 1
        : event.key === 'ArrowUp'
          ? current - 1
          : event.key === 'PageDown'
            ? current + page
            : event.key === 'PageUp'
              ? current - page
              : event.key === 'Home' && (onRow || event.ctrlKey)
                ? 0
                : event.key === 'End' && (onRow || event.ctrlKey)
                  ? count - 1
                  : undefined;
    if (next === undefined) return;
    event.preventDefault();
    moveTo(next);
  };

  const shown: JSX.Element[] = [];
  for (let index = start; index < end; index++) {
    const row = rows[index] as T;
    shown.push(
      <tr key={rowKey(row)} data-index={index} aria-rowindex={index + 2} tabIndex={-1}>
        {cells(row, index)}
      </tr>,
    );
  }
  return (
    // Focusable, so that the keyboard can scroll it (a scrollable region must be: Tab to it,
    // then the arrow keys); the keys of the rows inside bubble up to it.
    <section
      ref={frame}
      class="windowed"
      onScroll={onScroll}
      onKeyDown={onKeyDown}
      aria-label={`${label}, ${count.toLocaleString('en-US')} rows`}
      // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be focusable.
      tabIndex={0}
    >
      <table aria-label={label} aria-rowcount={count + 1}>
        <thead ref={header}>
          <tr aria-rowindex={1}>{head}</tr>
        </thead>
        <tbody>
          {start > 0 ? <Spacer columns={columns} rows={start} /> : null}
          {shown}
          {end < count ? <Spacer columns={columns} rows={count - end} /> : null}
        </tbody>
      </table>
    </section>
  );
}

/** The height of `rows` rows not rendered. */
function Spacer({ columns, rows }: { columns: number; rows: number }) {
  return (
    // biome-ignore lint/a11y/noAriaHiddenOnFocusable: a spacer row has nothing to focus or read.
    <tr aria-hidden="true" class="spacer">
      <td colSpan={columns} style={{ height: `${rows * rowHeight}px` }} />
    </tr>
  );
}
