// The two signed strings of the waiting room, in the manner of Queue-it's queueittoken and a
// JWT, without either's baggage:
//   ticket           a place in an event's queue, given on join. It carries the position (when
//                    known at join), so that a status request needs no database.
//   admission token  what POST /holds carries in Admission-Token once the ticket's turn came:
//                    event, jti (the ticket), customer, issued-at and expiry.
// Both are `<kind>.<kid>.<payload>.<mac>`: the payload is base64url JSON, the mac an
// HMAC-SHA256 over the first three parts under the key named by kid. The kind is inside the
// mac, so one cannot pass for the other. Keys come from ADMISSION_SECRET, a comma-separated
// list of `kid:secret`; the first signs, all verify, so a key is rotated by putting a new one
// first and dropping the old one once the tokens it signed have expired.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** The shortest secret accepted: 256 bits as hex or base64 is longer. */
export const ADMISSION_SECRET_MIN_LENGTH = 32;
const KID = /^[A-Za-z0-9_-]{1,16}$/;

export interface AdmissionKeys {
  /** The kid that signs. */
  current: string;
  byKid: ReadonlyMap<string, Buffer>;
  /** True when no ADMISSION_SECRET was set and this process made its own key. */
  ephemeral: boolean;
}

/** Parses ADMISSION_SECRET; a problem is thrown as a message for config.ts to report. */
export function parseAdmissionKeys(value: string | undefined): AdmissionKeys {
  if (value === undefined) {
    // One process alone can still run a queue; a second one would refuse the first's tokens.
    return { current: 'local', byKid: new Map([['local', randomBytes(32)]]), ephemeral: true };
  }
  const byKid = new Map<string, Buffer>();
  for (const entry of value.split(',')) {
    const colon = entry.indexOf(':');
    const kid = colon > 0 ? entry.slice(0, colon).trim() : '';
    const secret = colon > 0 ? entry.slice(colon + 1).trim() : '';
    if (!KID.test(kid)) throw new Error('ADMISSION_SECRET must be a comma-separated list of kid:secret');
    if (secret.length < ADMISSION_SECRET_MIN_LENGTH)
      throw new Error(
        `ADMISSION_SECRET: the secret of kid ${kid} must be at least ${ADMISSION_SECRET_MIN_LENGTH} characters`,
      );
    if (byKid.has(kid)) throw new Error(`ADMISSION_SECRET names kid ${kid} twice`);
    byKid.set(kid, Buffer.from(secret));
  }
  return { current: [...byKid.keys()][0]!, byKid, ephemeral: false };
}

type Kind = 'qt1' | 'at1';

function mac(key: Buffer, signed: string): string {
  return createHmac('sha256', key).update(signed).digest('base64url');
}

function sign(keys: AdmissionKeys, kind: Kind, claims: object): string {
  const signed = `${kind}.${keys.current}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signed}.${mac(keys.byKid.get(keys.current)!, signed)}`;
}

/**
 * The claims of a string this service signed with a key it still has; null for anything else.
 * Every hold on a queued event checks one: the parts are found by index, not split and joined
 * again, and only the claims are decoded.
 */
function verify(keys: AdmissionKeys, kind: Kind, token: string): Record<string, unknown> | null {
  if (!token.startsWith(`${kind}.`)) return null;
  const kidEnd = token.indexOf('.', kind.length + 1);
  if (kidEnd < 0) return null;
  const macDot = token.indexOf('.', kidEnd + 1);
  if (macDot < 0 || token.includes('.', macDot + 1)) return null;
  const key = keys.byKid.get(token.slice(kind.length + 1, kidEnd));
  if (key === undefined) return null;
  const expected = Buffer.from(mac(key, token.slice(0, macDot)));
  const given = Buffer.from(token.slice(macDot + 1));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const claims: unknown = JSON.parse(Buffer.from(token.slice(kidEnd + 1, macDot), 'base64url').toString());
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** A place in one event's queue. */
export interface Ticket {
  eventId: number;
  /** Numbered in join order per event; the admission token's jti. */
  ticketNo: number;
  /** As joined (normalised); null when anonymous. */
  customer: string | null;
  /** Known at join for those who join after the sale opened; drawn at the opening for the pre-queue. */
  position: number | null;
}

export function signTicket(keys: AdmissionKeys, ticket: Ticket): string {
  return sign(keys, 'qt1', { e: ticket.eventId, t: ticket.ticketNo, c: ticket.customer, p: ticket.position });
}

export function verifyTicket(keys: AdmissionKeys, text: string): Ticket | null {
  const claims = verify(keys, 'qt1', text);
  if (claims === null) return null;
  const { e, t, c, p } = claims;
  if (!isCount(e) || !isCount(t) || !(c === null || typeof c === 'string') || !(p === null || isCount(p))) return null;
  return { eventId: e, ticketNo: t, customer: c, position: p };
}

/** What an admission token grants: holds on one event, for one customer, until it expires. */
export interface Admission {
  eventId: number;
  /** The ticket admitted (jti). */
  ticketNo: number;
  /** The customer every hold made with it must carry (an anonymous ticket's own: anonymousCustomer). */
  customer: string;
  issuedAt: Date;
  expiresAt: Date;
}

/**
 * The customer of an anonymous ticket's holds. It counts that admission's seats against
 * max_seats_per_customer like any customer's. A join with a customer of this form is refused,
 * so that nobody can share (or use up) another buyer's allowance by naming it.
 */
export const ANONYMOUS_PREFIX = 'queue-ticket:';
export const anonymousCustomer = (eventId: number, ticketNo: number): string =>
  `${ANONYMOUS_PREFIX}${eventId}:${ticketNo}`;

const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);

export function signAdmission(keys: AdmissionKeys, admission: Admission): string {
  return sign(keys, 'at1', {
    e: admission.eventId,
    jti: admission.ticketNo,
    c: admission.customer,
    iat: seconds(admission.issuedAt),
    exp: seconds(admission.expiresAt),
  });
}

export function verifyAdmission(keys: AdmissionKeys, text: string): Admission | null {
  const claims = verify(keys, 'at1', text);
  if (claims === null) return null;
  const { e, jti, c, iat, exp } = claims;
  if (!isCount(e) || !isCount(jti) || typeof c !== 'string' || !isCount(iat) || !isCount(exp)) return null;
  return { eventId: e, ticketNo: jti, customer: c, issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000) };
}
