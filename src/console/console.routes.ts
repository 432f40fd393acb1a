// The box-office console: the operator pages and the buyer's page, plain HTML, CSS and ES
// modules from web/, served by this app so that they get the same security headers (the global
// onRequest hook) and speak to the API on the same origin, as the content security policy asks.
// There is no build step: the files are read once, at the first app built in the process, and
// kept in memory with their gzip and brotli forms, so a page costs one compression per process
// (on its first request).
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminGuard, App } from '../http/types.ts';
import type { Config } from '../config.ts';
import { notFound } from '../errors.ts';
import { problems } from '../http/schemas.ts';

/** web/ beside src/ and dist/: this file is two levels down in both. */
const WEB_DIR = new URL('../../web/', import.meta.url);

const MEDIA_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

interface Asset {
  mediaType: string;
  /** A strong validator of the file's content, one per encoding sent. */
  digest: string;
  identity: Buffer;
  /** Compressed forms, made on first request: not at start, which they would slow by ~0.2 s. */
  gzip?: Buffer;
  br?: Buffer;
}

export function encoded(asset: Asset, encoding: Encoding): Buffer {
  if (encoding === 'gzip') return (asset.gzip ??= gzipSync(asset.identity, { level: 9 }));
  if (encoding === 'br') {
    return (asset.br ??= brotliCompressSync(asset.identity, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
  }
  return asset.identity;
}

type Encoding = 'br' | 'gzip' | 'identity';

/** Pages by URL: the operator console (events, one event) and the buyer's flow. */
const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/console': 'index.html',
  '/console/events/:id': 'event.html',
  '/buy': 'buy.html',
};

let loading: Promise<Map<string, Asset>> | undefined;

/** Every file of web/ (pages at the top, scripts and styles in assets/), by path. */
export function consoleAssets(): Promise<Map<string, Asset>> {
  loading ??= (async () => {
    const assets = new Map<string, Asset>();
    for (const name of await readdir(WEB_DIR, { recursive: true })) {
      const mediaType = MEDIA_TYPES[name.split('.').pop() ?? ''];
      if (mediaType === undefined) continue;
      const identity = await readFile(new URL(name, WEB_DIR));
      assets.set(name.replaceAll('\\', '/'), {
        mediaType,
        digest: createHash('sha256').update(identity).digest('base64url').slice(0, 22),
        identity,
      });
    }
    return assets;
  })();
  return loading;
}

/** The best encoding the client accepts; q=0 refuses one. */
function negotiate(acceptEncoding: string | undefined): Encoding {
  const accepted = new Set(
    (acceptEncoding ?? '')
      .split(',')
      .map((part) => part.trim().split(';'))
      .filter(([, q]) => q === undefined || !/^\s*q=0(\.0*)?\s*$/.test(q))
      // split() always yields a first part, so `name` is there.
      .map(([name]) => name!.trim().toLowerCase()),
  );
  if (accepted.has('br')) return 'br';
  if (accepted.has('gzip')) return 'gzip';
  return 'identity';
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset) {
  const encoding = negotiate(request.headers['accept-encoding']);
  const etag = `"${asset.digest}${encoding === 'identity' ? '' : `-${encoding}`}"`;
  // Revalidated on every load (a 304 when unchanged), so a new release is picked up at once
  // without fingerprinted file names, which would need a build step.
  reply.header('cache-control', 'no-cache').header('etag', etag).header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  if (encoding !== 'identity') reply.header('content-encoding', encoding);
  return reply.type(asset.mediaType).send(encoded(asset, encoding));
}

export async function consoleRoutes(
  app: App,
  { requireAdmin, config }: { requireAdmin: AdminGuard; config: Pick<Config, 'adminToken'> },
): Promise<void> {
  const assets = await consoleAssets();
  const hidden = { schema: { hide: true } };

  for (const [url, file] of Object.entries(PAGES)) {
    app.get(url, hidden, (request, reply) => send(request, reply, assets.get(file)!));
  }
  app.get('/assets/*', hidden, (request, reply) => {
    // Only files read at start are served: a path that names anything else is simply unknown.
    const path = (request.params as { '*': string })['*'];
    const asset = assets.get(`assets/${path}`);
    if (asset === undefined) throw notFound('asset', path);
    return send(request, reply, asset);
  });

  app.get(
    '/admin/session',
    {
      onRequest: requireAdmin,
      schema: {
        summary: 'Check admin credentials (the console signs in with this)',
        description: '200 when the bearer token is accepted, or when ADMIN_TOKEN is unset and admin routes are open.',
        tags: ['admin'],
        security: [{ adminBearer: [] }],
        response: {
          200: Type.Object({
            admin: Type.Boolean(),
            token_required: Type.Boolean({ description: 'false when ADMIN_TOKEN is unset' }),
          }),
          ...problems('unauthorized'),
        },
      },
    },
    async () => ({ admin: true, token_required: config.adminToken !== undefined }),
  );
}
