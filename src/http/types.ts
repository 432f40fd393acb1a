// The types the HTTP modules share: the app as routes see it, and the admin guard. They live
// here, not in app.ts, so that nothing imports back up from the composition root.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { QueueService } from '../admission/queue.service.ts';
import type { ChangeFeed } from '../changes/feed.ts';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** A preHandler that lets a request through only with the admin token (http/admin-guard.ts). */
export type AdminGuard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyInstance {
    changeFeed: ChangeFeed;
    queue: QueueService;
  }
}
