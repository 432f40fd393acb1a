// An entry's secret, and the payment token of its offer derived from it. Only hashes are stored:
// the secret's, and the offer token's, which becomes the offer hold's payment_token_hash when the
// offer is made (by the sweeper, say, which never sees the secret). So the offer's token is known
// only to whoever holds the secret, and a leaked database leaks neither.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hashToken } from '../holds/payment-token.ts';

const SECRET_BYTES = 24;

/** The offer's payment token: 24 bytes of SHA-256 over the secret, the shape of any payment token. */
export const offerTokenOf = (secret: string): string =>
  createHash('sha256').update(`waitlist-offer:${secret}`).digest().subarray(0, 24).toString('base64url');

export function newEntrySecret(): { secret: string; secretHash: Buffer; offerTokenHash: Buffer } {
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { secret, secretHash: hashToken(secret), offerTokenHash: hashToken(offerTokenOf(secret)) };
}

export function secretMatches(secret: string, storedHash: Buffer): boolean {
  const presented = hashToken(secret);
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash);
}
