// Per-client limits for the routes that cost seats (POST /holds, POST /book), through
// @fastify/rate-limit registered with global: false in app.ts. The counters live in this
// process's memory: with several processes, each allows its own share.

/** Route options that limit each client to `perMinute` requests; none when it is 0 (off). */
export function rateLimited(perMinute: number): { config?: { rateLimit: { max: number; timeWindow: number } } } {
  if (perMinute === 0) return {};
  return { config: { rateLimit: { max: perMinute, timeWindow: 60_000 } } };
}
