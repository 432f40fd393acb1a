// Customers: who a hold is for, compared as one key per person. An integrator's account id is
// compared exactly. An email address is normalised first (CUSTOMER_EMAIL_NORMALIZATION, on by
// default): trimmed, lower-cased, and a +tag in the local part dropped, so that
// "Ann+sale@Example.com" and "ann@example.com" are one customer and share one allowance.
// Lower-casing the local part is not what RFC 5321 promises, but it is what every large mail
// provider does, and a limit that a capital letter could dodge would be no limit.

/** The longest customer a request may carry, in characters. */
export const CUSTOMER_MAX_LENGTH = 200;

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function normalizeCustomer(customer: string, normalizeEmail: boolean): string {
  const trimmed = customer.trim();
  if (!normalizeEmail || !EMAIL.test(trimmed)) return customer;
  const at = trimmed.lastIndexOf('@');
  const local = trimmed.slice(0, at).toLowerCase();
  const domain = trimmed.slice(at + 1).toLowerCase();
  const plus = local.indexOf('+');
  // "+tag" alone (an empty base) is kept whole: dropping it would leave no address.
  return `${plus > 0 ? local.slice(0, plus) : local}@${domain}`;
}
