// The Idempotency-Key statements for PostgreSQL and PGlite, split from postgres.store.ts only
// to keep that file short. Keys and bodies are bytea; arrays of them travel as hex text, as in
// insertHolds.
import type { PgDatabase, SqlRunner } from '../db/postgres.ts';
import type { IdempotencyKeyRow, LifecycleStore, Tx } from './store.ts';

const runner = (tx: Tx): SqlRunner => tx as unknown as SqlRunner;
const hex = (buffer: Buffer): string => buffer.toString('hex');

type IdempotencyStatements = Pick<LifecycleStore,
  'claimIdempotencyKey' | 'findIdempotencyKey' | 'lockIdempotencyClaims' | 'completeIdempotencyKeys' | 'releaseIdempotencyKey' |
  'purgeIdempotencyKeys'>;

export function idempotencyStatements(db: PgDatabase): IdempotencyStatements {
  return {
    async claimIdempotencyKey(claim) {
      // A conflicting insert waits for the other claim's statement to commit, then sees its
      // row: of many concurrent claims on one key exactly one returns a row.
      const { rows } = await db.query(
        `insert into idempotency_keys as k
                (key_hash, request_hash, claim_id, locked_at, created_at, expires_at)
         values ($1, $2, $3, $4, $4, $5)
         on conflict (key_hash) do update
            set request_hash = excluded.request_hash, claim_id = excluded.claim_id,
                locked_at = excluded.locked_at, created_at = excluded.created_at,
                expires_at = excluded.expires_at, response_status = null, response_body = null
          where k.expires_at <= $4
             or (k.response_status is null and k.locked_at <= $6
                 and k.request_hash = excluded.request_hash)
         returning claim_id`,
        [claim.keyHash, claim.requestHash, claim.claimId, claim.now, claim.expiresAt, claim.staleBefore],
      );
      return rows.length > 0;
    },

    async findIdempotencyKey(keyHash): Promise<IdempotencyKeyRow | null> {
      const { rows } = await db.query<{
        request_hash: Uint8Array; claim_id: string; locked_at: Date; response_status: number | null;
        response_body: Uint8Array | null; expires_at: Date;
      }>(
        `select request_hash, claim_id, locked_at, response_status, response_body, expires_at
           from idempotency_keys where key_hash = $1`,
        [keyHash],
      );
      const row = rows[0];
      if (row === undefined) return null;
      return {
        keyHash,
        requestHash: Buffer.from(row.request_hash),
        claimId: row.claim_id,
        lockedAt: row.locked_at,
        responseStatus: row.response_status,
        responseBody: row.response_body === null ? null : Buffer.from(row.response_body),
        expiresAt: row.expires_at,
      };
    },

    async lockIdempotencyClaims(tx, claims) {
      const { rows } = await runner(tx).query<{ claim_id: string }>(
        `select k.claim_id
           from idempotency_keys k
           join unnest($1::text[], $2::text[]) as c (key_hash, claim_id)
             on k.key_hash = decode(c.key_hash, 'hex') and k.claim_id = c.claim_id
          where k.response_status is null
          order by k.key_hash
            for update of k`,
        [claims.map((c) => hex(c.keyHash)), claims.map((c) => c.claimId)],
      );
      return new Set(rows.map((row) => row.claim_id));
    },

    async completeIdempotencyKeys(tx, completions) {
      const { rowCount } = await runner(tx).query(
        `update idempotency_keys k
            set response_status = c.status, response_body = decode(c.body, 'hex')
           from unnest($1::text[], $2::text[], $3::int[], $4::text[]) as c (key_hash, claim_id, status, body)
          where k.key_hash = decode(c.key_hash, 'hex') and k.claim_id = c.claim_id
            and k.response_status is null`,
        [
          completions.map((c) => hex(c.keyHash)),
          completions.map((c) => c.claimId),
          completions.map((c) => c.status),
          completions.map((c) => hex(c.body)),
        ],
      );
      return rowCount;
    },

    async releaseIdempotencyKey(keyHash, claimId) {
      await db.query(
        `delete from idempotency_keys
          where key_hash = $1 and claim_id = $2 and response_status is null`,
        [keyHash, claimId],
      );
    },

    async purgeIdempotencyKeys(now, limit) {
      // Bounded and skip-locked, so a purge never waits on a claim or holds many rows at once.
      const { rowCount } = await db.query(
        `delete from idempotency_keys
          where key_hash in (select key_hash from idempotency_keys
                              where expires_at <= $1
                              order by expires_at
                              limit $2
                                for update skip locked)`,
        [now, limit],
      );
      return rowCount;
    },
  };
}
