/** The README's library example is this file verbatim, and it runs. */
import { readFile } from 'node:fs/promises';
import { expect, it, vi } from 'vitest';

it('is quoted verbatim in the README and prints what its comments say', async () => {
  const [example, readme] = await Promise.all([
    readFile(new URL('./quick-start.ts', import.meta.url), 'utf8'),
    readFile(new URL('../README.md', import.meta.url), 'utf8'),
  ]);
  expect(readme).toContain(example.trim());

  const lines: unknown[][] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args) => {
    lines.push(args);
  });
  try {
    await import('./quick-start.js');
  } finally {
    spy.mockRestore();
  }
  expect(lines[0]).toEqual([2, [1, 2], false]);
  expect(lines[1]).toEqual([1, 2]);
  expect(lines[2]).toEqual([true, 3]);
  expect(lines[3]).toEqual([4, 'MoneyWithdrawn', { amount: 30 }]);
  expect(lines[4]).toEqual([3, 'MoneyDeposited', { amount: 5 }]);
  expect(lines[5]).toEqual([[2, 3, 5]]);
  expect(lines[6]).toEqual(['AccountOpened', 4, 5]);
});
