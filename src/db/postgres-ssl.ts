// libpq's sslmode, translated for node-postgres. node-postgres reads sslmode in a URL its own way
// (pg-connection-string 2.x): every value but disable means TLS with the certificate verified, so
// prefer (libpq's default, and what `pg_autoctl show uri` prints) fails on a server without TLS.
// We take the ssl parameters out of the URL and give node-postgres an explicit `ssl` option:
//
//   disable      plain only
//   allow        plain; TLS if the server refuses plain (its pg_hba.conf has only hostssl lines)
//   prefer       TLS, certificate not checked; plain if the server has no TLS  (the default)
//   require      TLS, certificate not checked, or checked like verify-ca when sslrootcert is given
//   verify-ca    TLS, certificate chain checked against sslrootcert (or Node's trusted roots)
//   verify-full  TLS, chain and host name checked
//
// libpq falls back on the same connection; node-postgres cannot, so for allow and prefer we open
// a second connection and remember, per host, which way worked (SslChoice).
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { messageOf } from '../errors.ts';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** node-postgres's `ssl` option: false for a plain connection. */
export type PgSsl = false | ConnectionOptions;

export interface SslPlan {
  mode: SslMode;
  /** What to try, in order: two for allow and prefer, one for the others. */
  tries: PgSsl[];
}

const FILES = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/** Whether `value` is one of `list`'s strings (and so of its type). */
const oneOf = <T extends string>(list: readonly T[], value: string): value is T =>
  (list as readonly string[]).includes(value);

/**
 * Takes libpq's ssl parameters out of `params` (node-postgres must not see them) and says what
 * they ask for. Without sslmode in the URL, PGSSLMODE or else prefer, as libpq does.
 */
export function takeSslParams(params: URLSearchParams, env: NodeJS.ProcessEnv = process.env): SslPlan {
  for (const name of params.keys()) {
    if (name.startsWith('ssl') && name !== 'sslmode' && !oneOf(FILES, name))
      throw new Error(
        `DATABASE_URL ${name} is not supported; the ssl parameters honoured are sslmode, ${FILES.join(', ')}`,
      );
  }
  const mode = params.get('sslmode') ?? env.PGSSLMODE ?? 'prefer';
  if (!oneOf(SSL_MODES, mode))
    throw new Error(
      `${params.has('sslmode') ? 'DATABASE_URL sslmode' : 'PGSSLMODE'}=${mode} is not one of ${SSL_MODES.join(', ')}`,
    );
  const read = (name: (typeof FILES)[number]): string | undefined => {
    const path = params.get(name);
    if (path === null || (name === 'sslrootcert' && path === 'system')) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new Error(`DATABASE_URL ${name}=${path} cannot be read: ${messageOf(error)}`);
    }
  };
  const rootcert = params.has('sslrootcert');
  const [ca, cert, key] = FILES.map(read);
  params.delete('sslmode');
  for (const name of FILES) params.delete(name);

  const tls = (check: 'nothing' | 'chain' | 'chain and host'): ConnectionOptions => ({
    rejectUnauthorized: check !== 'nothing',
    ...(check === 'chain' && { checkServerIdentity: () => undefined }),
    ...(ca !== undefined && { ca }),
    ...(cert !== undefined && { cert }),
    ...(key !== undefined && { key }),
  });
  const tries: Record<SslMode, PgSsl[]> = {
    disable: [false],
    allow: [false, tls('nothing')],
    prefer: [tls('nothing'), false],
    require: [tls(rootcert ? 'chain' : 'nothing')],
    'verify-ca': [tls('chain')],
    'verify-full': [tls('chain and host')],
  };
  return { mode, tries: tries[mode] };
}

const NO_TLS = 'The server does not support SSL connections';

/**
 * Whether a connection refused one way may be accepted the other way: TLS asked of a server
 * without it (node-postgres's words for the server's 'N'), or a login refused by pg_hba.conf
 * (28000), which may allow only TLS (hostssl) or only plain (hostnossl) connections.
 */
export function otherWayMayWork(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === '28000' || message === NO_TLS;
}

/** The `ssl` option that works for each host, for allow and prefer learned by connecting. */
export class SslChoice {
  private readonly chosen = new Map<string, PgSsl>();

  constructor(private readonly plan: SslPlan) {}

  /** Whether connecting can teach us anything: allow and prefer. */
  get learns(): boolean {
    return this.plan.tries.length > 1;
  }

  /** What last worked on this host, or what to try first. */
  for(host: string): PgSsl {
    return this.chosen.get(host) ?? this.plan.tries[0]!;
  }

  /** Opens a connection the way that last worked, else the other way when that may help; remembers which worked. */
  async open<T>(host: string, open: (ssl: PgSsl) => Promise<T>): Promise<T> {
    const first = this.for(host);
    let ssl = first;
    let opened: T;
    try {
      opened = await open(first);
    } catch (error) {
      const other = this.plan.tries.find((t) => t !== first);
      if (other === undefined || !otherWayMayWork(error)) throw error;
      ssl = other;
      try {
        opened = await open(other);
      } catch (again) {
        // "no TLS here" says less than why plain was refused (allow).
        throw messageOf(again) === NO_TLS ? error : again;
      }
    }
    this.chosen.set(host, ssl);
    return opened;
  }
}
