// Payment tokens prove who may book or change a hold. They carry 192 random bits; only their
// SHA-256 is stored, so a leaked database does not leak live tokens. Comparison is on the
// fixed-length hashes, in constant time, so a token of any length is simply "wrong".
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_BYTES = 24;

export const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

export function newPaymentToken(): { token: string; hash: Buffer } {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, hash: hashToken(token) };
}

export function tokenMatches(token: string, storedHash: Buffer): boolean {
  const presented = hashToken(token);
  return presented.length === storedHash.length && timingSafeEqual(presented, storedHash);
}
