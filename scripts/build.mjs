// `npm run build` (also run by `npm ci`, as `prepare`): compiles src/ to dist/ with tsc, copies
// the SQL migrations beside the compiled code that reads them, and makes the migrated PGlite
// template (src/db/pglite-template.ts) so that the first `npm start` does not have to.
// Plain JavaScript, so that it runs with nothing but Node.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = Date.now();
rmSync(`${root}dist`, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
cpSync(`${root}src/db/migrations`, `${root}dist/db/migrations`, { recursive: true });
/** @returns {Promise<typeof import('../src/db/pglite.ts')>} src/db/pglite.ts, compiled a moment ago */
const compiledPglite = () => import(`${root}dist/db/pglite.js`);
const { openPglite } = await compiledPglite();
await (await openPglite(undefined)).close();
console.log(`built dist/ and the PGlite template in ${((Date.now() - started) / 1000).toFixed(1)} s`);
