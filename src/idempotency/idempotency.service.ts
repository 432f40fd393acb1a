// Idempotency-Key rules (IETF httpapi idempotency-key draft, Stripe's semantics), with no HTTP:
//   - the first request with a key claims it (in flight) and runs;
//   - its response is stored in the same transaction as its effect (see recorder.ts), or on
//     its own when it had no effect; a 5xx stores nothing and frees the key for a retry;
//   - the same key and request later replays the stored response; a different request with
//     the key is idempotency_key_reused; while the first still runs, idempotency_key_in_flight;
//   - a claim older than the lock timeout with no response is presumed dead (its effect, if
//     any, rolled back with it) and the same request may take it over.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { DatabaseUnavailable, DomainError } from '../errors.ts';
import type { Store, Tx } from '../storage/store.ts';
import { seal, sealKeyFor, sha256, unseal } from './sealed-body.ts';

export interface IdempotencyConfig {
  idempotencyKeyTtlSeconds: number;
  idempotencyLockTimeoutSeconds: number;
}

export interface KeyedRequest {
  /** Whose key space the key lives in: a credential, or the client's address. */
  scope: string;
  key: string;
  /** Digest of everything that makes two requests "the same". */
  fingerprint: Buffer;
}

/** A claim this process holds on a key while its request runs. */
export interface Claim {
  readonly keyHash: Buffer;
  readonly claimId: string;
  readonly sealKey: Buffer;
  /** Status stored inside an effect transaction, if one stored it. */
  recordedStatus?: number;
  /** Set once the response is stored or the key released. */
  finished: boolean;
}

export interface StoredResponse {
  status: number;
  /** The JSON text sent to the client. */
  body: string;
}

export type ClaimResult = { claim: Claim } | { replay: StoredResponse };

/** How often a key that could not be released because the database was down is tried again. */
const RELEASE_RETRY_MS = 200;

/** The answer of a request whose key a retry took over while it ran. */
export const keyTakenOver = (): DomainError =>
  new DomainError(
    'idempotency_key_in_flight',
    'this request took too long and its Idempotency-Key was taken over by a retry, which runs it instead; nothing was changed by this one',
  );

/** How many times a claim is retried when the row it lost to vanished (was released). */
const CLAIM_ATTEMPTS = 3;

export class IdempotencyService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: IdempotencyConfig,
  ) {}

  async claim(request: KeyedRequest): Promise<ClaimResult> {
    const keyHash = sha256(`${request.scope}\n${request.key}`);
    const sealKey = sealKeyFor(request.key, request.scope);
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const now = this.clock.now();
      const claimId = randomUUID();
      let claimed: boolean;
      try {
        claimed = await this.store.claimIdempotencyKey({
          keyHash,
          requestHash: request.fingerprint,
          claimId,
          now,
          expiresAt: new Date(now.getTime() + this.config.idempotencyKeyTtlSeconds * 1000),
          staleBefore: new Date(now.getTime() - this.config.idempotencyLockTimeoutSeconds * 1000),
        });
      } catch (error) {
        // The claim may have been written even though we never heard back (a server frozen or
        // lost mid-statement commits it later): free it, or the retry the 503 asks for would
        // be told the key is in flight until the lock times out.
        if (error instanceof DatabaseUnavailable) void this.release({ keyHash, claimId, sealKey, finished: true });
        throw error;
      }
      if (claimed) return { claim: { keyHash, claimId, sealKey, finished: false } };
      const row = await this.store.findIdempotencyKey(keyHash);
      if (row === null) continue;
      if (!row.requestHash.equals(request.fingerprint)) {
        throw new DomainError(
          'idempotency_key_reused',
          'this Idempotency-Key was used for a different request; use a new key for a new request',
        );
      }
      if (row.responseStatus === null || row.responseBody === null) break;
      return { replay: { status: row.responseStatus, body: unseal(sealKey, row.responseBody) } };
    }
    throw new DomainError(
      'idempotency_key_in_flight',
      'a request with this Idempotency-Key is still in progress; retry after it finishes',
    );
  }

  /**
   * Stores responses inside `tx`, the transaction of their effect. Throws when a claim was
   * taken over meanwhile, which rolls the effect back: the request that took over runs it.
   */
  async complete(tx: Tx, items: Array<{ claim: Claim; response: StoredResponse }>): Promise<void> {
    if (items.length === 0) return;
    const stored = await this.store.completeIdempotencyKeys(
      tx,
      items.map(({ claim, response }) => ({
        keyHash: claim.keyHash,
        claimId: claim.claimId,
        status: response.status,
        body: seal(claim.sealKey, response.body),
      })),
    );
    if (stored !== items.length) {
      // Rolls the effect back: the request that took the key over runs it instead.
      throw keyTakenOver();
    }
    for (const { claim, response } of items) claim.recordedStatus = response.status;
  }

  /**
   * Locks the keys of these claims inside `tx`, before the effect is written, so that none can
   * be taken over until it commits; returns, per claim, whether it is still ours.
   */
  async lockClaims(tx: Tx, claims: Claim[]): Promise<boolean[]> {
    if (claims.length === 0) return [];
    const held = await this.store.lockIdempotencyClaims(tx, claims);
    return claims.map((claim) => held.has(claim.claimId));
  }

  /** Stores the response of a request that changed nothing, so nothing needs to share its transaction. */
  completeAlone(claim: Claim, response: StoredResponse): Promise<void> {
    return this.store.transaction((tx) => this.complete(tx, [{ claim, response }]));
  }

  /**
   * Frees a key whose request stored no response (it failed with a 5xx): a retry runs afresh.
   * A 5xx is often the database being down, and then so is this: it is tried again every
   * RELEASE_RETRY_MS until it works or the claim would be presumed dead anyway. Until then a
   * retry of the request is told the key is in flight.
   */
  async release(claim: Claim): Promise<void> {
    const giveUpAt = Date.now() + this.config.idempotencyLockTimeoutSeconds * 1000;
    const attempt = async (): Promise<void> => {
      try {
        await this.store.releaseIdempotencyKey(claim.keyHash, claim.claimId);
      } catch (error) {
        if (!(error instanceof DatabaseUnavailable) || Date.now() + RELEASE_RETRY_MS > giveUpAt) throw error;
        await new Promise<void>((resolve) => setTimeout(resolve, RELEASE_RETRY_MS).unref());
        return attempt();
      }
    };
    try {
      await this.store.releaseIdempotencyKey(claim.keyHash, claim.claimId);
    } catch (error) {
      if (!(error instanceof DatabaseUnavailable)) throw error;
      // In the background: the response (a 503) should not wait for the database to return.
      attempt().catch(() => {});
    }
  }
}
