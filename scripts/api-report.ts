/**
 * The API report of `@annals/core`: one API Extractor report per public entry point, committed
 * in packages/core/api/, so that a change of the public API shows in review.
 *
 *   npx tsx scripts/api-report.ts           regenerates the reports
 *   npx tsx scripts/api-report.ts --check   fails (exit code 1, with a diff) when they are stale
 *
 * Depends on no build: the declarations are emitted from packages/core/src into a temporary
 * folder by the TypeScript compiler API, then API Extractor reads them there.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CompilerState,
  Extractor,
  ExtractorConfig,
  ExtractorLogLevel,
  type ExtractorMessage,
  type IConfigFile,
} from '@microsoft/api-extractor';
import ts from 'typescript';
import { compilerOptions, coreEntryPoints, formatTsDiagnostics, repoRoot } from './typescript-options.js';

/** Where the committed reports are. */
export const reportFolder = join(repoRoot, 'packages', 'core', 'api');

/** The command that regenerates the reports, for messages. */
export const updateCommand = 'npx tsx scripts/api-report.ts';

const coreSrc = join(repoRoot, 'packages', 'core', 'src');

/** The report file of each entry point: `@annals/core` → core.api.md, `@annals/core/pglite` → core-pglite.api.md. */
export const reports = coreEntryPoints.map((entry) => ({
  ...entry,
  reportName: entry.specifier.replace(/^@annals\//, '').replace(/\//g, '-'),
  declaration: entry.source.replace(/^packages\/core\/src\//, '').replace(/\.ts$/, '.d.ts'),
}));

/**
 * What API Extractor reports (merged into its defaults). The API shape is what matters here:
 * TSDoc syntax is not reviewed through this report, so its messages (and unresolved
 * `{@link}`s) are silenced; the project uses no release tags (`@public`, `@beta`, ...), so
 * their absence is no news either. The other findings, `ae-forgotten-export` first (a public
 * signature uses a type its entry point does not export), are written into the report, next to
 * the declaration concerned, where review sees them. Anything API Extractor still logs as a
 * warning or an error fails the run.
 */
const { None, Warning } = ExtractorLogLevel;
const messages: IConfigFile['messages'] = {
  compilerMessageReporting: { default: { logLevel: Warning } },
  extractorMessageReporting: {
    default: { logLevel: Warning, addToApiReportFile: true },
    'ae-forgotten-export': { logLevel: Warning, addToApiReportFile: true },
    'ae-missing-release-tag': { logLevel: None },
    'ae-unresolved-link': { logLevel: None },
  },
  tsdocMessageReporting: { default: { logLevel: None } },
};

export interface GeneratedReport {
  reportName: string;
  /** Path of the committed report. */
  file: string;
  text: string;
}

/**
 * Emits the declarations of packages/core/src into `outDir` and returns the names
 * `@annals/core` exports. Throws on a syntax error, or when an entry point names a module or an
 * export that does not exist (that part of the API would silently drop out of the report).
 * Type errors in function bodies are left to `tsc -p .`: the declarations are emitted without
 * checking them (`noCheck`), seconds faster.
 */
function emitDeclarations(outDir: string): Set<string> {
  const rootNames = coreEntryPoints.map((entry) => join(repoRoot, entry.source));
  const options = compilerOptions({
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    noCheck: true,
    rootDir: coreSrc,
    outDir,
  });
  const program = ts.createProgram({ rootNames, options });
  const errors = [
    ...program.getOptionsDiagnostics(),
    ...program.getSyntacticDiagnostics(),
    ...program.emit().diagnostics,
  ];
  const failed = errors.filter((diagnostic) => diagnostic.category === ts.DiagnosticCategory.Error);
  const checker = program.getTypeChecker();
  const entryFiles = rootNames.map((name) => program.getSourceFile(name));
  const problems = entryFiles.flatMap((file, index) =>
    file ? entryPointProblems(checker, file) : [`${coreEntryPoints[index]?.source}: not found`],
  );
  if (failed.length > 0 || problems.length > 0) {
    throw new Error(`packages/core/src: no API report\n${formatTsDiagnostics(failed)}${problems.join('\n')}`);
  }
  const main = entryFiles[0] && checker.getSymbolAtLocation(entryFiles[0]);
  return new Set(main ? checker.getExportsOfModule(main).map((symbol) => symbol.name) : []);
}

/** The modules an entry point imports or re-exports that do not resolve, and its exports that do not. */
export function entryPointProblems(checker: ts.TypeChecker, file: ts.SourceFile): string[] {
  const where = relative(repoRoot, file.fileName).replace(/\\/g, '/');
  const problems: string[] = [];
  for (const statement of file.statements) {
    const specifier =
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier;
    if (specifier && !checker.getSymbolAtLocation(specifier)) {
      problems.push(`${where}: cannot find module ${specifier.getText(file)}`);
    }
  }
  const moduleSymbol = checker.getSymbolAtLocation(file);
  for (const symbol of moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : []) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (!target.declarations?.length) problems.push(`${where}: exports "${symbol.name}", which is not found`);
  }
  return problems;
}

/**
 * API Extractor looks at one entry point at a time: for `@annals/core/pglite`, `SqlClient` is a
 * forgotten export although `@annals/core` exports it. Drops those warnings (with the `//` line
 * that separated them from the declaration), keeping the ones about types no entry point exports.
 */
function dropExportedElsewhere(report: string, exported: Set<string>): string {
  const warning = /^\s*\/\/ Warning: \(ae-forgotten-export\) The symbol "([^"]+)" needs to be exported/;
  const kept: string[] = [];
  let dropped = false;
  for (const line of report.split('\n')) {
    const name = warning.exec(line)?.[1];
    if (name !== undefined && exported.has(name)) {
      dropped = true;
      continue;
    }
    const previous = kept[kept.length - 1] ?? '';
    if (dropped && line.trim() === '//' && !/^\s*\/\/ Warning:/.test(previous)) continue;
    dropped = false;
    kept.push(line);
  }
  return kept.join('\n');
}

