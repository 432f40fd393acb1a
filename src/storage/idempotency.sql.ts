// Idempotency-Keys: claim a key, lock the claims of a batch, store their responses in the
// effect's own transaction, release, purge. Key rows come last in the lock order (after the
// event row and its holds and bookings); outside a transaction a key row is only touched by
// single statements that lock nothing else, so they never wait on an event while holding a key.
import type { IdempotencyClaim, IdempotencyCompletion, IdempotencyKeyRow } from '../model.ts';
import { type SqlDatabase, type Tx, bytes } from './sql.ts';

export interface IdempotencyStore {
  /**
   * One statement: inserts the key as in flight, or takes over a row that has expired or whose
   * unfinished claim is stale and was made for the same request. True when the claim is ours.
   */
  claimIdempotencyKey(claim: IdempotencyClaim): Promise<boolean>;
  findIdempotencyKey(keyHash: Buffer): Promise<IdempotencyKeyRow | null>;
  /**
   * Locks the key rows still in flight under these claims until the transaction ends, so no
   * claim can be taken over while its effect is being written; returns the claim ids still held.
   */
  lockIdempotencyClaims(tx: Tx, claims: Array<{ keyHash: Buffer; claimId: string }>): Promise<Set<string>>;
  /**
   * Stores the responses of in-flight keys still owned by the given claims, in one statement;
   * returns how many it stored (fewer means a claim was taken over).
   */
  completeIdempotencyKeys(tx: Tx, completions: IdempotencyCompletion[]): Promise<number>;
  /** Deletes the key if it is still in flight under this claim (the request stored nothing). */
  releaseIdempotencyKey(keyHash: Buffer, claimId: string): Promise<void>;
  /** Deletes up to `limit` keys expired at `now`, skipping rows others have locked. */
  purgeIdempotencyKeys(now: Date, limit: number): Promise<number>;
}

const hex = (buffer: Buffer): string => buffer.toString('hex');

export function idempotencyStatements(db: SqlDatabase): IdempotencyStore {
  const dialect = db.dialect === 'postgres' ? postgresKeys(db) : mysqlKeys(db);
  return {
    ...dialect,

    async findIdempotencyKey(keyHash) {
      const [row] = await db.rows<{
        request_hash: Uint8Array;
        claim_id: string;
        locked_at: Date;
        response_status: number | null;
        response_body: Uint8Array | null;
        expires_at: Date;
      }>(
        `select request_hash, claim_id, locked_at, response_status, response_body, expires_at
           from idempotency_keys where key_hash = $1`,
        [keyHash],
      );
      if (row === undefined) return null;
      return {
        keyHash,
        requestHash: bytes(row.request_hash),
        claimId: row.claim_id,
        lockedAt: row.locked_at,
        responseStatus: row.response_status,
        responseBody: row.response_body === null ? null : bytes(row.response_body),
        expiresAt: row.expires_at,
      };
    },

    async releaseIdempotencyKey(keyHash, claimId) {
      await db.run('delete from idempotency_keys where key_hash = $1 and claim_id = $2 and response_status is null', [
        keyHash,
        claimId,
      ]);
    },
  };
}

type DialectKeys = Pick<
  IdempotencyStore,
  'claimIdempotencyKey' | 'lockIdempotencyClaims' | 'completeIdempotencyKeys' | 'purgeIdempotencyKeys'
>;

