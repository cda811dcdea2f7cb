/**
 * TSDoc examples that cannot rot: every ```ts fence inside an `@example` block of a TSDoc
 * comment (`/** ... *\/`) in packages/*\/src and examples/ is written out as a module of its own
 * and type-checked, all in one TypeScript program, against the repository's sources (imports of
 * `@annals/core`, `@annals/core/pglite` and `@annals/core/testing` resolve to packages/core/src,
 * no build needed). The names examples use without defining them are declared, with real types,
 * in tsdoc-examples.preamble.d.ts.
 *
 * Used by packages/core/test/tsdoc-examples.test.ts; also runs on its own:
 * `npx tsx scripts/tsdoc-examples.ts` (exit code 1 when an example does not type-check).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { compilerOptions, coreEntryPoints, repoRoot } from './typescript-options.js';

/** One fenced example, as found in a source file. */
export interface TsdocExample {
  /** The source file, relative to the repository root, with `/` separators. */
  source: string;
  /** 1-based line of the `@example` tag in the source. */
  tagLine: number;
  /** 1-based line in the source of the example's first line of code (the one after the fence). */
  line: number;
  /** The code, comment markers (` * `) and the fence's indentation stripped. */
  code: string;
  /** For each line of `code`, the 0-based column of the source line where it starts. */
  columns: number[];
  /** The fence is never closed (the comment ends first): a mistake in the source. */
  unterminated?: boolean;
}

/** A problem with an example, located in the source file the example comes from. */
export interface ExampleDiagnostic {
  /** The file, relative to the repository root: the example's source, or e.g. the preamble. */
  source: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** The TypeScript error code (TS2339 is 2339), or 0 for a problem found by this checker. */
  code: number;
  category: 'error' | 'warning' | 'suggestion' | 'message';
  message: string;
}

export interface CheckResult {
  examples: TsdocExample[];
  diagnostics: ExampleDiagnostic[];
  /** Names the preamble declares that no example mentions: to remove, so that it stays small. */
  unusedPreambleNames: string[];
}

export interface CheckOptions {
  /** The repository root: where `@annals/core` and the preamble are. Defaults to this repository. */
  root?: string;
  /** The ambient preamble; defaults to `<root>/scripts/tsdoc-examples.preamble.d.ts`. */
  preamble?: string;
  /** Keep the temporary folder of example modules (its path is returned), to look at them. */
  keepFiles?: boolean;
}

const exampleLanguages = new Set(['ts', 'typescript', 'mts']);
const sourceExtension = /(?<!\.d)\.[cm]?ts$/;

