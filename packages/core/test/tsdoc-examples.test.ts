/** The ```ts examples in TSDoc comments type-check against the sources (scripts/tsdoc-examples.ts). */
import { describe, expect, it } from 'vitest';
import {
  checkExamples,
  checkRepoExamples,
  exampleFileName,
  extractExamples,
  formatDiagnostic,
} from '../../../scripts/tsdoc-examples.js';

/** How many examples the sources have (13 when written), less a margin: it cannot pass on none found. */
const minimumExamples = 10;

describe('TSDoc examples', () => {
  it('type-check against the sources, with the shared preamble', () => {
    const { examples, diagnostics, unusedPreambleNames } = checkRepoExamples();
    expect(examples.length, 'examples found in packages/*/src and examples/').toBeGreaterThanOrEqual(minimumExamples);
    expect(
      diagnostics.map(formatDiagnostic),
      'TSDoc examples that do not type-check: fix the example (or, for a free name, scripts/tsdoc-examples.preamble.d.ts)',
    ).toEqual([]);
    expect(unusedPreambleNames, 'declared in scripts/tsdoc-examples.preamble.d.ts, used by no example').toEqual([]);
  });
});

describe('the examples checker', () => {
  const source = [
    'export class Thing {',
    '  /**',
    '   * Does it.',
    '   *',
    '   * @example',
    '   * ```ts',
    '   * const same: typeof store = store;',
    "   * await same.noSuchMethod('account-42');",
    '   * ```',
    '   * @example A second, in a language that is not checked:',
    '   * ```sh',
    '   * annals read account-42',
    '   * ```',
    '   * @remarks',
    '   * ```ts',
    '   * not an example: outside an @example block',
    '   * ```',
    '   */',
    '  it(): void {}',
    '}',
    '/**',
    ' * @example',
    ' *   ```typescript',
    ' *   if (true) {',
    ' *     console.log(notDeclaredAnywhere);',
    ' *   }',
    ' *   ```',
    ' */',
    'export function other(): void {}',
    '/** @example',
    ' * ```ts',
    ' * const never = "closed";',
    ' */',
    'export const last = 1;',
  ].join('\n');

  it('finds the ts fences of @example blocks, stripped of the comment markers, with their lines', () => {
    const examples = extractExamples('synthetic/thing.ts', source);
    expect(examples.map(({ line, tagLine, code }) => ({ line, tagLine, code }))).toEqual([
      {
        line: 7,
        tagLine: 5,
        code: "const same: typeof store = store;\nawait same.noSuchMethod('account-42');",
      },
      { line: 24, tagLine: 22, code: 'if (true) {\n  console.log(notDeclaredAnywhere);\n}' },
      { line: 32, tagLine: 30, code: 'const never = "closed";' },
    ]);
    expect(examples[1]?.columns).toEqual([5, 5, 5]); // after ' * ' and the fence's indentation
    expect(examples[2]?.unterminated).toBe(true);
    expect(exampleFileName(examples[0] ?? expect.fail('no example'))).toBe('synthetic__thing.ts__L7.mts');
  });

  it('reports a method that does not exist, a free name not in the preamble, an unclosed fence', () => {
    const examples = extractExamples('synthetic/thing.ts', source);
    const { diagnostics } = checkExamples(examples);
    expect(diagnostics.map(formatDiagnostic)).toEqual([
      'synthetic/thing.ts:31:1 - error: the ``` fence of this @example is never closed',
      expect.stringMatching(
        /^synthetic\/thing\.ts:8:17 - error TS2339: Property 'noSuchMethod' does not exist on type /,
      ),
      "synthetic/thing.ts:25:20 - error TS2304: Cannot find name 'notDeclaredAnywhere'.",
    ]);
  });
});