const postgresKeys = (db: SqlDatabase): DialectKeys => ({
  async claimIdempotencyKey(claim) {
    // A conflicting insert waits for the other claim's statement to commit, then sees its
    // row: of many concurrent claims on one key exactly one returns a row.
    const rows = await db.rows(
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

  async lockIdempotencyClaims(tx, claims) {
    const rows = await tx.rows<{ claim_id: string }>(
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
    const { affected } = await tx.run(
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
    return affected;
  },

  async purgeIdempotencyKeys(now, limit) {
    // Bounded and skip-locked, so a purge never waits on a claim or holds many rows at once.
    const { affected } = await db.run(
      `delete from idempotency_keys
        where key_hash in (select key_hash from idempotency_keys
                            where expires_at <= $1
                            order by expires_at
                            limit $2
                              for update skip locked)`,
      [now, limit],
    );
    return affected;
  },
});

const mysqlKeys = (db: SqlDatabase): DialectKeys => ({
  async claimIdempotencyKey(claim) {
    // One statement: a conflicting insert waits for the other claim's row lock, then sees its
    // row. The update takes the row over only when it has expired, or its claim is stale and was
    // made for the same request. Assignments run left to right and later ones see earlier
    // results, so claim_id goes first on the original row and the rest follow it. (No VALUES()
    // or `as new` row alias: MySQL 8.0.20 deprecates the one and MariaDB lacks the other, so the
    // new values are passed again.)
    const { affected } = await db.run(
      `insert into idempotency_keys
              (key_hash, request_hash, claim_id, locked_at, created_at, expires_at)
       values ($1, $2, $3, $4, $4, $5)
       on duplicate key update
          claim_id = if(expires_at <= $4 or (response_status is null and locked_at <= $6 and request_hash = $2), $3, claim_id),
          request_hash = if(claim_id = $3, $2, request_hash),
          locked_at = if(claim_id = $3, $4, locked_at),
          created_at = if(claim_id = $3, $4, created_at),
          expires_at = if(claim_id = $3, $5, expires_at),
          response_status = if(claim_id = $3, null, response_status),
          response_body = if(claim_id = $3, null, response_body)`,
      [claim.keyHash, claim.requestHash, claim.claimId, claim.now, claim.expiresAt, claim.staleBefore],
    );
    // 2: an existing row was taken over. 1: a new row, or (CLIENT_FOUND_ROWS) an existing one
    // left as it was; the claim id tells them apart. It cannot change under us: the row now
    // holds a fresh claim, neither stale nor expired.
    if (affected === 2) return true;
    const [row] = await db.rows<{ claim_id: string }>('select claim_id from idempotency_keys where key_hash = $1', [
      claim.keyHash,
    ]);
    return row?.claim_id === claim.claimId;
  },

  async lockIdempotencyClaims(tx, claims) {
    // Through the primary key only (key_hash in …), for the reason given in completeIdempotencyKeys.
    const rows = await tx.rows<{ claim_id: string }>(
      `select claim_id from idempotency_keys
        where key_hash in ($1) and response_status is null
        order by key_hash
          for update`,
      [claims.map((c) => c.keyHash)],
    );
    const ours = new Set(claims.map((c) => c.claimId));
    return new Set(rows.map((row) => row.claim_id).filter((id) => ours.has(id)));
  },

  async completeIdempotencyKeys(tx, completions) {
    // One single-table statement for the batch, the values picked per key by `case`. It reaches
    // its rows through the primary key (key_hash in …) and locks only those. A join to a derived
    // table of the completions is what one would write first, but MySQL and MariaDB then scan
    // and lock every key row, and two batches completing at once deadlock.
    const params: unknown[] = [completions.map((c) => c.keyHash)];
    const pick = (value: (c: IdempotencyCompletion) => unknown) =>
      `case key_hash ${completions
        .map((c) => {
          params.push(c.keyHash, value(c));
          return `when $${params.length - 1} then $${params.length}`;
        })
        .join(' ')} end`;
    const { affected } = await tx.run(
      `update idempotency_keys
          set response_status = ${pick((c) => c.status)}, response_body = ${pick((c) => c.body)}
        where key_hash in ($1) and claim_id = ${pick((c) => c.claimId)} and response_status is null`,
      params,
    );
    return affected;
  },

  async purgeIdempotencyKeys(now, limit) {
    // Bounded and skip-locked, so a purge never waits on a claim or holds many rows at once.
    // MySQL has no `skip locked` on delete, nor a locking subquery on the table it deletes from:
    // pick the rows first, then delete exactly those, in one short transaction.
    return db.transaction(async (tx) => {
      const rows = await tx.rows<{ key_hash: Buffer }>(
        `select key_hash from idempotency_keys
          where expires_at <= $1
          order by expires_at
          limit $2
            for update skip locked`,
        [now, limit],
      );
      if (rows.length === 0) return 0;
      const { affected } = await tx.run('delete from idempotency_keys where key_hash in ($1)', [
        rows.map((row) => row.key_hash),
      ]);
      return affected;
    });
  },
});
