// The change feed over HTTP: the replayable log (GET /changes, GET /events/:id/changes) and live
// availability over Server-Sent Events (GET /events/:id/stream, GET /stream).
import { Type } from '@sinclair/typebox';
import type { AdminGuard, App } from '../http/types.ts';
import { CHANGE_TYPES } from '../model.ts';
import { IdParams, Timestamp, problems } from '../http/schemas.ts';
import { type Audience, renderChange } from './render.ts';
import type { ChangesService } from './changes.service.ts';
import { STREAM_COALESCE_MS, STREAM_HEARTBEAT_MS, Streams } from './streams.ts';

/** Changes per page of GET /changes when ?limit= is not given. */
const PAGE_SIZE_DEFAULT_CHANGES = 100;
/** Changes per page at most (the ?limit= pattern below spells it out). */
const PAGE_SIZE_MAX_CHANGES = 1000;

const Position = Type.String({ pattern: '^[0-9]{1,18}$', description: 'a change position' });

const ChangeSchema = Type.Object({
  position: Type.String({
    description: 'Global and increasing; a number may be skipped (a change rolled back), never a change',
  }),
  type: Type.String({ enum: [...CHANGE_TYPES] }),
  event_id: Type.Integer(),
  hold_id: Type.Union([Type.Integer(), Type.Null()]),
  booking_id: Type.Union([Type.Integer(), Type.Null()]),
  qty: Type.Union([Type.Integer(), Type.Null()]),
  customer: Type.Optional(
    Type.Union([Type.String(), Type.Null()], { description: "The hold's customer: in the admin log only" }),
  ),
  at: Timestamp,
  snapshot: Type.Object(
    {
      total: Type.Integer(),
      available: Type.Integer(),
      held: Type.Integer(),
      booked: Type.Integer(),
      waiting: Type.Integer({ description: 'Seats asked for by waiting-list entries not yet offered any' }),
    },
    { description: "The event's snapshot just after this change, as GET /events/:id gives it" },
  ),
});

const ChangePage = Type.Object({
  changes: Type.Array(ChangeSchema),
  next_cursor: Type.String({ description: 'Pass as ?after= to read on; the same cursor again when nothing was new' }),
});

const PageQuery = Type.Object(
  {
    after: Type.Optional({
      ...Position,
      description: 'a change position, or the next_cursor of a previous page (default 0: from the start)',
    }),
    limit: Type.Optional(
      Type.String({
        pattern: '^([1-9]|[1-9][0-9]|[1-9][0-9][0-9]|1000)$',
        description: `a whole number from 1 to ${PAGE_SIZE_MAX_CHANGES} (default ${PAGE_SIZE_DEFAULT_CHANGES})`,
      }),
    ),
  },
  { additionalProperties: false },
);

const StreamQuery = Type.Object(
  {
    include: Type.Optional(
      Type.String({ enum: ['changes'], description: 'changes: every change too, gapless from Last-Event-ID' }),
    ),
    after: Type.Optional({ ...Position, description: 'resume after this position (as Last-Event-ID does)' }),
  },
  { additionalProperties: false },
);

const EventStream = {
  description:
    'text/event-stream. `availability` messages (the snapshot, first at once, then on every change, ' +
    `at most one per ${STREAM_COALESCE_MS} ms per event), \`change\` messages with include=changes; ` +
    `\`id:\` is the change position. A comment line every ${STREAM_HEARTBEAT_MS / 1000} s keeps proxies open.`,
  content: { 'text/event-stream': { schema: Type.String() } },
};

export async function changeRoutes(
  app: App,
  { changes, requireAdmin }: { changes: ChangesService; requireAdmin: AdminGuard },
): Promise<void> {
  const pageOf = async (query: { after?: string; limit?: string }, audience: Audience, eventId?: number) => {
    const page = await changes.page(
      Number(query.after ?? 0),
      Number(query.limit ?? PAGE_SIZE_DEFAULT_CHANGES),
      eventId,
    );
    return { changes: page.changes.map((change) => renderChange(change, audience)), next_cursor: String(page.next) };
  };

  app.get(
    '/changes',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'The change log of every event, in position order',
        description: 'Replayable: a consumer that was away resumes with the last next_cursor and misses nothing.',
        tags: ['changes'],
        security: [{ adminBearer: [] }],
        querystring: PageQuery,
        response: { 200: ChangePage, ...problems('validation_failed', 'unauthorized') },
      },
    },
    async (request) => pageOf(request.query, 'staff'),
  );

  app.get(
    '/events/:id/changes',
    {
      schema: {
        summary: "One event's change log, in position order",
        tags: ['changes'],
        params: IdParams,
        querystring: PageQuery,
        response: { 200: ChangePage, ...problems('validation_failed', 'not_found') },
      },
    },
    async (request) => pageOf(request.query, 'public', Number(request.params.id)),
  );

  const streams = new Streams(changes);
  // Open streams never end by themselves: end them, or closing the server would wait forever.
  app.addHook('preClose', (done) => {
    streams.endAll();
    done();
  });

  app.get(
    '/events/:id/stream',
    {
      schema: {
        summary: 'Live availability of one event (Server-Sent Events)',
        tags: ['changes'],
        params: IdParams,
        querystring: StreamQuery,
        response: { 200: EventStream, ...problems('validation_failed', 'not_found') },
      },
    },
    async (request, reply) => {
      // An event that is not there: a 404, before the stream starts.
      await streams.open(request, reply, Number(request.params.id), request.query);
    },
  );

  app.get(
    '/stream',
    {
      schema: {
        summary: 'Live availability of every event (Server-Sent Events)',
        tags: ['changes'],
        querystring: StreamQuery,
        response: { 200: EventStream, ...problems('validation_failed') },
      },
    },
    async (request, reply) => {
      await streams.open(request, reply, 'all', request.query);
    },
  );
}