/** The .ts files whose TSDoc examples are checked: packages/*\/src/** and examples/**. */
export function findExampleSources(root = repoRoot): string[] {
  const folders = [
    ...readdirSync(join(root, 'packages'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join('packages', entry.name, 'src')),
    'examples',
  ];
  const sources: string[] = [];
  for (const folder of folders) {
    let entries: string[];
    try {
      entries = readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' });
    } catch {
      continue; // a package without src
    }
    for (const entry of entries) {
      const path = toPosix(join(folder, entry));
      if (sourceExtension.test(path) && !/(^|\/)(node_modules|dist)\//.test(path)) sources.push(path);
    }
  }
  return sources.sort();
}

/** Every ```ts fence of every `@example` block of the TSDoc comments in `text`. */
export function extractExamples(source: string, text: string): TsdocExample[] {
  const file = ts.createSourceFile(source, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const seen = new Set<number>();
  const examples: TsdocExample[] = [];
  const visit = (node: ts.Node): void => {
    for (const comment of ts.getLeadingCommentRanges(text, node.pos) ?? []) {
      if (seen.has(comment.pos)) continue;
      seen.add(comment.pos);
      const isTsdoc = text.startsWith('/**', comment.pos) && !text.startsWith('/**/', comment.pos);
      if (comment.kind === ts.SyntaxKind.MultiLineCommentTrivia && isTsdoc) {
        examples.push(...examplesInComment(toPosix(source), file, comment.pos, comment.end));
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return examples.sort((a, b) => a.line - b.line);
}

interface CommentLine {
  text: string;
  /** 0-based line in the source. */
  line: number;
  /** 0-based column in the source where `text` starts. */
  column: number;
}

/** The lines of one TSDoc comment without `/**`, `*\/` and the leading ` * `. */
function commentLines(file: ts.SourceFile, pos: number, end: number): CommentLine[] {
  const start = file.getLineAndCharacterOfPosition(pos);
  const raw = file.text.slice(pos + 3, end - 2).split(/\r?\n/);
  if (raw.length > 1 && raw[raw.length - 1]?.trim() === '') raw.pop(); // the line of the closing `*/`
  return raw.map((text, index) => {
    if (index === 0) return { text, line: start.line, column: start.character + 3 };
    const marker = /^\s*\* ?/.exec(text)?.[0] ?? '';
    return { text: text.slice(marker.length), line: start.line + index, column: marker.length };
  });
}

function examplesInComment(source: string, file: ts.SourceFile, pos: number, end: number): TsdocExample[] {
  const examples: TsdocExample[] = [];
  let tagLine: number | undefined; // inside an @example block when set
  let fence: { language: string; indent: number; firstLine: number; lines: CommentLine[] } | undefined;
  const finish = (unterminated: boolean): void => {
    if (fence && tagLine !== undefined && exampleLanguages.has(fence.language)) {
      const { indent } = fence;
      const lines = fence.lines.map((l) => {
        const strip = Math.min(indent, /^\s*/.exec(l.text)?.[0].length ?? 0);
        return { text: l.text.slice(strip), column: l.column + strip };
      });
      examples.push({
        source,
        tagLine: tagLine + 1,
        line: fence.firstLine + 1,
        code: lines.map((l) => l.text).join('\n'),
        columns: lines.map((l) => l.column),
        ...(unterminated ? { unterminated } : {}),
      });
    }
    fence = undefined;
  };
  for (const line of commentLines(file, pos, end)) {
    if (fence) {
      if (/^\s*```\s*$/.test(line.text)) finish(false);
      else fence.lines.push(line);
      continue;
    }
    if (/^\s*@example\b/.test(line.text)) tagLine = line.line;
    else if (/^\s*@\w/.test(line.text)) tagLine = undefined;
    else if (tagLine !== undefined) {
      const opening = /^(\s*)```\s*([^\s`]*)/.exec(line.text);
      if (opening) {
        const language = (opening[2] ?? '').toLowerCase();
        fence = { language, indent: opening[1]?.length ?? 0, firstLine: line.line + 1, lines: [] };
      }
    }
  }
  finish(true);
  return examples;
}

/** The module file of an example: named after its source file and line. */
export function exampleFileName(example: TsdocExample): string {
  return `${example.source.replace(/[/\\]/g, '__')}__L${example.line}.mts`;
}

/**
 * The compiler options examples are checked with: the repository's, with `@annals/core`,
 * `@annals/core/pglite` and `@annals/core/testing` mapped to their source files, and every
 * other workspace package under packages/ to its main export's `@annals/source` file, as the
 * tests resolve them (the examples are modules in a temporary folder, out of node_modules' reach).
 */
export function exampleCompilerOptions(root = repoRoot): ts.CompilerOptions {
  const paths: Record<string, string[]> = Object.fromEntries(
    coreEntryPoints.map((entry) => [entry.specifier, [join(root, entry.source)]]),
  );
  for (const entry of readdirSync(join(root, 'packages'), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    let manifest: { name?: string; exports?: Record<string, unknown> };
    try {
      manifest = JSON.parse(readFileSync(join(root, 'packages', entry.name, 'package.json'), 'utf8'));
    } catch {
      continue; // not a package
    }
    const main = manifest.exports?.['.'] as Record<string, unknown> | undefined;
    const source = main?.['@annals/source'];
    if (manifest.name && !(manifest.name in paths) && typeof source === 'string') {
      paths[manifest.name] = [join(root, 'packages', entry.name, source)];
    }
  }
  return compilerOptions({ noEmit: true, paths, customConditions: ['@annals/source'] }, root);
}

/**
 * Type-checks `examples` in one program, each as a module of its own (ES module, so top-level
 * await works), with the ambient preamble. Reports only problems of the examples and the
 * preamble (the sources' own errors are the business of `tsc -p .`).
 */
export function checkExamples(examples: TsdocExample[], options: CheckOptions = {}): CheckResult & { dir?: string } {
  const root = options.root ?? repoRoot;
  const preamble = resolve(options.preamble ?? join(root, 'scripts', 'tsdoc-examples.preamble.d.ts'));
  const dir = mkdtempSync(join(tmpdir(), 'annals-tsdoc-examples-'));
  const diagnostics: ExampleDiagnostic[] = [];
  try {
    const files = new Map<string, TsdocExample>();
    for (const example of examples) {
      if (example.unterminated) {
        diagnostics.push({
          source: example.source,
          line: example.line - 1,
          column: 1,
          code: 0,
          category: 'error',
          message: 'the ``` fence of this @example is never closed',
        });
        continue;
      }
      const fileName = toPosix(join(dir, exampleFileName(example)));
      // `export {}` makes every example a module; the footer names the source for who opens the file.
      writeFileSync(fileName, `${example.code}\n\nexport {};\n// ${example.source}:${example.line}\n`);
      files.set(fileName, example);
    }
    const program = ts.createProgram({
      rootNames: [preamble, ...files.keys()],
      options: exampleCompilerOptions(root),
    });
    const found: ts.Diagnostic[] = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
    for (const fileName of [preamble, ...files.keys()]) {
      const file = program.getSourceFile(fileName);
      if (!file) continue; // reported by the options diagnostics (file not found)
      const syntax = program.getSyntacticDiagnostics(file);
      found.push(...(syntax.length > 0 ? syntax : program.getSemanticDiagnostics(file)));
    }
    for (const diagnostic of found) diagnostics.push(locate(diagnostic, files, root));
    const preambleFile = program.getSourceFile(preamble);
    const unusedPreambleNames = (preambleFile ? declaredNames(preambleFile) : []).filter(
      (name) => !examples.some((example) => new RegExp(`\\b${name}\\b`).test(example.code)),
    );
    return { examples, diagnostics, unusedPreambleNames, ...(options.keepFiles ? { dir } : {}) };
  } finally {
    if (!options.keepFiles) rmSync(dir, { recursive: true, force: true });
  }
}

/** The names a declaration file declares at its top level. */
function declaredNames(file: ts.SourceFile): string[] {
  return file.statements.flatMap((statement) => {
    if (ts.isVariableStatement(statement)) {
      return statement.declarationList.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
    }
    const named = ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement);
    return named && statement.name ? [statement.name.text] : [];
  });
}

/** Finds and checks every example of the repository. */
export function checkRepoExamples(options: CheckOptions = {}): CheckResult {
  const root = options.root ?? repoRoot;
  const examples = findExampleSources(root).flatMap((source) =>
    extractExamples(source, readFileSync(join(root, source), 'utf8')),
  );
  return checkExamples(examples, { ...options, root });
}

/** Where a diagnostic is: in an example, at its line in the source file it comes from. */
function locate(diagnostic: ts.Diagnostic, files: Map<string, TsdocExample>, root: string): ExampleDiagnostic {
  const category = ts.DiagnosticCategory[diagnostic.category].toLowerCase() as ExampleDiagnostic['category'];
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  const base = { code: diagnostic.code, category, message };
  const { file, start } = diagnostic;
  if (!file) return { source: '(compiler options)', line: 1, column: 1, ...base };
  const at = file.getLineAndCharacterOfPosition(start ?? 0);
  const example = files.get(toPosix(file.fileName));
  if (!example) {
    return { source: toPosix(relative(root, file.fileName)), line: at.line + 1, column: at.character + 1, ...base };
  }
  const line = Math.min(at.line, example.columns.length - 1); // past the code: the footer we added
  const column = (example.columns[line] ?? 0) + (line === at.line ? at.character : 0);
  return { source: example.source, line: example.line + line, column: column + 1, ...base };
}

/** `source:line:column - error TS2339: message`, as editors and terminals link it. */
export function formatDiagnostic(diagnostic: ExampleDiagnostic): string {
  const code = diagnostic.code === 0 ? '' : ` TS${diagnostic.code}`;
  const where = `${diagnostic.source}:${diagnostic.line}:${diagnostic.column}`;
  return `${where} - ${diagnostic.category}${code}: ${diagnostic.message}`;
}

function toPosix(path: string): string {
  return path.replace(/\\/g, '/');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { examples, diagnostics, unusedPreambleNames } = checkRepoExamples();
  for (const diagnostic of diagnostics) console.error(formatDiagnostic(diagnostic));
  if (unusedPreambleNames.length > 0) {
    console.error(`Declared in the preamble, used by no example: ${unusedPreambleNames.join(', ')}`);
  }
  const sources = new Set(examples.map((example) => example.source)).size;
  console.log(`${examples.length} TSDoc examples in ${sources} files, ${diagnostics.length} problems`);
  process.exitCode = diagnostics.length > 0 || unusedPreambleNames.length > 0 ? 1 : 0;
}
