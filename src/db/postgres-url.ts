// DATABASE_URL for PostgreSQL, in libpq's multi-host form as `pg_autoctl show uri` prints it:
//   postgres://user@h1:p1,h2:p2,h3:p3/db?target_session_attrs=read-write
// node-postgres takes one host, so we split the list here and find the primary ourselves
// (postgres.ts). The ssl parameters (sslmode …) are translated here (postgres-ssl.ts): node-postgres
// would read them its own way. Every other part of the URL is passed on unchanged, per host.
import { type PgSsl, SslChoice, type SslMode, takeSslParams } from './postgres-ssl.ts';

export interface PgHost {
  host: string;
  port: number;
}

export interface PgTarget {
  hosts: PgHost[];
  /**
   * Connect only to a server that accepts writes. Asked for with target_session_attrs
   * read-write or primary, and implied by a list of several hosts: the service writes, so a
   * standby is never what it wants.
   */
  requirePrimary: boolean;
  sslmode: SslMode;
  /** allow and prefer: which of TLS and plain a host takes is learnt by connecting (open). */
  learnsSsl: boolean;
  /** node-postgres settings for one host: a single-host URL without ssl parameters, and `ssl`. */
  configFor(host: PgHost): PgConfig;
  /**
   * Opens a connection with configFor's settings, and for allow and prefer the other way when
   * the server refuses that one; configFor(host) then gives what worked.
   */
  open<T>(host: PgHost, open: (config: PgConfig) => Promise<T>): Promise<T>;
}

export interface PgConfig {
  connectionString: string;
  ssl: PgSsl;
}

const DEFAULT_PORT = 5432;
const WRITABLE_ATTRS = new Set(['any', 'read-write', 'primary']);

export function parsePostgresUrl(url: string, env: NodeJS.ProcessEnv = process.env): PgTarget {
  const match = /^(postgres(?:ql)?):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/.exec(url);
  if (match === null) throw new Error('DATABASE_URL is not a postgres:// URL');
  const [, scheme, authority = '', path = '/', query = ''] = match;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? `${authority.slice(0, at)}@` : '';
  const hostList = at >= 0 ? authority.slice(at + 1) : authority;
  const hosts = hostList.split(',').map(parseHost);
  const params = new URLSearchParams(query);
  const attrs = params.get('target_session_attrs') ?? 'any';
  if (!WRITABLE_ATTRS.has(attrs)) {
    throw new Error(
      `DATABASE_URL target_session_attrs=${attrs} is not supported: the service writes, so use read-write or primary`,
    );
  }
  params.delete('target_session_attrs');
  const sslPlan = takeSslParams(params, env);
  const ssl = new SslChoice(sslPlan);
  const rest = params.size > 0 ? `?${params.toString()}` : '';
  const config = (host: PgHost, chosen: PgSsl): PgConfig => ({
    connectionString: `${scheme}://${userinfo}${formatHost(host)}${path}${rest}`,
    ssl: chosen,
  });
  return {
    hosts,
    requirePrimary: attrs !== 'any' || hosts.length > 1,
    sslmode: sslPlan.mode,
    learnsSsl: ssl.learns,
    configFor: (host) => config(host, ssl.for(formatHost(host))),
    open: (host, open) => ssl.open(formatHost(host), (chosen) => open(config(host, chosen))),
  };
}

function parseHost(text: string): PgHost {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*)(?::(\d+))?$/.exec(text);
  if (match === null || match[1] === '')
    throw new Error(`DATABASE_URL has an empty or malformed host: ${JSON.stringify(text)}`);
  const port = match[2] === undefined ? DEFAULT_PORT : Number(match[2]);
  if (port < 1 || port > 65535) throw new Error(`DATABASE_URL has a bad port: ${JSON.stringify(text)}`);
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function formatHost({ host, port }: PgHost): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export const describeHost = (host: PgHost): string => formatHost(host);
