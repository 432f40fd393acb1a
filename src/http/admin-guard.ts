// The guard on POST /events and /admin/*: a preHandler comparing the bearer token with
// ADMIN_TOKEN. Without ADMIN_TOKEN it lets everyone through, and says so once at start.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { DomainError } from '../errors.ts';
import type { AdminGuard } from './types.ts';

export function adminGuard(adminToken: string | undefined, log: FastifyBaseLogger): AdminGuard {
  if (adminToken === undefined) {
    log.warn('ADMIN_TOKEN is not set: POST /events and /admin/* are open to anyone. Set it outside local demos.');
    return async () => {};
  }
  const expected = createHash('sha256').update(adminToken).digest();
  return async (request, reply) => {
    const header = request.headers.authorization ?? '';
    const presented = createHash('sha256')
      .update(header.replace(/^Bearer\s+/i, ''))
      .digest();
    // Equal-length digests compared in constant time: no timing hint about the token.
    if (!/^Bearer\s+/i.test(header) || !timingSafeEqual(presented, expected)) {
      reply.header('www-authenticate', 'Bearer');
      throw new DomainError('unauthorized', 'this route needs Authorization: Bearer <ADMIN_TOKEN>');
    }
  };
}
