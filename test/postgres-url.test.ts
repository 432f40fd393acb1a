// DATABASE_URL's sslmode, as libpq reads it (src/db/postgres-ssl.ts): the translation for each
// mode, single- and multi-host; the fallback of allow and prefer; then real connections, to the
// test server (no TLS) and to a throwaway server with TLS and a certificate made here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type ThrowawayPostgres, startThrowawayPostgres } from './support/throwaway-postgres.ts';
import { openPostgres } from '../src/db/postgres.ts';
import { type PgSsl, SslChoice, takeSslParams } from '../src/db/postgres-ssl.ts';
import { parsePostgresUrl } from '../src/db/postgres-url.ts';

const dir = mkdtempSync(join(tmpdir(), 'box-office-ssl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const rootcert = file('root.crt', 'the CA certificate');

/** The `ssl` options a URL's parameters ask for, in the order they are tried. */
const tries = (query: string, env: NodeJS.ProcessEnv = {}): PgSsl[] =>
  takeSslParams(new URLSearchParams(query), env).tries;
const noCheck = { rejectUnauthorized: false };

/** The TLS options without checkServerIdentity, and whether it was a no-op (verify-ca's). */
function split(ssl: PgSsl): [PgSsl, 'no-op' | 'none'] {
  if (ssl === false || ssl.checkServerIdentity === undefined) return [ssl, 'none'];
  const { checkServerIdentity, ...rest } = ssl;
  assert.equal(checkServerIdentity('db.example', {} as never), undefined);
  return [rest, 'no-op'];
}

describe('sslmode: what each mode asks node-postgres for', () => {
  test('disable: plain only', () => {
    assert.deepEqual(tries('sslmode=disable'), [false]);
  });
  test('allow: plain first, then TLS without checking the certificate', () => {
    assert.deepEqual(tries('sslmode=allow'), [false, noCheck]);
  });
  test('prefer: TLS without checking the certificate first, then plain', () => {
    assert.deepEqual(tries('sslmode=prefer'), [noCheck, false]);
  });
  test('no sslmode: PGSSLMODE, else prefer, as libpq', () => {
    assert.deepEqual(tries(''), [noCheck, false]);
    assert.deepEqual(tries('', { PGSSLMODE: 'disable' }), [false]);
    assert.deepEqual(tries('sslmode=require', { PGSSLMODE: 'disable' }), [noCheck]);
  });
  test('require: TLS without checking the certificate', () => {
    assert.deepEqual(tries('sslmode=require'), [noCheck]);
  });
  test('require with sslrootcert: the chain is checked, as verify-ca (libpq)', () => {
    const [only] = tries(`sslmode=require&sslrootcert=${rootcert}`);
    assert.deepEqual(split(only!), [{ rejectUnauthorized: true, ca: 'the CA certificate' }, 'no-op']);
  });
  test('verify-ca: the chain against sslrootcert, not the host name', () => {
    const [only] = tries(`sslmode=verify-ca&sslrootcert=${rootcert}`);
    assert.deepEqual(split(only!), [{ rejectUnauthorized: true, ca: 'the CA certificate' }, 'no-op']);
    // Without sslrootcert, against Node's trusted roots.
    assert.deepEqual(split(tries('sslmode=verify-ca')[0]!), [{ rejectUnauthorized: true }, 'no-op']);
  });
  test('verify-full: the chain and the host name', () => {
    assert.deepEqual(tries(`sslmode=verify-full&sslrootcert=${rootcert}`), [
      { rejectUnauthorized: true, ca: 'the CA certificate' },
    ]);
    assert.deepEqual(tries('sslmode=verify-full&sslrootcert=system'), [{ rejectUnauthorized: true }]);
  });
  test('sslcert and sslkey: a client certificate, on every TLS try', () => {
    const cert = file('client.crt', 'client certificate');
    const key = file('client.key', 'client key');
    assert.deepEqual(tries(`sslmode=prefer&sslcert=${cert}&sslkey=${key}`), [
      { rejectUnauthorized: false, cert: 'client certificate', key: 'client key' },
      false,
    ]);
  });
  test('refused with a clear message: an unknown sslmode, an unreadable file, ssl parameters not honoured', () => {
    assert.throws(
      () => parsePostgresUrl('postgres://db/app?sslmode=on'),
      /^Error: DATABASE_URL sslmode=on is not one of disable, allow, prefer, require, verify-ca, verify-full$/,
    );
    assert.throws(
      () => parsePostgresUrl(`postgres://db/app?sslmode=verify-ca&sslrootcert=${join(dir, 'missing.crt')}`),
      /DATABASE_URL sslrootcert=.*missing\.crt cannot be read: ENOENT/,
    );
    assert.throws(() => parsePostgresUrl('postgres://db/app?ssl=true'), /DATABASE_URL ssl is not supported/);
    assert.throws(
      () => parsePostgresUrl('postgres://db/app?sslnegotiation=direct'),
      /DATABASE_URL sslnegotiation is not supported; the ssl parameters honoured are sslmode, sslrootcert/,
    );
    assert.throws(
      () => parsePostgresUrl('postgres://db/app', { PGSSLMODE: 'yes' }),
      /^Error: PGSSLMODE=yes is not one of/,
    );
  });
});

describe('sslmode: the URL node-postgres gets', () => {
  const url = `postgres://app:pw@h1:5433,h2/box?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=${rootcert}&application_name=x`;

  test('each host of a multi-host URL: the ssl parameters taken out, the rest kept, the same ssl option', () => {
    const target = parsePostgresUrl(url);
    assert.equal(target.sslmode, 'verify-full');
    const configs = target.hosts.map((host) => target.configFor(host));
    assert.deepEqual(
      configs.map((c) => c.connectionString),
      ['postgres://app:pw@h1:5433/box?application_name=x', 'postgres://app:pw@h2:5432/box?application_name=x'],
    );
    for (const c of configs) assert.deepEqual(c.ssl, { rejectUnauthorized: true, ca: 'the CA certificate' });
  });

  test('node-postgres takes our ssl option, not its own reading of sslmode', () => {
    for (const mode of ['disable', 'prefer', 'require', 'verify-ca', 'verify-full']) {
      const target = parsePostgresUrl(`postgres://app@db/box?sslmode=${mode}&sslrootcert=${rootcert}`);
      const config = target.configFor(target.hosts[0]!);
      const client = new pg.Client(config) as pg.Client & { ssl: PgSsl };
      assert.equal(client.ssl, config.ssl === false ? false : config.ssl, mode);
    }
  });

  test('a single-host URL: prefer by default', () => {
    const target = parsePostgresUrl('postgres://app@db/box');
    assert.equal(target.sslmode, 'prefer');
    assert.equal(target.learnsSsl, true);
    assert.deepEqual(target.configFor(target.hosts[0]!), {
      connectionString: 'postgres://app@db:5432/box',
      ssl: noCheck,
    });
  });
});

describe('sslmode: the fallback of allow and prefer', () => {
  const noTls = new Error('The server does not support SSL connections');
  const hbaRefusal = Object.assign(new Error('pg_hba.conf rejects connection'), { code: '28000' });
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

  /** A server that answers `tls` or `plain` connections as told, and what was tried. */
  function server(answer: { tls?: Error; plain?: Error }) {
    const attempts: string[] = [];
    const open = async (ssl: PgSsl) => {
      const way = ssl === false ? 'plain' : 'tls';
      attempts.push(way);
      const error = answer[way];
      if (error !== undefined) throw error;
      return way;
    };
    return { attempts, open };
  }

  test('prefer on a server without TLS: plain, and plain straight away next time', async () => {
    const choice = new SslChoice(takeSslParams(new URLSearchParams('sslmode=prefer'), {}));
    const s = server({ tls: noTls });
    assert.equal(await choice.open('db:5432', s.open), 'plain');
    assert.equal(await choice.open('db:5432', s.open), 'plain');
    assert.deepEqual(s.attempts, ['tls', 'plain', 'plain']);
    assert.equal(choice.for('db:5432'), false);
    assert.deepEqual(choice.for('other:5432'), noCheck, 'remembered per host');
  });

  test('prefer on a server whose pg_hba.conf refuses TLS (hostnossl): plain', async () => {
    const choice = new SslChoice(takeSslParams(new URLSearchParams('sslmode=prefer'), {}));
    const s = server({ tls: hbaRefusal });
    assert.equal(await choice.open('db:5432', s.open), 'plain');
  });

  test('allow on a server that takes only TLS (hostssl): TLS, remembered', async () => {
    const choice = new SslChoice(takeSslParams(new URLSearchParams('sslmode=allow'), {}));
    const s = server({ plain: hbaRefusal });
    assert.equal(await choice.open('db:5432', s.open), 'tls');
    assert.equal(await choice.open('db:5432', s.open), 'tls');
    assert.deepEqual(s.attempts, ['plain', 'tls', 'tls']);
  });

  test('refused both ways: the reason plain was refused, not that TLS is missing', async () => {
    const choice = new SslChoice(takeSslParams(new URLSearchParams('sslmode=allow'), {}));
    const s = server({ plain: hbaRefusal, tls: noTls });
    await assert.rejects(choice.open('db:5432', s.open), /pg_hba/);
    assert.deepEqual(s.attempts, ['plain', 'tls']);
  });

  test('a server that changed its mind since: the other way again', async () => {
    const choice = new SslChoice(takeSslParams(new URLSearchParams('sslmode=prefer'), {}));
    await choice.open('db:5432', server({ tls: noTls }).open);
    const now = server({ plain: hbaRefusal });
    assert.equal(await choice.open('db:5432', now.open), 'tls');
    assert.deepEqual(now.attempts, ['plain', 'tls']);
  });

  test('no fallback for a server that is down, nor for require, nor for disable', async () => {
    const prefer = new SslChoice(takeSslParams(new URLSearchParams('sslmode=prefer'), {}));
    const down = server({ tls: refused, plain: refused });
    await assert.rejects(prefer.open('db:5432', down.open), /ECONNREFUSED/);
    assert.deepEqual(down.attempts, ['tls']);
    const require = new SslChoice(takeSslParams(new URLSearchParams('sslmode=require'), {}));
    await assert.rejects(require.open('db:5432', server({ tls: noTls }).open), /does not support SSL/);
    const disable = new SslChoice(takeSslParams(new URLSearchParams('sslmode=disable'), {}));
    await assert.rejects(disable.open('db:5432', server({ plain: hbaRefusal }).open), /pg_hba/);
  });
});

/** Whether this connection is TLS, per the server. */
async function usesTls(url: string): Promise<boolean> {
  const db = await openPostgres(url, { connectTimeoutMs: 3000 });
  try {
    const { rows } = await db.query<{ ssl: boolean }>('select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    return rows[0]!.ssl;
  } finally {
    await db.close();
  }
}

const serverUrl = process.env.TEST_DATABASE_URL;
describe(
  'sslmode on a server without TLS (TEST_DATABASE_URL)',
  { skip: serverUrl ? false : 'no TEST_DATABASE_URL' },
  () => {
    const withMode = (mode: string) => `${serverUrl}${serverUrl!.includes('?') ? '&' : '?'}sslmode=${mode}`;
    let hasTls = false;
    before(async () => {
      hasTls = await usesTls(withMode('prefer'));
    });

    test('disable, allow and prefer connect, plain', async (t) => {
      if (hasTls) return t.skip('this server has TLS');
      for (const mode of ['disable', 'allow', 'prefer']) assert.equal(await usesTls(withMode(mode)), false, mode);
      assert.equal(await usesTls(serverUrl!.replace(/[?&]sslmode=[^&]*/, '')), false, 'no sslmode');
    });

    test('the multi-host form with sslmode=prefer, as pg_autoctl prints it, connects', async (t) => {
      if (hasTls) return t.skip('this server has TLS');
      const u = new URL(serverUrl!);
      const hosts = `${u.host},${u.host}`;
      const multi = `postgres://${u.username}${u.password ? `:${u.password}` : ''}@${hosts}${u.pathname}?target_session_attrs=read-write&sslmode=prefer`;
      assert.equal(await usesTls(multi), false);
    });

    test('require, verify-ca and verify-full are refused, and say why', async (t) => {
      if (hasTls) return t.skip('this server has TLS');
      for (const mode of ['require', 'verify-ca', 'verify-full'])
        await assert.rejects(usesTls(withMode(mode)), /The server does not support SSL connections/, mode);
    });
  },
);

// A throwaway server with TLS: a CA, and a server certificate it signed for 127.0.0.1 only (no
// DNS name), so "localhost" passes verify-ca and fails verify-full. pg_hba.conf has a role that
// may only use TLS and one that may only use plain connections.
const run = (cmd: string, args: string[]): string | undefined => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return undefined;
  }
};
// As root the server runs as the postgres user, which must own its key.
const asRoot = process.getuid?.() === 0;
const postgresIds = asRoot ? [run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])].map(Number) : [];
const skipTls =
  run('openssl', ['version']) === undefined
    ? 'openssl is not installed'
    : asRoot && postgresIds.some(Number.isNaN)
      ? 'no postgres user to own the key'
      : false;
