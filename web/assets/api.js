// Calls to the box-office API from the pages: JSON in and out, problem+json turned into an
// ApiError that keeps every member the server sent, the admin token as a bearer header, and an
// Idempotency-Key on every unsafe request so that a retry after a lost answer is safe.

const TOKEN_KEY = 'box-office.admin-token';
/** Unsafe requests are retried this many times on 503 or a lost connection, with the same key. */
const RETRIES = 2;
const RETRY_WAIT_MAX_MS = 3000;

/**
 * The admin token lives only in this tab's sessionStorage: gone when the tab closes, never
 * sent anywhere but our own API, never in a cookie the browser would attach by itself.
 */
export const adminToken = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  /** @param {string} token */
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/**
 * @typedef {{ title: string, detail: string, code: string, status: number, request_id?: string,
 *   errors?: Array<{ path: string, message: string }>, [member: string]: unknown }} Problem
 */

export class ApiError extends Error {
  /** @param {Problem} problem */
  constructor(problem) {
    super(`${problem.title}: ${problem.detail}`);
    this.problem = problem;
    this.status = problem.status;
    this.code = problem.code;
  }
}

/** Server time minus this browser's, from the Date header of the latest answer (±1 s). */
let serverOffsetMs = 0;
export const serverNow = () => Date.now() + serverOffsetMs;

/** 32 hex digits. crypto.randomUUID needs a secure context; plain http on a LAN address is not one. */
function newIdempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @param {string} path
 * @param {{ method?: string, body?: unknown, admin?: boolean, headers?: Record<string, string> }} [options]
 * @returns {Promise<any>} the parsed JSON body
 */
export async function api(path, { method = 'GET', body, admin = false, headers = {} } = {}) {
  const unsafe = method !== 'GET' && method !== 'HEAD';
  /** @type {Record<string, string>} */
  const sent = { accept: 'application/json', ...headers };
  const token = adminToken.get();
  if (admin && token !== null) sent.authorization = `Bearer ${token}`;
  if (body !== undefined) sent['content-type'] = 'application/json';
  if (unsafe) sent['idempotency-key'] = newIdempotencyKey();
  const init = { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body) };

  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      if (unsafe && attempt < RETRIES) {
        await sleep(500 * (attempt + 1));
        continue;
      }
      throw new ApiError({
        title: "Can't reach the server",
        detail: 'The request did not get an answer. Check the connection and try again.',
        code: 'network_error',
        status: 0,
      });
    }
    observeDate(response);
    if (response.ok) return response.status === 204 ? null : response.json();
    const problem = await readProblem(response);
    // The same Idempotency-Key makes a retry safe even when the first attempt took effect.
    if (unsafe && response.status === 503 && attempt < RETRIES) {
      await sleep(Math.min(RETRY_WAIT_MAX_MS, 1000 * Number(response.headers.get('retry-after') ?? 1)));
      continue;
    }
    throw new ApiError(problem);
  }
}

/** @param {Response} response @returns {Promise<Problem>} */
async function readProblem(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (typeof body === 'object' && body !== null && typeof body.title === 'string') return body;
  } catch {
    // Not JSON: a proxy's error page, say. Described below from the status alone.
  }
  return {
    title: response.statusText || `HTTP ${response.status}`,
    detail: `The server answered ${response.status} without an explanation.`,
    code: 'http_error',
    status: response.status,
  };
}

/** @param {Response} response */
function observeDate(response) {
  const date = Date.parse(response.headers.get('date') ?? '');
  // The header counts whole seconds: on average the true time is half a second later.
  if (!Number.isNaN(date)) serverOffsetMs = date + 500 - Date.now();
}
