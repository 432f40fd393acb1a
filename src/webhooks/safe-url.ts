// Server-side request forgery: a webhook URL must not reach into the network the service runs
// in (loopback, private, link-local, unique-local, and other special-purpose ranges), unless
// WEBHOOK_ALLOW_PRIVATE_URLS says so. Checked when a URL is registered, and again on every
// connection, by resolving through `guardedLookup`, so that a name cannot be rebound to a
// private address after it was registered.
import { lookup as dnsLookup } from 'node:dns';
import { lookup as dnsLookupAsync } from 'node:dns/promises';
import { BlockList, type LookupFunction, isIP } from 'node:net';
import { DomainError, messageOf } from '../errors.ts';

const BLOCKED = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(network, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address. */
function hextets(address: string): number[] {
  let text = address.split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - front.length - back.length;
  return [...front, ...Array<string>(zeros).fill('0'), ...back].map((group) => parseInt(group, 16));
}

/** The IPv4 address inside a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address. */
function embeddedIpv4(address: string): string | null {
  const h = hextets(address);
  const quad = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  if (h[0] === 0x64 && h[1] === 0xff9b && h.slice(2, 6).every((group) => group === 0)) return quad(h[6]!, h[7]!);
  if (h[0] === 0x2002) return quad(h[1]!, h[2]!);
  return null;
}

/** True for addresses a webhook must not reach: loopback, private, link-local and the like. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return BLOCKED.check(address, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse rather than guess
  // BlockList matches IPv4-mapped addresses (::ffff:10.0.0.1) against the IPv4 ranges itself.
  if (BLOCKED.check(address.split('%')[0]!, 'ipv6')) return true;
  const embedded = embeddedIpv4(address);
  return embedded !== null && BLOCKED.check(embedded, 'ipv4');
}

const refused = (detail: string) => new DomainError('webhook_url_refused', detail);

/** The URL's host without the brackets of an IPv6 literal. */
const hostOf = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1');

/** Why a URL may not be sent to without resolving it (scheme, an address literal), or null. */
export function refusalOf(url: URL, allowPrivate: boolean): string | null {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'the URL must be http:// or https://';
  const host = hostOf(url);
  if (!allowPrivate && isIP(host) !== 0 && isPrivateAddress(host)) {
    return `${host} is a private, loopback or link-local address`;
  }
  return null;
}

/** A name that takes longer than this to resolve is refused at registration. */
const RESOLVE_TIMEOUT_MS = 3000;

/** Refuses (webhook_url_refused) a URL that is not http(s) or resolves to a private address. */
export async function checkWebhookUrl(text: string, allowPrivate: boolean): Promise<void> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw refused('the URL is not a valid absolute URL');
  }
  const refusal = refusalOf(url, allowPrivate);
  if (refusal !== null) throw refused(refusal);
  const host = hostOf(url);
  if (allowPrivate || isIP(host) !== 0) return;
  let timer: NodeJS.Timeout | undefined;
  const addresses = await Promise.race([
    dnsLookupAsync(host, { all: true }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out')), RESOLVE_TIMEOUT_MS);
    }),
  ])
    .catch((error: unknown) => {
      throw refused(`${host} does not resolve (${messageOf(error)})`);
    })
    .finally(() => clearTimeout(timer));
  const blocked = addresses.find((entry) => isPrivateAddress(entry.address));
  if (blocked !== undefined) {
    throw refused(`${host} resolves to ${blocked.address}, a private, loopback or link-local address`);
  }
}

/**
 * A DNS lookup for outgoing connections that fails when the name resolves to a private address
 * (any of its addresses), so that the check holds at connect time, whatever the name resolved
 * to when it was registered.
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, '', 0);
      const blocked = allowPrivate ? undefined : addresses.find((entry) => isPrivateAddress(entry.address));
      if (blocked !== undefined) {
        const refusal: NodeJS.ErrnoException = new Error(
          `${hostname} resolves to ${blocked.address}, a private, loopback or link-local address`,
        );
        refusal.code = 'EADDRREFUSED';
        return callback(refusal, '', 0);
      }
      if (options.all === true) return callback(null, addresses);
      const first = addresses[0];
      if (first === undefined)
        return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };
}
