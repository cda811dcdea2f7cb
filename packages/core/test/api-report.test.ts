/** The committed API reports (packages/core/api/) match the public API of the sources. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import {
  checkReports,
  describeStaleReports,
  entryPointProblems,
  reports,
  updateCommand,
} from '../../../scripts/api-report.js';
import { compilerOptions } from '../../../scripts/typescript-options.js';

describe('API report', () => {
  it(`matches the sources (else: ${updateCommand}, review and commit packages/core/api/)`, () => {
    const checks = checkReports();
    expect(checks.map((check) => check.reportName)).toEqual(reports.map((report) => report.reportName));
    const stale = describeStaleReports(checks);
    if (stale !== '') expect.fail(stale);
  });
});

describe('API report check', () => {
  it('shows a stale report as the lines removed and added, and a missing one as missing', () => {
    const folder = mkdtempSync(join(tmpdir(), 'annals-api-report-test-'));
    try {
      const file = join(folder, 'core.api.md');
      writeFileSync(file, 'export function a(): void;\nexport function b(): void;\nexport function c(): void;\n');
      const checks = checkReports([
        { reportName: 'core', file, text: 'export function a(): void;\nexport function b(x: number): void;\n' },
        { reportName: 'core-testing', file: join(folder, 'core-testing.api.md'), text: '' },
      ]);
      expect(checks.map(({ state, diff }) => ({ state, diff }))).toEqual([
        {
          state: 'changed',
          diff: [
            '- export function b(): void;',
            '- export function c(): void;',
            '+ export function b(x: number): void;',
          ],
        },
        { state: 'missing', diff: [] },
      ]);
      const summary = describeStaleReports(checks);
      expect(summary).toContain('packages/core/api/core.api.md: 1 lines added, 2 removed');
      expect(summary).toContain('packages/core/api/core-testing.api.md: missing');
      expect(summary).toContain(`run \`${updateCommand}\``);
      expect(describeStaleReports([{ ...checks[0], state: 'same', diff: [] } as (typeof checks)[number]])).toBe('');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('API report guard', () => {
  it('refuses an entry point naming a module or an export that does not exist', () => {
    const folder = mkdtempSync(join(tmpdir(), 'annals-api-report-test-'));
    try {
      writeFileSync(join(folder, 'package.json'), '{ "type": "module" }\n');
      writeFileSync(join(folder, 'a.ts'), 'export const x = 1;\n');
      const index = join(folder, 'index.ts');
      writeFileSync(index, "export { x, y } from './a.js';\nexport * from './moved-away.js';\n");
      const program = ts.createProgram({ rootNames: [index], options: compilerOptions({ noEmit: true, types: [] }) });
      const file = program.getSourceFile(index) ?? expect.fail('index.ts not in the program');
      expect(entryPointProblems(program.getTypeChecker(), file)).toEqual([
        expect.stringMatching(/index\.ts: cannot find module '\.\/moved-away\.js'$/),
        expect.stringMatching(/index\.ts: exports "y", which is not found$/),
      ]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