describe('sslmode on a server with TLS', { skip: skipTls }, () => {
  let server: ThrowawayPostgres;
  const certs = mkdtempSync(join(tmpdir(), 'box-office-tls-'));
  chmodSync(certs, 0o755);
  const ca = join(certs, 'ca.crt');
  const otherCa = join(certs, 'other-ca.crt');
  const url = (user: string, host: string, query: string) =>
    `postgres://${user}@${host}:${server.port}/postgres?${query}`;

  before(async () => {
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: certs, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=test CA');
    openssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=other');
    openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(certs, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(
      'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext',
    ); // prettier-ignore
    writeFileSync(
      join(certs, 'pg_hba.conf'),
      [
        'local all all trust',
        'hostssl all tls_only all trust',
        'hostnossl all plain_only all trust',
        'host all tls_only,plain_only all reject',
        'host all all all scram-sha-256',
        '',
      ].join('\n'),
    );
    for (const name of ['ca.crt', 'server.crt', 'pg_hba.conf']) chmodSync(join(certs, name), 0o644);
    chmodSync(join(certs, 'server.key'), 0o600);
    if (asRoot) chownSync(join(certs, 'server.key'), postgresIds[0]!, postgresIds[1]!);
    server = await startThrowawayPostgres('box-office-tls-pg-', {
      postgresFlags: [
        ...['-c', 'ssl=on', '-c', `ssl_cert_file=${join(certs, 'server.crt')}`],
        ...['-c', `ssl_key_file=${join(certs, 'server.key')}`, '-c', `hba_file=${join(certs, 'pg_hba.conf')}`],
      ],
    });
    const admin = new pg.Client({ connectionString: server.url, ssl: false });
    await admin.connect();
    await admin.query('create role tls_only login; create role plain_only login');
    await admin.end();
  });
  after(async () => {
    await server?.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  const admin = (host: string, query: string) => url('postgres:postgres', host, query);

  test('prefer and require use TLS; allow and disable do not', async () => {
    assert.equal(await usesTls(admin('127.0.0.1', 'sslmode=prefer')), true);
    assert.equal(await usesTls(admin('127.0.0.1', '')), true, 'no sslmode: prefer');
    assert.equal(await usesTls(admin('127.0.0.1', 'sslmode=require')), true);
    assert.equal(await usesTls(admin('127.0.0.1', 'sslmode=allow')), false);
    assert.equal(await usesTls(admin('127.0.0.1', 'sslmode=disable')), false);
  });

  test('verify-ca checks the chain only; verify-full the host name too', async () => {
    assert.equal(await usesTls(admin('127.0.0.1', `sslmode=verify-ca&sslrootcert=${ca}`)), true);
    assert.equal(await usesTls(admin('localhost', `sslmode=verify-ca&sslrootcert=${ca}`)), true);
    assert.equal(await usesTls(admin('127.0.0.1', `sslmode=verify-full&sslrootcert=${ca}`)), true);
    await assert.rejects(
      usesTls(admin('localhost', `sslmode=verify-full&sslrootcert=${ca}`)),
      /Hostname\/IP does not match certificate's altnames/,
    );
    for (const query of [
      `sslmode=verify-ca&sslrootcert=${otherCa}`,
      'sslmode=verify-ca',
      `sslmode=require&sslrootcert=${otherCa}`,
    ])
      await assert.rejects(usesTls(admin('127.0.0.1', query)), /certificate/i, query);
  });

  test('allow on a role pg_hba.conf lets in only over TLS: TLS; prefer on one only plain: plain', async () => {
    assert.equal(await usesTls(url('tls_only', '127.0.0.1', 'sslmode=allow')), true);
    await assert.rejects(usesTls(url('tls_only', '127.0.0.1', 'sslmode=disable')), /pg_hba\.conf/);
    assert.equal(await usesTls(url('plain_only', '127.0.0.1', 'sslmode=prefer')), false);
    await assert.rejects(usesTls(url('plain_only', '127.0.0.1', 'sslmode=require')), /pg_hba\.conf/);
  });

  test('the multi-host form: each host on its own', async () => {
    const hosts = `127.0.0.1:${server.port},localhost:${server.port}`;
    const multi = `postgres://postgres:postgres@${hosts}/postgres?target_session_attrs=read-write&sslmode=verify-ca&sslrootcert=${ca}`;
    assert.equal(await usesTls(multi), true);
  });
});