/** Generates every report (into a temporary folder; nothing in the repository is written). */
export function generateReports(): GeneratedReport[] {
  const temp = mkdtempSync(join(tmpdir(), 'annals-api-report-'));
  try {
    const dts = join(temp, 'dts');
    const exportedByMain = emitDeclarations(dts);
    // The declarations import pg, @electric-sql/pglite, ...: resolve them from the repository,
    // as packages (external to the report).
    symlinkSync(join(repoRoot, 'node_modules'), join(dts, 'node_modules'), 'junction');
    writeFileSync(join(dts, 'package.json'), `${JSON.stringify({ name: '@annals/core', type: 'module' })}\n`);
    const out = join(temp, 'reports');
    mkdirSync(out);

    const configs = reports.map((report) => {
      const configObject: IConfigFile = {
        // The project folder is the declarations' folder: locations in the report are then
        // relative to it (e.g. `store/event-store.d.ts:12:3`), the same on every machine.
        projectFolder: dts,
        mainEntryPointFilePath: join(dts, report.declaration),
        bundledPackages: [],
        newlineKind: 'lf',
        compiler: {
          overrideTsconfig: {
            compilerOptions: {
              target: 'ES2023',
              lib: ['ES2024'],
              module: 'ESNext',
              moduleResolution: 'Bundler',
              strict: true,
              skipLibCheck: true,
              types: ['node'],
              typeRoots: [join(repoRoot, 'node_modules', '@types')],
            },
            files: reports.map((r) => join(dts, r.declaration)),
          },
          skipLibCheck: true,
        },
        apiReport: {
          enabled: true,
          reportFileName: report.reportName,
          reportFolder: out,
          reportTempFolder: out,
          includeForgottenExports: false,
        },
        docModel: { enabled: false },
        dtsRollup: { enabled: false },
        tsdocMetadata: { enabled: false },
        messages,
      };
      // Through a file, so that API Extractor merges its defaults into it.
      const configFile = join(temp, `api-extractor.${report.reportName}.json`);
      writeFileSync(configFile, JSON.stringify(configObject, null, 2));
      return ExtractorConfig.prepare({
        configObject: ExtractorConfig.loadFile(configFile),
        configObjectFullPath: configFile,
        packageJsonFullPath: join(dts, 'package.json'),
        packageJson: { name: '@annals/core', version: '0.0.0' }, // a package name: no subpath
      });
    });

    // One compiler program for the three entry points.
    const [first] = configs;
    if (!first) throw new Error('no entry points');
    const compilerState = CompilerState.create(first, {
      additionalEntryPoints: configs.map((config) => config.mainEntryPointFilePath),
    });
    const problems: string[] = [];
    const generated = reports.map((report, index) => {
      const config = configs[index] as ExtractorConfig;
      const result = Extractor.invoke(config, {
        compilerState,
        localBuild: true,
        messageCallback: (message: ExtractorMessage) => {
          // Printed by us, once, with the entry point; the others stay quiet.
          if (message.logLevel === ExtractorLogLevel.Error || message.logLevel === Warning) {
            problems.push(`${report.specifier}: ${message.formatMessageWithLocation(dts)}`);
          }
          message.handled = true;
        },
      });
      if (result.errorCount > 0) {
        problems.push(`${report.specifier}: API Extractor failed with ${result.errorCount} error(s)`);
      }
      const name = `${report.reportName}.api.md`;
      // The header names the package; name the entry point instead.
      let text = readFileSync(join(out, name), 'utf8').replace(
        /^## API Report File for "@annals\/core"$/m,
        `## API Report File for "${report.specifier}"`,
      );
      if (index > 0) text = dropExportedElsewhere(text, exportedByMain);
      const file = join(reportFolder, name);
      return { reportName: report.reportName, file, text: formatWithBiome(text, file) };
    });
    if (problems.length > 0) throw new Error(`API Extractor:\n${problems.join('\n')}`);
    return generated;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/**
 * The report as the repository's formatter (Biome, which formats the ts block of a .md file)
 * would write it, so that `biome check .` passes on the committed reports.
 */
function formatWithBiome(text: string, file: string): string {
  const biome = join(repoRoot, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
  const result = spawnSync(process.execPath, [biome, 'format', `--stdin-file-path=${file}`], {
    cwd: repoRoot,
    input: text,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`biome format ${file} failed:\n${result.stderr || result.error}`);
  return result.stdout;
}

export interface ReportCheck {
  reportName: string;
  file: string;
  /** `missing`: no committed report; `changed`: it differs from the sources' API. */
  state: 'same' | 'changed' | 'missing';
  /** For a changed report, its lines removed (`-`) and added (`+`). */
  diff: string[];
}

/** Compares the generated reports with the committed ones. */
export function checkReports(generated = generateReports()): ReportCheck[] {
  return generated.map(({ reportName, file, text }) => {
    let committed: string;
    try {
      committed = readFileSync(file, 'utf8');
    } catch {
      return { reportName, file, state: 'missing', diff: [] };
    }
    if (normalize(committed) === normalize(text)) return { reportName, file, state: 'same', diff: [] };
    return { reportName, file, state: 'changed', diff: lineDiff(normalize(committed), normalize(text)) };
  });
}

/** Writes the generated reports over the committed ones; returns the names of those that changed. */
export function updateReports(generated = generateReports()): string[] {
  mkdirSync(reportFolder, { recursive: true });
  const changed = checkReports(generated).filter((check) => check.state !== 'same');
  for (const { file, text } of generated) writeFileSync(file, text);
  return changed.map((check) => check.reportName);
}

/** A readable summary of stale reports, ending with what to run; empty when all are up to date. */
export function describeStaleReports(checks: ReportCheck[], maxLines = 40): string {
  const stale = checks.filter((check) => check.state !== 'same');
  if (stale.length === 0) return '';
  const parts = stale.map((check) => {
    const where = `packages/core/api/${check.reportName}.api.md`;
    if (check.state === 'missing') return `${where}: missing`;
    const shown = check.diff.slice(0, maxLines);
    const more = check.diff.length > shown.length ? [`  ... ${check.diff.length - shown.length} more lines`] : [];
    const added = check.diff.filter((line) => line.startsWith('+')).length;
    return [`${where}: ${added} lines added, ${check.diff.length - added} removed`, ...shown, ...more].join('\n');
  });
  return [
    'The public API of @annals/core differs from its committed API report:',
    ...parts,
    `If the change is intended, run \`${updateCommand}\` and commit packages/core/api/.`,
  ].join('\n\n');
}

function normalize(text: string): string {
  return text.replace(/\r\n/g, '\n');
}

/** The lines only in `before` (`- `) or only in `after` (`+ `), in order: a longest-common-subsequence diff. */
function lineDiff(before: string, after: string): string[] {
  const a = before.split('\n');
  const b = after.split('\n');
  // Common prefix and suffix first: reports change a few lines at a time.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const x = a.slice(start, endA);
  const y = b.slice(start, endB);
  if (x.length * y.length > 4_000_000) return [...x.map((line) => `- ${line}`), ...y.map((line) => `+ ${line}`)];
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      const row = lcs[i] as number[];
      row[j] = x[i] === y[j] ? (lcs[i + 1]?.[j + 1] ?? 0) + 1 : Math.max(lcs[i + 1]?.[j] ?? 0, row[j + 1] ?? 0);
    }
  }
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      i++;
      j++;
    } else if (i < x.length && (j === y.length || (lcs[i + 1]?.[j] ?? 0) >= (lcs[i]?.[j + 1] ?? 0))) {
      lines.push(`- ${x[i++]}`);
    } else {
      lines.push(`+ ${y[j++]}`);
    }
  }
  return lines;
}

function main(check: boolean): void {
  const started = Date.now();
  const generated = generateReports();
  if (check) {
    const summary = describeStaleReports(checkReports(generated));
    if (summary) {
      console.error(summary);
      process.exitCode = 1;
    } else {
      console.log(`API reports are up to date (${Date.now() - started} ms).`);
    }
  } else {
    const changed = updateReports(generated);
    const names = changed.length > 0 ? `updated: ${changed.join(', ')}` : 'no change';
    console.log(`API reports written to packages/core/api/ (${names}, ${Date.now() - started} ms).`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.includes('--check'));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  }
}
