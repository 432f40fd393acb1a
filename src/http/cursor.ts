// Opaque keyset cursors: the id a page ended at, tagged with what it pages through so that a
// cursor of one listing is refused by another. Opaque to clients, so the encoding can change
// without breaking them. (GET /events keeps its own, older encoding in events.routes.ts.)
import { Type } from '@sinclair/typebox';
import { DomainError } from '../errors.ts';

export const CursorQuery = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,32}$',
  description: 'the next_cursor of a previous page',
});

export const NextCursor = Type.Union([Type.String(), Type.Null()], {
  description: 'Pass as ?cursor= (with the same filters) for the next page; null on the last',
});

export const encodeCursor = (kind: string, id: number): string => Buffer.from(`${kind}:${id}`).toString('base64url');

/** The id in a cursor of this kind; null without a cursor; 400 for one this service did not issue. */
export function decodeCursor(kind: string, cursor: string | undefined): number | null {
  if (cursor === undefined) return null;
  const match = /^([a-z]+):([1-9][0-9]{0,14})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (match === null || match[1] !== kind) {
    throw new DomainError('validation_failed', 'request querystring is invalid', {
      errors: [{ path: 'querystring/cursor', message: 'is not a cursor this listing issued' }],
    });
  }
  return Number(match[2]);
}
