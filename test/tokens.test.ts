// The waiting room's signed strings, attacked as strings: every token the service signs verifies
// to what was signed, and no edit of one (a character changed, added or removed, parts swapped
// between tokens, the kind or key id changed) verifies to anything, under any key set.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  type Admission,
  parseAdmissionKeys,
  signAdmission,
  signTicket,
  verifyAdmission,
  verifyTicket,
} from '../src/admission/tokens.ts';

const keys = parseAdmissionKeys('new:0123456789abcdef0123456789abcdef,old:fedcba9876543210fedcba9876543210');
const otherKeys = parseAdmissionKeys('new:a-different-secret-of-32-characters!!');

const count = fc.integer({ min: 0, max: 2 ** 40 });
const ticketArb = fc.record({
  eventId: count,
  ticketNo: count,
  customer: fc.option(fc.string({ maxLength: 40 }), { nil: null }),
  position: fc.option(count, { nil: null }),
});
const admissionArb = fc
  .record({ eventId: count, ticketNo: count, customer: fc.string({ maxLength: 40 }), iat: count, ttl: count })
  .map(({ eventId, ticketNo, customer, iat, ttl }): Admission => ({
    eventId,
    ticketNo,
    customer,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date((iat + ttl) * 1000),
  }));

/** One edit of a string: a character replaced, inserted or deleted (never the string itself). */
const edited = (text: string) =>
  fc
    .tuple(
      fc.constantFrom('replace', 'insert', 'delete'),
      fc.nat({ max: text.length - 1 }),
      fc.constantFrom(...'.-_=+/ Aa0z9Q{'),
    )
    .map(([kind, at, char]) =>
      kind === 'replace'
        ? text.slice(0, at) + char + text.slice(at + 1)
        : kind === 'insert'
          ? text.slice(0, at) + char + text.slice(at)
          : text.slice(0, at) + text.slice(at + 1),
    )
    .filter((changed) => changed !== text);

describe('admission tokens and queue tickets', () => {
  test('what is signed verifies to itself, under its key only', () => {
    fc.assert(
      fc.property(ticketArb, admissionArb, (ticket, admission) => {
        const ticketText = signTicket(keys, ticket);
        assert.deepEqual(verifyTicket(keys, ticketText), { ...ticket });
        assert.equal(verifyTicket(otherKeys, ticketText), null);
        const admissionText = signAdmission(keys, admission);
        assert.deepEqual(verifyAdmission(keys, admissionText), admission);
        assert.equal(verifyAdmission(otherKeys, admissionText), null);
        // The kind is signed: a ticket is no admission, and an admission no ticket.
        assert.equal(verifyAdmission(keys, ticketText), null);
        assert.equal(verifyTicket(keys, admissionText), null);
      }),
      { numRuns: 300 },
    );
  });

  test('no single edit of a token verifies', () => {
    fc.assert(
      fc.property(
        admissionArb.chain((admission) => {
          const text = signAdmission(keys, admission);
          return fc.tuple(fc.constant(text), edited(text));
        }),
        ([, changed]) => {
          assert.equal(verifyAdmission(keys, changed), null, changed);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("one token's parts never verify with another's", () => {
    fc.assert(
      fc.property(ticketArb, ticketArb, (a, b) => {
        const [kindA, kidA, payloadA, macA] = signTicket(keys, a).split('.');
        const [, , payloadB, macB] = signTicket(keys, b).split('.');
        fc.pre(payloadA !== payloadB);
        assert.equal(verifyTicket(keys, [kindA, kidA, payloadB, macA].join('.')), null);
        assert.equal(verifyTicket(keys, [kindA, kidA, payloadA, macB].join('.')), null);
        // Another key id than the one that signed it.
        assert.equal(verifyTicket(keys, ['qt1', kidA === 'new' ? 'old' : 'new', payloadA, macA].join('.')), null);
      }),
      { numRuns: 300 },
    );
  });

  test('a key still listed verifies what it signed, so a rotation logs nobody out', () => {
    const before = parseAdmissionKeys('old:fedcba9876543210fedcba9876543210');
    const ticket = { eventId: 7, ticketNo: 42, customer: 'ann@example.com', position: 3 };
    const text = signTicket(before, ticket);
    assert.ok(text.startsWith('qt1.old.'));
    assert.deepEqual(verifyTicket(keys, text), ticket);
    assert.equal(verifyTicket(parseAdmissionKeys('new:0123456789abcdef0123456789abcdef'), text), null);
  });

  test('malformed strings are refused, not thrown on', () => {
    for (const text of [
      '',
      '.',
      '...',
      'qt1',
      'qt1.',
      'qt1.new',
      'qt1.new.',
      'qt1.new..',
      'qt1.new.e30.',
      'x'.repeat(5000),
    ])
      assert.equal(verifyTicket(keys, text), null, JSON.stringify(text));
    // Signed, but not claims of the right shape.
    const wrongShape = signTicket(keys, { eventId: -1, ticketNo: 1, customer: null, position: null });
    assert.equal(verifyTicket(keys, wrongShape), null);
  });
});
