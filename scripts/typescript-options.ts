/**
 * What the scripts in this folder share: where the repository is, the public entry points of
 * `@annals/core` (as source files, so nothing depends on a build), and compiler options as
 * strict as the repository's own tsconfig.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository's root folder (this file is in `scripts/`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The public entry points of `@annals/core`: import specifier, and source file relative to the root. */
export const coreEntryPoints = [
  { specifier: '@annals/core', source: 'packages/core/src/index.ts' },
  { specifier: '@annals/core/pglite', source: 'packages/core/src/db/pglite-client.ts' },
  { specifier: '@annals/core/testing', source: 'packages/core/src/testing/index.ts' },
] as const;

/**
 * The compiler options of the repository's tsconfig (as tsconfig JSON), restated here so that
 * the scripts do not follow a tsconfig being reorganised; keep them in step.
 */
export const strictOptionsJson = {
  target: 'ES2023',
  lib: ['ES2024'],
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: false,
  noImplicitOverride: true,
  noFallthroughCasesInSwitch: true,
  isolatedModules: true,
  verbatimModuleSyntax: true,
  allowImportingTsExtensions: false,
  skipLibCheck: true,
  types: ['node'],
} as const;

/** `strictOptionsJson` plus `extra`, converted for the compiler API; throws on an invalid option. */
export function compilerOptions(extra: Record<string, unknown> = {}, root = repoRoot): ts.CompilerOptions {
  const { options, errors } = ts.convertCompilerOptionsFromJson({ ...strictOptionsJson, ...extra }, root);
  if (errors.length > 0) throw new Error(formatTsDiagnostics(errors, root));
  // Found from the root, wherever the program's files are (they may be in a temporary folder).
  options.typeRoots = [join(root, 'node_modules', '@types')];
  return options;
}

/** Diagnostics as `file:line:column - error TSxxxx: message` lines, paths relative to `root`. */
export function formatTsDiagnostics(diagnostics: readonly ts.Diagnostic[], root = repoRoot): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (fileName) => fileName,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  });
}
