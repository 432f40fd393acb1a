// The local lint rule that keeps import cycles out, type-only ones included (scripts/lint/).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { noImportCycle } from '../scripts/lint/no-import-cycle.js';

const dir = mkdtempSync(path.join(tmpdir(), 'no-import-cycle-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const files: Record<string, string> = {
  // a → b → c → a, and the last step is type-only: import-x/no-cycle does not see this one.
  'a.ts': "import { b } from './b.ts';\nexport const a = () => b;\n",
  'b.ts': "import { c } from './c.ts';\nexport const b = () => c;\n",
  'c.ts': "import type { A } from './d.ts';\nimport { a } from './a.ts';\nexport const c = (x: A) => a ?? x;\n",
  'd.ts': "export type A = number;\nexport { c } from './c.ts';\n",
  // No cycle: e imports f, f imports nothing of ours, and a dynamic import back is allowed.
  'e.ts': "import { f } from './f.ts';\nexport const e = f;\n",
  'f.ts':
    "import { readFileSync } from 'node:fs';\nexport const f = () => import('./e.ts').then(() => readFileSync);\n",
};
for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);

function cycles(name: string): string[] {
  const filename = path.join(dir, name);
  const messages = new Linter({ cwd: dir }).verify(
    readFileSync(filename, 'utf8'),
    {
      files: ['**/*.ts'],
      languageOptions: { parser: tseslint.parser },
      plugins: { local: { rules: { 'no-import-cycle': noImportCycle } } },
      rules: { 'local/no-import-cycle': 'error' },
    },
    filename,
  );
  return messages.map((m) => `${m.line}: ${m.message}`);
}

describe('local/no-import-cycle', () => {
  test('a cycle through value imports is reported at the import that starts it', () => {
    assert.deepEqual(cycles('a.ts'), ['1: Import cycle: a.ts → b.ts → c.ts → a.ts']);
  });

  test('a cycle closed by `import type` is reported too', () => {
    assert.deepEqual(cycles('c.ts'), [
      '1: Import cycle: c.ts → d.ts → c.ts',
      '2: Import cycle: c.ts → a.ts → b.ts → c.ts',
    ]);
    assert.deepEqual(cycles('d.ts'), ['2: Import cycle: d.ts → c.ts → d.ts']);
  });

  test('no cycle, and a dynamic import back, is no problem', () => {
    assert.deepEqual(cycles('e.ts'), []);
    assert.deepEqual(cycles('f.ts'), []);
  });
});
