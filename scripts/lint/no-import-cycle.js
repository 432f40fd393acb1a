// A local ESLint rule: no module may reach itself through its static imports, type-only imports
// included. import-x/no-cycle skips `import type` by design (such an import vanishes from the
// compiled JavaScript), and that is how the old cycles went in; a type cycle still ties two modules
// together, so this rule follows every top-level `import`, `import type` and `export ... from` of a
// relative path. Dynamic `import()` is not followed: it is the deliberate way to load lazily.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Each file's imports, kept while the file is unchanged (an editor's ESLint lives long).
 * @type {Map<string, { mtimeMs: number, imports: { target: string, line: number }[] }>}
 */
const importsOf = new Map();

/**
 * The relative modules that `file` imports statically, with the line of each import.
 * @param {string} file
 * @param {string} [text] the file's contents, when the linter already holds them
 */
function staticImports(file, text) {
  const { mtimeMs } = statSync(file);
  const cached = importsOf.get(file);
  if (cached !== undefined && cached.mtimeMs === mtimeMs && text === undefined) return cached.imports;
  const source = ts.createSourceFile(file, text ?? readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const found = [];
  for (const statement of source.statements) {
    const specifier =
      ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement) ? statement.moduleSpecifier : undefined;
    if (specifier === undefined || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) continue;
    const target = path.resolve(path.dirname(file), specifier.text);
    if (!existsSync(target)) continue;
    const line = source.getLineAndCharacterOfPosition(statement.getStart(source)).line + 1;
    found.push({ target, line });
  }
  importsOf.set(file, { mtimeMs, imports: found });
  return found;
}

/**
 * A path of imports from `start` back to `goal`, as file names, or undefined if there is none.
 * @param {string} start
 * @param {string} goal
 */
function pathBack(start, goal) {
  /** @type {Map<string, string | null>} each file reached, and the file it was reached from */
  const cameFrom = new Map([[start, null]]);
  const queue = [start];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const { target } of staticImports(file)) {
      if (target === goal) {
        const route = [goal];
        for (let at = /** @type {string | null} */ (file); at !== null; at = cameFrom.get(at) ?? null)
          route.unshift(at);
        return route;
      }
      if (cameFrom.has(target)) continue;
      cameFrom.set(target, file);
      queue.push(target);
    }
  }
  return undefined;
}

/** @type {import('eslint').Rule.RuleModule} */
export const noImportCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid import cycles, through type-only imports too' },
    schema: [],
    messages: { cycle: 'Import cycle: {{route}}' },
  },
  create(context) {
    const file = context.physicalFilename;
    if (!path.isAbsolute(file)) return {};
    return {
      Program(program) {
        const root = context.cwd;
        for (const { target, line } of staticImports(file, context.sourceCode.text)) {
          const route = target === file ? [file] : pathBack(target, file);
          if (route === undefined) continue;
          const node = program.body.find((statement) => statement.loc?.start.line === line) ?? program;
          const shown = [file, ...route].map((f) => path.relative(root, f)).join(' → ');
          context.report({ node, messageId: 'cycle', data: { route: shown } });
        }
      },
    };
  },
};
