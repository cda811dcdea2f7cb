/** What a command printed with `console.log`, as one string. */
import { vi } from 'vitest';

export async function capture(run: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args) => {
    lines.push(args.join(' '));
  });
  try {
    await run();
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}
