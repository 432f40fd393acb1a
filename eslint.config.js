import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { noImportCycle } from './scripts/lint/no-import-cycle.js';

/**
 * The no-unsafe-* family, off where the code reads untyped values on purpose (see below).
 * @type {import('eslint').Linter.RulesRecord}
 */
const NO_UNSAFE_OFF = {
  '@typescript-eslint/no-unsafe-argument': 'off',
  '@typescript-eslint/no-unsafe-assignment': 'off',
  '@typescript-eslint/no-unsafe-call': 'off',
  '@typescript-eslint/no-unsafe-member-access': 'off',
  '@typescript-eslint/no-unsafe-return': 'off',
};

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'dist/', '.bench/', 'docs/'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // Type-aware rules: they read the types the compiler sees, through the nearest tsconfig.json
      // (web/ has its own). Every file linted is in one of them, so every file gets the typed rules.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX, local: { rules: { 'no-import-cycle': noImportCycle } } },
    settings: {
      // Without these, import-x parses only .js files and finds no module to follow: no cycle.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.js', '.mjs'] },
      'import-x/resolver-next': [createNodeResolver()],
    },
    rules: {
      // Cycles that survive into the JavaScript (node_modules is not ours to untangle).
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // import-x/no-cycle skips `import type`; this one follows those too (scripts/lint/).
      'local/no-import-cycle': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // A promise nobody awaits loses its error: an unhandled rejection ends the process.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test collects these itself.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // Off: an async function without an await is how this code meets a promise-returning contract
      // (Fastify plugins and handlers, Store methods, test fakes), and `async` makes its throw a
      // rejection. Dropping `async` to please the rule would turn those into synchronous throws.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read response bodies with light-my-request's res.json(), which is `any`, and assert on
    // them field by field. Typing each body is left for later; test/support/ is held to these rules.
    files: ['test/*.test.ts'],
    rules: NO_UNSAFE_OFF,
  },
  {
    // The console's modules leave parameters untyped on purpose (noImplicitAny is off in
    // web/tsconfig.json; `tsc -p web` checks what is typed), so every use of a parameter is "unsafe"
    // to these rules. The other type-checked rules still apply there.
    files: ['web/assets/*.js'],
    rules: NO_UNSAFE_OFF,
  },
);
