// The HTTP ceiling: a minimal Fastify server whose POST /holds parses the body and returns a
// canned hold, with no database and no validation. Whatever the box office reaches is measured
// against this, under the same load, on the same machine, in the same run.
import Fastify from 'fastify';

// The box office's router limit on a parameter's length (MAX_PARAM_LENGTH, src/http/
// problem.handlers.ts; not imported, to keep this server bare): a queue ticket is longer than
// Fastify's default 100 characters, which would make GET /queue/:ticket a canned 404.
const MAX_PARAM_LENGTH = 1024;
const app = Fastify({ logger: false, routerOptions: { maxParamLength: MAX_PARAM_LENGTH } });
let nextId = 1;
const expiresAt = new Date(Date.now() + 120_000).toISOString();

app.post<{ Body: { hold?: { event_id?: number; qty?: number } } }>('/holds', async (request, reply) => {
  const hold = request.body.hold ?? {};
  return reply.code(201).send({
    hold_id: nextId++,
    event_id: hold.event_id ?? 1,
    qty: hold.qty ?? 1,
    expires_at: expiresAt,
    payment_token: 'bench-canned-payment-token-0123456789ab',
  });
});

// The queue scenario's ceiling: GET /queue/:ticket with the same URL shape and a status body of
// the same size, canned (no signature check, no schema).
const queueStatus = {
  event_id: 1,
  state: 'waiting',
  position: 1234,
  ahead: 1233,
  eta_seconds: 74,
  sale_opens_at: new Date().toISOString(),
  admission_token: null,
  admission_expires_at: null,
};
app.get<{ Params: { ticket: string } }>('/queue/:ticket', async (_request, reply) =>
  reply.header('cache-control', 'no-store').send(queueStatus),
);

// What the load generator primes each connection with before the clock starts, as on the box office.
app.get('/healthz', async () => ({ status: 'ok' }));

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
const address = app.server.address();
process.send?.({ ready: true, port: typeof address === 'object' && address !== null ? address.port : 0 });

const stop = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
