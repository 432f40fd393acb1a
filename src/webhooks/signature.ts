// Standard Webhooks signatures (https://www.standardwebhooks.com): the secret is `whsec_` and the
// base64 of a random key; a message is signed as HMAC-SHA256 over "<id>.<timestamp>.<body>"
// with that key, and sent as `webhook-signature: v1,<base64 signature>`.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';
const KEY_BYTES = 32;

/** A new signing secret: shown to the admin once, kept to sign every delivery. */
export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(KEY_BYTES).toString('base64');
}

function keyOf(secret: string): Buffer {
  return Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
}

/**
 * The value of the webhook-signature header for this message. The body may be its UTF-8 bytes: a
 * batch body shared by many endpoints is then hashed as it is, not copied per endpoint.
 */
export function sign(secret: string, id: string, timestampSeconds: number, body: string | Buffer): string {
  const mac = createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.`).update(body).digest('base64');
  return `v1,${mac}`;
}

/**
 * True when one of the header's space-separated signatures is this message's, in constant
 * time. (What a receiver does; the tests use it, and docs/webhooks.md shows it.)
 */
export function verify(secret: string, id: string, timestampSeconds: number, body: string, header: string): boolean {
  const expected = Buffer.from(sign(secret, id, timestampSeconds, body));
  return header
    .split(' ')
    .map((signature) => Buffer.from(signature))
    .some((given) => given.length === expected.length && timingSafeEqual(given, expected));
}
