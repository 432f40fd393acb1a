// Stored responses can carry secrets (POST /holds answers with the payment token), and tokens
// are only ever stored as hashes. So a stored response is sealed with AES-256-GCM under a key
// derived from the Idempotency-Key and its scope, which the database never sees: a leaked
// table yields neither the keys nor the responses.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export const sha256 = (text: string | Buffer): Buffer => createHash('sha256').update(text).digest();

export function sealKeyFor(key: string, scope: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, scope, 'box-office idempotency response v1', 32));
}

export function seal(sealKey: Buffer, plaintext: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', sealKey, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

export function unseal(sealKey: Buffer, sealed: Buffer): string {
  const decipher = createDecipheriv('aes-256-gcm', sealKey, sealed.subarray(0, IV_BYTES));
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
}
