// The contract check: every response an app built in this process sends is validated against
// that app's own OpenAPI document (app.swagger()) for its route, method, status and content
// type, and must carry the security headers. Responses are caught through Fastify's
// `fastify.initialization` diagnostics channel, so apps built by helpers.harness() are checked
// too. A test file calls installContractCheck() at the top and contractTest() at the end.
//
// Also here: contractHarness(), harness() with a wrapped store, for tests that inject faults.
import assert from 'node:assert/strict';
import { subscribe } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Problem } from '../../src/http/schemas.ts';
import type { Store } from '../../src/storage/store.ts';
import { type App, buildApp } from '../../src/app.ts';
import { type TestBackend, type Harness, harness, testConfig } from './helpers.ts';

// ajv 8 is Fastify's own dependency (the top-level `ajv` is eslint's ajv 6); load that copy.
const requireFromFastify = createRequire(createRequire(import.meta.url).resolve('@fastify/ajv-compiler'));
type Validate = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
const { default: Ajv2020 } = requireFromFastify('ajv/dist/2020') as {
  default: new (options: object) => {
    compile(schema: object): Validate;
    addFormat(name: string, validate: (value: string) => boolean): void;
  };
};
const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
ajv.addFormat(
  'date-time',
  (value) =>
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value) && !Number.isNaN(Date.parse(value)),
);
const validateProblem = ajv.compile(Problem);

/** Headers every response must carry (OWASP's set for API responses, plus CORP). */
export const SECURITY_HEADERS = [
  'content-security-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
  'cross-origin-resource-policy',
];

/** Headers a page (HTML) must carry besides: helmet's document headers. */
export const PAGE_SECURITY_HEADERS = [
  ...SECURITY_HEADERS,
  'referrer-policy',
  'cross-origin-opener-policy',
  'origin-agent-cluster',
  'x-dns-prefetch-control',
];

interface OpenApiResponse {
  content?: Record<string, { schema?: object }>;
}
type OpenApiDocument = { paths: Record<string, Record<string, { responses: Record<string, OpenApiResponse> }>> };

const checked = { count: 0, violations: [] as string[], seen: new Set<string>() };
const documents = new WeakMap<FastifyInstance, OpenApiDocument>();
const validators = new WeakMap<object, Validate>();

const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');

export function contractViolation(
  app: FastifyInstance,
  response: {
    method: string;
    route: string | undefined;
    status: number;
    type: string;
    headers: Record<string, unknown>;
    payload: unknown;
  },
): string | null {
  const where = `${response.method} ${response.route ?? '(no route)'} ${response.status}`;
  for (const header of SECURITY_HEADERS)
    if (response.headers[header] === undefined) return `${where}: no ${header} header`;
  if (response.method === 'HEAD' || typeof response.payload !== 'string') return null;
  if (response.route === undefined) {
    // Unknown routes answer with the not_found problem from the not-found handler.
    if (!response.type.startsWith('application/problem+json')) return `${where}: not problem+json`;
    return validateProblem(JSON.parse(response.payload)) ? null : `${where}: not a problem`;
  }
  let document = documents.get(app);
  if (document === undefined) {
    document = (app as unknown as { swagger(): OpenApiDocument }).swagger();
    documents.set(app, document);
  }
  const operation = document.paths[openApiPath(response.route)]?.[response.method.toLowerCase()];
  if (operation === undefined) return null; // hidden from the document (docs, openapi.json)
  const documented = operation.responses[String(response.status)];
  if (documented === undefined) return `${where}: status not documented`;
  if (documented.content === undefined) return null;
  const mediaType = response.type.split(';')[0]!.trim();
  const schema = documented.content[mediaType]?.schema;
  if (schema === undefined)
    return `${where}: content type ${mediaType} not documented (${Object.keys(documented.content).join(', ')})`;
  if (!/[/+]json$/.test(mediaType)) return null; // text (metrics): its media type is the contract
  let validate = validators.get(schema);
  if (validate === undefined) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  checked.seen.add(where);
  if (validate(JSON.parse(response.payload))) return null;
  return `${where}: ${validate.errors?.map((e) => `${e.instancePath} ${e.message}`).join('; ')} in ${response.payload.slice(0, 300)}`;
}

let installed = false;

/** Checks every response of every app built from now on in this process. */
export function installContractCheck(): void {
  if (installed) return;
  installed = true;
  subscribe('fastify.initialization', (message) => {
    const app = (message as { fastify: FastifyInstance }).fastify;
    app.addHook('onSend', async (request, reply, payload) => {
      checked.count++;
      const violation = contractViolation(app, {
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        type: String(reply.getHeader('content-type') ?? ''),
        headers: reply.getHeaders(),
        payload,
      });
      if (violation !== null) checked.violations.push(violation);
      return payload;
    });
  });
}

/**
 * A test that fails if any response so far broke its documented contract. Pass the reason when
 * every suite of the file was skipped (a missing Chromium, no MySQL): there is nothing to check,
 * and an empty check must not pass silently either.
 */
export function contractTest(skip: string | false = false): void {
  test('every response matched its OpenAPI schema and carried the security headers', { skip }, () => {
    assert.ok(checked.count > 0, 'no response was checked');
    assert.deepEqual(checked.violations, []);
  });
}

type Res = Awaited<ReturnType<FastifyInstance['inject']>>;

/** Asserts a problem+json response with this status and code; returns its body. */
export function isProblem(res: Res, status: number, code: string): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json<Record<string, unknown>>();
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  assert.ok(!('hold_id' in body), 'an error body never carries hold_id');
  return body;
}

export interface ContractHarnessOptions {
  env?: Record<string, string>;
  /** Wraps the store the app uses (fault injection); the harness keeps the original. */
  wrapStore?: (store: Store) => Store;
}

/** helpers.harness(), with a wrapped store when asked. */
/**
 * A harness and a second process on its database (another app and store, the same clock): for
 * what must hold however many processes serve one sale. Server backends only.
 */
export async function twoProcesses(
  backend: TestBackend,
  env: Record<string, string>,
): Promise<{
  h: Harness & { close: () => Promise<void> };
  second: { app: App; store: Store };
  close: () => Promise<void>;
}> {
  const h = await contractHarness(backend, { env });
  const store = await backend.reopen(h.url);
  const second = { app: await buildApp({ config: testConfig(env), store, clock: h.clock }), store };
  await second.app.ready();
  return {
    h,
    second,
    close: async () => {
      await second.app.close();
      await second.store.close();
      await h.close();
    },
  };
}

export async function contractHarness(
  backend: TestBackend,
  options: ContractHarnessOptions = {},
): Promise<Harness & { close: () => Promise<void> }> {
  installContractCheck();
  return harness(backend, options.env ?? {}, options.wrapStore);
}
