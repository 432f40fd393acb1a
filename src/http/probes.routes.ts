// What operators and tools poll: liveness, readiness, Prometheus metrics, the OpenAPI document.
import { Type } from '@sinclair/typebox';
import { DomainError, messageOf } from '../errors.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../storage/store.ts';
import { problems } from './schemas.ts';
import type { App } from './types.ts';

/** /readyz answers 503 after this long without an answer from the database. */
const READY_TIMEOUT_MS = 800;

export async function probeRoutes(app: App, { store, metrics }: { store: Store; metrics: Metrics }): Promise<void> {
  const Status = Type.Object({ status: Type.String() });
  app.get(
    '/healthz',
    { schema: { summary: 'The process is up', tags: ['probes'], response: { 200: Status } } },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'The database answers',
        tags: ['probes'],
        response: { 200: Status, ...problems('service_unavailable') },
      },
    },
    async () => {
      // Answers within READY_TIMEOUT_MS whatever the database does: a frozen server must not
      // freeze the probe that is meant to report it.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      });
      try {
        await Promise.race([store.ping(), timeout]);
      } catch (error) {
        throw new DomainError('service_unavailable', `the database is not answering: ${messageOf(error)}`);
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ok' };
    },
  );
  const MetricsText = {
    description: 'Prometheus text exposition format',
    content: { 'text/plain': { schema: Type.String() } },
  };
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['probes'], response: { 200: MetricsText } } },
    async (_request, reply) =>
      // prom-client separates metrics with blank lines, which some scrapers' parsers reject.
      reply.type(metrics.registry.contentType).send((await metrics.registry.metrics()).replace(/\n{2,}/g, '\n')),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
