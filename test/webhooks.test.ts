// Webhooks: the admin routes, Standard Webhooks signatures, the delivery worker (a cursor per
// endpoint, batches in position order, retries, pause, rotation, failure), SSRF refusals, and two
// workers sharing one database. A real HTTP receiver on 127.0.0.1 checks every signature with
// the `standardwebhooks` package, as an integrator would. The worker is driven pass by pass
// (runOnce) on the harness's manual clock wherever it can be; the tests that run it in the
// background wait in real time, briefly and with a bound.
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Webhook } from 'standardwebhooks';
import type { App } from '../src/app.ts';
import type { ChangeListener } from '../src/changes/feed.ts';
import { type ChangeBody, renderChange, staffChangeJson } from '../src/changes/render.ts';
import { systemClock } from '../src/clock.ts';
import { DatabaseUnavailable } from '../src/errors.ts';
import { createMetrics } from '../src/metrics.ts';
import type { ChangeType, NewChange } from '../src/model.ts';
import type { Store } from '../src/storage/store.ts';
import { WebhookWorker, type WebhookWorkerOptions, retryDelayMs } from '../src/webhooks/delivery.ts';
import { isPrivateAddress } from '../src/webhooks/safe-url.ts';
import { sign, verify } from '../src/webhooks/signature.ts';
import { leaseMs } from '../src/webhooks/webhooks.service.ts';
import { contractHarness, contractTest, installContractCheck, isProblem } from './support/contract.ts';
import { type Harness, allPublished, backends } from './support/helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };

/** Private URLs allowed (the receiver is on 127.0.0.1), and retries that wait milliseconds. */
const WEBHOOK_ENV = { WEBHOOK_ALLOW_PRIVATE_URLS: 'true', WEBHOOK_BACKOFF_BASE_MS: '10' };

interface Receipt {
  id: string;
  timestamp: string;
  signature: string;
  /** As verified: inflated first when it came gzipped. */
  body: string;
  /** The content-encoding header, if any, and the bytes as they came. */
  encoding: string | undefined;
  wireBytes: number;
  status: number;
  changes: ChangeBody[];
}

/**
 * An HTTP endpoint that verifies every signature with `standardwebhooks` and answers as told. A
 * gzipped body is inflated first, as a receiver's framework would.
 */
class Receiver {
  secret = '';
  /** The status to answer with. */
  answer = 200;
  delayMs = 0;
  readonly receipts: Receipt[] = [];
  readonly badSignatures: string[] = [];
  /** webhook-ids that were in flight twice at the same moment. */
  readonly overlaps: string[] = [];
  /** Requests in flight at the same moment, at most. */
  maxInFlight = 0;
  private inFlightTotal = 0;
  private readonly inFlight = new Map<string, number>();
  private server: Server | undefined;
  private port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async listen(): Promise<void> {
    const server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** First 2xx receipt of each webhook-id (the de-duplication a receiver does), in the order accepted. */
  accepted(): Receipt[] {
    const seen = new Set<string>();
    return this.receipts.filter((r) => r.status < 300 && !seen.has(r.id) && seen.add(r.id));
  }

  /** The changes of the accepted requests, in the order received. */
  acceptedChanges(): ChangeBody[] {
    return this.accepted().flatMap((r) => r.changes);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const wire = Buffer.concat(chunks);
    const encoding = request.headers['content-encoding'];
    const body = (encoding === 'gzip' ? gunzipSync(wire) : wire).toString();
    const id = String(request.headers['webhook-id']);
    const timestamp = String(request.headers['webhook-timestamp']);
    const signature = String(request.headers['webhook-signature']);
    let changes: ChangeBody[] = [];
    try {
      const payload = new Webhook(this.secret).verify(body, {
        'webhook-id': id,
        'webhook-timestamp': timestamp,
        'webhook-signature': signature,
      }) as { type: string; data: ChangeBody[] };
      assert.equal(request.headers['content-type'], 'application/json');
      assert.equal(payload.type, 'changes.batch');
      changes = payload.data;
    } catch {
      this.badSignatures.push(id);
      changes = (JSON.parse(body) as { data: ChangeBody[] }).data;
    }
    const inFlight = (this.inFlight.get(id) ?? 0) + 1;
    this.inFlight.set(id, inFlight);
    if (inFlight > 1) this.overlaps.push(id);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlightTotal);
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.inFlight.set(id, this.inFlight.get(id)! - 1);
    this.inFlightTotal--;
    const status = this.answer;
    this.receipts.push({ id, timestamp, signature, body, encoding, wireBytes: wire.length, status, changes });
    response.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
  }
}

const admin = (app: App, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });

interface WebhookBody {
  webhook_id: number;
  secret: string;
  cursor_position: string;
  event_types: string[];
  content_encoding: string;
  status: string;
  consecutive_failures: number;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  last_success_at: string | null;
}

async function register(app: App, url: string, eventTypes?: ChangeType[], contentEncoding?: 'identity' | 'gzip') {
  const res = await admin(app, 'POST', '/webhooks', {
    url,
    ...(eventTypes === undefined ? {} : { event_types: eventTypes }),
    ...(contentEncoding === undefined ? {} : { content_encoding: contentEncoding }),
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<WebhookBody>();
}

const endpointOf = async (app: App, id: number) => (await admin(app, 'GET', `/webhooks/${id}`)).json<WebhookBody>();

/** Writes changes as the service would (at the harness clock's time), in one transaction, and numbers them. */
async function writeChanges(h: H, changes: Array<{ eventId: number; type: ChangeType }>): Promise<void> {
  const { store } = h;
  const rows: NewChange[] = changes.map((c, i) => ({
    eventId: c.eventId,
    type: c.type,
    qty: 1,
    snapshot: { total: 100, available: 99 - i, held: 1 + i, booked: 0, waiting: 0 },
  }));
  await store.transaction((tx) => store.recordChanges(tx, rows, h.clock.now()));
  await allPublished(store);
}

/** The log's changes after a webhook's start, as it should receive them. */
async function expectedChanges(store: Store, after: string, types: ChangeType[] = []): Promise<ChangeBody[]> {
  const changes = await store.changesAfter(Number(after), 100_000);
  return changes
    .filter((c) => types.length === 0 || types.includes(c.type))
    .map((change) => renderChange(change, 'staff'));
}

/** Passes until one finds nothing to do. */
async function drain(worker: WebhookWorker, maxPasses = 500): Promise<void> {
  for (let pass = 0; pass < maxPasses; pass++) {
    const result = await worker.runOnce();
    if (result.claimed === 0 && !result.more) return;
  }
  throw new Error(`the worker was still busy after ${maxPasses} passes`);
}

/** Positions must ascend across an endpoint's accepted changes (so per event too). */
function assertInOrder(changes: ChangeBody[]): void {
  for (let i = 1; i < changes.length; i++) {
    assert.ok(
      Number(changes[i - 1]!.position) < Number(changes[i]!.position),
      `${changes[i]!.position} came after ${changes[i - 1]!.position}`,
    );
  }
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const attemptsOf = async (app: App, webhookId: number, query = '') => {
  const res = await admin(app, 'GET', `/webhooks/${webhookId}/attempts${query}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{
    attempts: Array<{
      attempt_id: number;
      first_position: string;
      last_position: string;
      change_count: number;
      outcome: string;
      status_code: number | null;
      latency_ms: number;
      error: string | null;
    }>;
    next_cursor: string | null;
  }>();
};

describe('webhook rules without a database', () => {
  test('signatures follow Standard Webhooks (its published test vector)', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const signature = sign(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    assert.equal(signature, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    assert.ok(verify(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}', `v1,x ${signature}`));
    assert.ok(!verify(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265331, '{"test": 2432232314}', signature));
  });

  test('private, loopback, link-local and unique-local addresses are recognised, IPv4 and IPv6', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a00:1',
      '2002:c0a8:101::1',
    ]) {
      assert.ok(isPrivateAddress(address), address);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808']) {
      assert.ok(!isPrivateAddress(address), address);
    }
  });

  test('what we sign verifies with the standardwebhooks package', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const timestamp = Math.floor(Date.now() / 1000);
    const body = '{"type":"changes.batch","data":[]}';
    const headers = {
      'webhook-id': '1:5-9',
      'webhook-timestamp': String(timestamp),
      'webhook-signature': sign(secret, '1:5-9', timestamp, body),
    };
    assert.deepEqual(new Webhook(secret).verify(body, headers), { type: 'changes.batch', data: [] });
    assert.throws(() => new Webhook(secret).verify(body.replace('[]', '[1]'), headers));
  });

  test('a change in a webhook body is exactly its staff rendering', () => {
    const base = {
      position: 9_007_199_254_740_991,
      eventId: 7,
      type: 'hold.granted' as const,
      holdId: 12,
      bookingId: null,
      qty: 2,
      customer: null,
      at: new Date('2026-12-06T20:40:00.123Z'),
      snapshot: { total: 100, available: 97, held: 3, booked: 0, waiting: 2 },
    };
    const changes = [
      base,
      { ...base, type: 'booking.created' as const, bookingId: 4, customer: 'ann "the buyer" \\ <ann@example.com>\n' },
      { ...base, type: 'event.updated' as const, holdId: null, qty: null, customer: 'åß∂ \u2028 😀' },
    ];
    for (const change of changes) assert.equal(staffChangeJson(change), JSON.stringify(renderChange(change, 'staff')));
  });

  test('retries back off exponentially with jitter, capped at an hour', () => {
    assert.equal(
      retryDelayMs(1, 1000, () => 0),
      500,
    );
    assert.equal(
      retryDelayMs(1, 1000, () => 1),
      1000,
    );
    assert.equal(
      retryDelayMs(4, 1000, () => 1),
      8000,
    );
    assert.equal(
      retryDelayMs(60, 1000, () => 1),
      3_600_000,
    );
    assert.ok(retryDelayMs(3, 1000) >= 2000 && retryDelayMs(3, 1000) <= 4000);
  });
});

for (const backend of backends()) {
  describe(`webhooks on ${backend.name}`, () => {
    let h: H;
    const receiver = new Receiver();
    const workers: WebhookWorker[] = [];
    const newWorker = (options: Partial<WebhookWorkerOptions> = {}) => {
      const worker = new WebhookWorker({ store: h.store, clock: h.clock, config: h.config, ...options });
      workers.push(worker);
      return worker;
    };
    let nextEventId = 1;
    const eventId = () => nextEventId++;

    before(async () => {
      h = await contractHarness(backend, { env: WEBHOOK_ENV });
      await receiver.listen();
    });
    after(async () => {
      await Promise.all(workers.map((worker) => worker.stop()));
      await receiver.close();
      await h.close();
    });

    /** Deletes every webhook, so that each test starts with its own. */
    const reset = async () => {
      for (const webhook of (await admin(h.app, 'GET', '/webhooks')).json().webhooks) {
        assert.equal((await admin(h.app, 'DELETE', `/webhooks/${webhook.webhook_id}`)).statusCode, 204);
      }
      receiver.receipts.length = 0;
      receiver.badSignatures.length = 0;
      receiver.answer = 200;
      receiver.delayMs = 0;
      receiver.maxInFlight = 0;
    };

    /** The store, with the calls of `methods` counted (and, for changesAfter, the changes it returned). */
    const counted = (methods: string[]) => {
      const calls = new Map<string, number>();
      let changesRead = 0;
      const store = new Proxy(h.store, {
        get(target, property, receiverProxy) {
          const value = Reflect.get(target, property, receiverProxy) as unknown;
          if (typeof value !== 'function') return value;
          const name = String(property);
          return (...args: unknown[]) => {
            if (methods.includes(name)) calls.set(name, (calls.get(name) ?? 0) + 1);
            const result = (value as (...a: unknown[]) => unknown).apply(target, args);
            if (name !== 'changesAfter') return result;
            return (result as Promise<unknown[]>).then((changes) => {
              changesRead += changes.length;
              return changes;
            });
          };
        },
      });
      return { store, calls: (name: string) => calls.get(name) ?? 0, changesRead: () => changesRead };
    };

    test('POST /webhooks answers 201 with the secret once; reads never show it; PATCH, DELETE and 404s', async () => {
      await reset();
      await writeChanges(h, [{ eventId: eventId(), type: 'event.created' }]);
      const created = await register(h.app, receiver.url, ['hold.granted', 'hold.granted', 'booking.created']);
      assert.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.equal(Buffer.from(created.secret.slice(6), 'base64').length, 32);
      assert.deepEqual(created.event_types, ['hold.granted', 'booking.created']);
      assert.equal(created.cursor_position, String(await h.store.lastPosition()), 'starts at the head of the log');
      assert.deepEqual([created.attempts, created.next_attempt_at, created.last_error], [0, null, null]);

      const read = (await admin(h.app, 'GET', `/webhooks/${created.webhook_id}`)).json();
      const { secret: _secret, ...withoutSecret } = created;
      assert.deepEqual(read, withoutSecret);
      const list = (await admin(h.app, 'GET', '/webhooks')).json();
      assert.deepEqual(
        list.webhooks.map((w: { webhook_id: number }) => w.webhook_id),
        [created.webhook_id],
      );
      assert.ok(!JSON.stringify(list).includes(created.secret));

      const patched = await admin(h.app, 'PATCH', `/webhooks/${created.webhook_id}`, {
        event_types: [],
        status: 'paused',
      });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual([patched.json().event_types, patched.json().status], [[], 'paused']);
      isProblem(await admin(h.app, 'PATCH', `/webhooks/${created.webhook_id}`, {}), 400, 'validation_failed');
      isProblem(
        await admin(h.app, 'PATCH', `/webhooks/${created.webhook_id}`, { status: 'failed' }),
        400,
        'validation_failed',
      );
      isProblem(
        await admin(h.app, 'POST', '/webhooks', { url: receiver.url, event_types: ['nope'] }),
        400,
        'validation_failed',
      );
      isProblem(await admin(h.app, 'POST', '/webhooks', { url: 'ftp://example.com/' }), 400, 'webhook_url_refused');
      isProblem(await admin(h.app, 'POST', '/webhooks', { url: 'not a url' }), 400, 'webhook_url_refused');

      const rotated = await admin(h.app, 'POST', `/webhooks/${created.webhook_id}/rotate-secret`);
      assert.equal(rotated.statusCode, 200, rotated.body);
      assert.notEqual(rotated.json().secret, created.secret);
      const retried = await admin(h.app, 'POST', `/webhooks/${created.webhook_id}/retry`);
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.json().status, 'paused', 'retry leaves a paused endpoint paused');

      assert.equal((await admin(h.app, 'DELETE', `/webhooks/${created.webhook_id}`)).statusCode, 204);
      for (const [method, url] of [
        ['GET', `/webhooks/${created.webhook_id}`],
        ['DELETE', `/webhooks/${created.webhook_id}`],
        ['POST', `/webhooks/${created.webhook_id}/rotate-secret`],
        ['GET', `/webhooks/${created.webhook_id}/attempts`],
        ['POST', `/webhooks/${created.webhook_id}/retry`],
      ] as const) {
        isProblem(await admin(h.app, method, url), 404, 'not_found');
      }
      isProblem(await admin(h.app, 'PATCH', `/webhooks/${created.webhook_id}`, { status: 'active' }), 404, 'not_found');
    });

    test('DELETE /webhooks/:id with an Idempotency-Key: a retry replays the 204, another webhook is 422', async () => {
      await reset();
      const first = await register(h.app, receiver.url);
      const second = await register(h.app, receiver.url);
      const remove = (id: number, key: string) =>
        h.app.inject({ method: 'DELETE', url: `/webhooks/${id}`, headers: { 'idempotency-key': key } });
      const key = `delete-${first.webhook_id}-${Date.now()}`;
      const deleted = await remove(first.webhook_id, key);
      assert.equal(deleted.statusCode, 204, deleted.body);
      assert.equal(deleted.headers['idempotent-replayed'], undefined);
      const retried = await remove(first.webhook_id, key);
      assert.equal(retried.statusCode, 204, retried.body);
      assert.equal(retried.headers['idempotent-replayed'], 'true');
      assert.equal(retried.body, '');
      assert.equal(retried.headers['content-type'], undefined, 'a 204 carries no content type');
      isProblem(await remove(second.webhook_id, key), 422, 'idempotency_key_reused');
      assert.equal((await admin(h.app, 'GET', `/webhooks/${second.webhook_id}`)).statusCode, 200, 'not deleted');
      // A 404 is stored and replayed too.
      const missingKey = `${key}-missing`;
      isProblem(await remove(first.webhook_id, missingKey), 404, 'not_found');
      const replayed = await remove(first.webhook_id, missingKey);
      isProblem(replayed, 404, 'not_found');
      assert.equal(replayed.headers['idempotent-replayed'], 'true');
    });

    test('every change after registration arrives once, signed, as in the log, in position order, in one batch', async () => {
      await reset();
      const all = await register(h.app, receiver.url);
      receiver.secret = all.secret;
      const events = [eventId(), eventId(), eventId()];
      const kinds: ChangeType[] = ['hold.granted', 'booking.created', 'hold.released', 'hold.expired'];
      for (let round = 0; round < 5; round++) {
        await writeChanges(
          h,
          events.flatMap((id, i) => [{ eventId: id, type: kinds[(round + i) % kinds.length]! }]),
        );
      }
      const metrics = createMetrics();
      await drain(newWorker({ metrics }));
      const expected = await expectedChanges(h.store, all.cursor_position);
      assert.equal(expected.length, 15);
      assert.deepEqual(receiver.badSignatures, []);
      assert.equal(receiver.receipts.length, 1, 'one request carries the 15');
      const [receipt] = receiver.receipts;
      assert.deepEqual(JSON.parse(receipt!.body), { type: 'changes.batch', data: expected }, 'as in the log, in order');
      assert.equal(receipt!.id, `${all.webhook_id}:${expected[0]!.position}-${expected[14]!.position}`);
      assert.ok(Math.abs(Number(receipt!.timestamp) - Date.now() / 1000) < 60, 'the wall-clock time of the attempt');
      const text = await metrics.registry.metrics();
      assert.match(text, /webhook_deliveries_total\{outcome="succeeded"\} 1/);
      assert.match(text, /webhook_delivery_lag_seconds_count 15/);

      const endpoint = await endpointOf(h.app, all.webhook_id);
      assert.equal(endpoint.cursor_position, expected[14]!.position);
      assert.deepEqual([endpoint.attempts, endpoint.next_attempt_at, endpoint.last_status_code], [0, null, 200]);
      assert.equal(endpoint.last_success_at, h.clock.now().toISOString());
      const [attempt] = (await attemptsOf(h.app, all.webhook_id)).attempts;
      assert.deepEqual(
        [
          attempt!.outcome,
          attempt!.status_code,
          attempt!.change_count,
          attempt!.first_position,
          attempt!.last_position,
        ],
        ['succeeded', 200, 15, expected[0]!.position, expected[14]!.position],
      );
      assert.equal(typeof attempt!.latency_ms, 'number');
    });

    test('a backlog goes out in batches of WEBHOOK_BATCH_MAX, one after another, in order', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const id = eventId();
      await writeChanges(
        h,
        Array.from({ length: 10 }, () => ({ eventId: id, type: 'hold.granted' as const })),
      );
      const result = await newWorker({ config: { ...h.config, webhookBatchMax: 4 } }).runOnce();
      assert.equal(result.claimed, 1);
      assert.deepEqual(
        receiver.receipts.map((r) => r.changes.length),
        [4, 4, 2],
        'one pass sends the whole backlog, a batch at a time',
      );
      assert.equal(receiver.maxInFlight, 1, 'one batch in flight per endpoint');
      assert.deepEqual(receiver.acceptedChanges(), await expectedChanges(h.store, webhook.cursor_position));
    });

    test('endpoints at one cursor get the same bytes, each under its own webhook-id and signature; one write per batch', async () => {
      await reset();
      const other = new Receiver();
      await other.listen();
      try {
        const first = await register(h.app, receiver.url);
        const second = await register(h.app, other.url);
        [receiver.secret, other.secret] = [first.secret, second.secret];
        assert.equal(first.cursor_position, second.cursor_position);
        const id = eventId();
        await writeChanges(
          h,
          Array.from({ length: 10 }, () => ({ eventId: id, type: 'hold.granted' as const })),
        );
        const { store, calls, changesRead } = counted(['startBatch', 'finishBatch', 'releaseLease']);
        await newWorker({ store, config: { ...h.config, webhookBatchMax: 4 } }).runOnce();
        assert.deepEqual(
          receiver.receipts.map((r) => r.changes.length),
          [4, 4, 2],
        );
        assert.deepEqual(
          other.receipts.map((r) => r.body),
          receiver.receipts.map((r) => r.body),
          'the same bodies',
        );
        assert.deepEqual([receiver.badSignatures, other.badSignatures], [[], []], 'each verifies under its own secret');
        for (const [i, mine] of receiver.receipts.entries()) {
          const theirs = other.receipts[i]!;
          assert.equal(mine.id.replace(/^\d+:/, ''), theirs.id.replace(/^\d+:/, ''), 'the same span');
          assert.notEqual(mine.id, theirs.id);
          assert.throws(
            () =>
              new Webhook(second.secret).verify(mine.body, {
                'webhook-id': mine.id,
                'webhook-timestamp': mine.timestamp,
                'webhook-signature': mine.signature,
              }),
            'signed for its endpoint only',
          );
        }
        assert.deepEqual(other.acceptedChanges(), await expectedChanges(h.store, second.cursor_position));
        // Per endpoint: the first batch's end is fixed on its own; each later one in the write
        // that records the batch before it; the last write records the last batch and gives the
        // lease back.
        assert.deepEqual([calls('startBatch'), calls('finishBatch'), calls('releaseLease')], [2, 6, 0]);
        assert.ok(changesRead() <= 10, `the log is read once for both endpoints (${changesRead()} changes read)`);
        const attempts = (await attemptsOf(h.app, second.webhook_id)).attempts;
        assert.deepEqual(
          attempts.map((a) => [a.outcome, a.change_count]),
          [
            ['succeeded', 2],
            ['succeeded', 4],
            ['succeeded', 4],
          ],
          'every attempt recorded',
        );
      } finally {
        await other.close();
      }
    });

    test('an endpoint that takes gzip gets the same JSON compressed, signed over the JSON; set back to identity, plain again', async () => {
      await reset();
      const other = new Receiver();
      await other.listen();
      try {
        const zipped = await register(h.app, receiver.url, undefined, 'gzip');
        const plain = await register(h.app, other.url);
        [receiver.secret, other.secret] = [zipped.secret, plain.secret];
        assert.equal((await endpointOf(h.app, zipped.webhook_id)).content_encoding, 'gzip');
        assert.equal(plain.content_encoding, 'identity', 'identity unless asked');
        const id = eventId();
        await writeChanges(
          h,
          Array.from({ length: 200 }, () => ({ eventId: id, type: 'hold.granted' as const })),
        );
        await newWorker().runOnce();
        assert.deepEqual([receiver.badSignatures, other.badSignatures], [[], []], 'both verify with standardwebhooks');
        assert.deepEqual(
          receiver.receipts.map((r) => r.encoding),
          receiver.receipts.map(() => 'gzip'),
        );
        assert.deepEqual(
          other.receipts.map((r) => r.encoding),
          other.receipts.map(() => undefined),
        );
        assert.deepEqual(
          receiver.receipts.map((r) => r.body),
          other.receipts.map((r) => r.body),
          'the same JSON once inflated',
        );
        const wireBytes = (r: Receiver) => r.receipts.reduce((n, x) => n + x.wireBytes, 0);
        assert.ok(
          wireBytes(receiver) * 4 < wireBytes(other),
          `gzip sent ${wireBytes(receiver)} bytes for ${wireBytes(other)}`,
        );
        assert.deepEqual(receiver.acceptedChanges(), await expectedChanges(h.store, zipped.cursor_position));

        const res = await admin(h.app, 'PATCH', `/webhooks/${zipped.webhook_id}`, { content_encoding: 'identity' });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json<WebhookBody>().content_encoding, 'identity');
        await writeChanges(h, [{ eventId: id, type: 'hold.released' }]);
        await newWorker().runOnce();
        assert.equal(receiver.receipts.at(-1)!.encoding, undefined, 'plain once set back');
        assert.deepEqual(receiver.badSignatures, []);
        for (const bad of ['br', 'GZIP', '', null, 1])
          isProblem(
            await admin(h.app, 'PATCH', `/webhooks/${zipped.webhook_id}`, { content_encoding: bad }),
            400,
            'validation_failed',
          );
        isProblem(
          await admin(h.app, 'POST', '/webhooks', { url: receiver.url, content_encoding: 'deflate' }),
          400,
          'validation_failed',
        );
        assert.equal(
          (await endpointOf(h.app, zipped.webhook_id)).content_encoding,
          'identity',
          'unchanged by refusals',
        );
      } finally {
        await other.close();
      }
    });

    test('with the change feed, a worker sends what the feed read without reading the changes again', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      receiver.delayMs = 200;
      const listeners: ChangeListener[] = [];
      const feed = {
        subscribe: (_scope: number | 'all', listener: ChangeListener) => {
          listeners.push(listener);
          return () => {};
        },
      };
      const { store, changesRead } = counted([]);
      const worker = newWorker({ store, feed });
      const id = eventId();
      await writeChanges(h, [{ eventId: id, type: 'hold.granted' }]);
      const pass = worker.runOnce();
      await waitFor('the first request', () => receiver.maxInFlight > 0, 5000);
      // While that endpoint is being served, the feed reads the next changes, as it does anyway.
      const [first] = await h.store.changesAfter(Number(webhook.cursor_position), 100);
      await writeChanges(h, [
        { eventId: id, type: 'hold.released' },
        { eventId: id, type: 'hold.granted' },
      ]);
      const readBefore = changesRead();
      const next = await h.store.changesAfter(first!.position, 100);
      for (const listener of listeners) listener(next, first!.position);
      await pass;
      assert.deepEqual(receiver.acceptedChanges(), await expectedChanges(h.store, webhook.cursor_position));
      assert.equal(receiver.receipts.length, 2);
      assert.equal(changesRead() - readBefore, 0, 'only "nothing more?" was asked of the log');
      assert.deepEqual(receiver.badSignatures, []);
    });

    test('an endpoint paused while a batch is in flight gets no further batch until resumed', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      receiver.delayMs = 200;
      const id = eventId();
      await writeChanges(h, [
        { eventId: id, type: 'hold.granted' },
        { eventId: id, type: 'hold.released' },
        { eventId: id, type: 'hold.granted' },
      ]);
      const worker = newWorker({ config: { ...h.config, webhookBatchMax: 1 } });
      const pass = worker.runOnce();
      await waitFor('the first request', () => receiver.maxInFlight > 0, 5000);
      const path = `/webhooks/${webhook.webhook_id}`;
      assert.equal((await admin(h.app, 'PATCH', path, { status: 'paused' })).statusCode, 200);
      await pass;
      assert.equal(receiver.receipts.length, 1, 'the batch in flight, and no other');
      const expected = await expectedChanges(h.store, webhook.cursor_position);
      const paused = await endpointOf(h.app, webhook.webhook_id);
      assert.equal(paused.cursor_position, expected[0]!.position, 'the delivered batch is recorded');
      assert.equal(paused.status, 'paused');
      receiver.delayMs = 0;
      assert.equal((await admin(h.app, 'PATCH', path, { status: 'active' })).statusCode, 200);
      await drain(worker);
      assert.deepEqual(receiver.acceptedChanges(), expected);
      assert.deepEqual(receiver.badSignatures, []);
    });

    test('an endpoint gets only the change types it asked for; the cursor moves past the others', async () => {
      await reset();
      const bookings = await register(h.app, receiver.url, ['booking.created']);
      receiver.secret = bookings.secret;
      const id = eventId();
      await writeChanges(h, [
        { eventId: id, type: 'hold.granted' },
        { eventId: id, type: 'booking.created' },
        { eventId: id, type: 'hold.granted' },
      ]);
      const worker = newWorker();
      await drain(worker);
      assert.deepEqual(
        receiver.acceptedChanges(),
        await expectedChanges(h.store, bookings.cursor_position, ['booking.created']),
      );
      assert.equal(receiver.acceptedChanges().length, 1);
      await writeChanges(h, [{ eventId: id, type: 'hold.released' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 1, 'nothing sent for a batch of unwanted changes');
      const endpoint = await endpointOf(h.app, bookings.webhook_id);
      assert.equal(endpoint.cursor_position, String(await h.store.lastPosition()), 'but the cursor moved past it');
    });

    test('while the endpoint is down (503, then not listening) the head batch is retried as it was; once back all arrive, in order', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const events = [eventId(), eventId()];
      const worker = newWorker();

      receiver.answer = 503;
      await writeChanges(h, [
        { eventId: events[0]!, type: 'hold.granted' },
        { eventId: events[1]!, type: 'hold.granted' },
        { eventId: events[0]!, type: 'booking.created' },
      ]);
      await worker.runOnce();
      assert.equal((await worker.runOnce()).claimed, 0, 'not due before its backoff');
      h.clock.advanceSeconds(60);
      await worker.runOnce();
      assert.equal(receiver.receipts.length, 2);
      assert.equal(receiver.receipts[0]!.body, receiver.receipts[1]!.body, 'the same body');
      assert.equal(receiver.receipts[0]!.id, receiver.receipts[1]!.id, 'under the same webhook-id');
      let endpoint = await endpointOf(h.app, webhook.webhook_id);
      assert.deepEqual([endpoint.attempts, endpoint.last_status_code], [2, 503]);
      assert.equal(endpoint.last_error, 'the endpoint answered 503');
      assert.equal(typeof endpoint.next_attempt_at, 'string');
      assert.equal(endpoint.cursor_position, webhook.cursor_position, 'the cursor waits');

      await receiver.close();
      await writeChanges(h, [
        { eventId: events[1]!, type: 'hold.released' },
        { eventId: events[0]!, type: 'hold.expired' },
      ]);
      h.clock.advanceSeconds(60);
      await worker.runOnce();
      endpoint = await endpointOf(h.app, webhook.webhook_id);
      assert.equal(endpoint.last_status_code, null);
      assert.match(String(endpoint.last_error), /ECONNREFUSED/);
      assert.equal(endpoint.attempts, 3);

      receiver.answer = 200;
      await receiver.listen();
      h.clock.advanceSeconds(3600);
      await drain(worker);
      assert.deepEqual(receiver.badSignatures, []);
      const accepted = receiver.accepted();
      assert.deepEqual(
        accepted.map((r) => r.changes.length),
        [3, 2],
        'the head batch as first chosen (later changes do not join it), then the rest',
      );
      assert.equal(accepted[0]!.id, receiver.receipts[0]!.id);
      assert.deepEqual(receiver.acceptedChanges(), await expectedChanges(h.store, webhook.cursor_position));
      const outcomes = (await attemptsOf(h.app, webhook.webhook_id)).attempts.map((a) => a.outcome);
      assert.deepEqual(outcomes, ['succeeded', 'succeeded', 'retrying', 'retrying', 'retrying']);
    });

    test('pause holds changes back until resumed; rotate-secret changes the key; delete stops them', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const worker = newWorker();
      const id = eventId();
      const path = `/webhooks/${webhook.webhook_id}`;

      assert.equal((await admin(h.app, 'PATCH', path, { status: 'paused' })).statusCode, 200);
      await writeChanges(h, [{ eventId: id, type: 'hold.granted' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 0, 'nothing while paused');
      assert.equal((await admin(h.app, 'PATCH', path, { status: 'active' })).statusCode, 200);
      await drain(worker);
      assert.equal(receiver.receipts.length, 1, 'what happened while paused, once resumed');

      const rotated = (await admin(h.app, 'POST', `${path}/rotate-secret`)).json();
      await writeChanges(h, [{ eventId: id, type: 'hold.released' }]);
      await drain(worker);
      assert.deepEqual(receiver.badSignatures, [receiver.receipts[1]!.id], 'signed with the new key, not the old');
      receiver.badSignatures.length = 0;
      receiver.secret = rotated.secret;
      const last = receiver.receipts[1]!;
      assert.ok(verify(rotated.secret, last.id, Number(last.timestamp), last.body, last.signature));

      assert.equal((await admin(h.app, 'DELETE', path)).statusCode, 204);
      await writeChanges(h, [{ eventId: id, type: 'hold.granted' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 2, 'nothing after delete');
    });

    test('a batch is given up on WEBHOOK_RETRY_SECONDS after its oldest change; failures in a row mark the endpoint failed; retry revives it', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const path = `/webhooks/${webhook.webhook_id}`;
      const retrySeconds = h.config.webhookRetrySeconds;
      const config = { ...h.config, webhookMaxConsecutiveFailures: 2, webhookBatchMax: 1 };
      const metrics = createMetrics();
      const worker = newWorker({ config, metrics });
      receiver.answer = 500;
      await writeChanges(h, [
        { eventId: eventId(), type: 'hold.granted' },
        { eventId: eventId(), type: 'hold.granted' },
      ]);
      await worker.runOnce();
      h.clock.advanceSeconds(retrySeconds - 1);
      await worker.runOnce();
      assert.equal((await endpointOf(h.app, webhook.webhook_id)).status, 'active', 'still retrying');
      h.clock.advanceSeconds(1);
      await worker.runOnce();
      let endpoint = await endpointOf(h.app, webhook.webhook_id);
      assert.deepEqual([endpoint.status, endpoint.consecutive_failures, endpoint.attempts], ['active', 1, 0]);
      // The second batch is as old: one attempt, and it is given up on too.
      await worker.runOnce();
      endpoint = await endpointOf(h.app, webhook.webhook_id);
      assert.deepEqual([endpoint.status, endpoint.consecutive_failures], ['failed', 2]);
      assert.equal(endpoint.cursor_position, String(await h.store.lastPosition()), 'given up: the cursor moved on');
      const text = await metrics.registry.metrics();
      assert.match(text, /webhook_deliveries_total\{outcome="failed"\} 2/);
      assert.match(text, /webhook_deliveries_total\{outcome="retrying"\} 2/);
      const outcomes = (await attemptsOf(h.app, webhook.webhook_id)).attempts.map((a) => a.outcome);
      assert.deepEqual(outcomes, ['failed', 'failed', 'retrying', 'retrying']);
      assert.equal(receiver.receipts.length, 4);

      // A failed endpoint gets nothing more.
      receiver.answer = 200;
      receiver.receipts.length = 0;
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 0);

      const revived = await admin(h.app, 'POST', `${path}/retry`);
      assert.equal(revived.statusCode, 200, revived.body);
      assert.deepEqual([revived.json().status, revived.json().consecutive_failures], ['active', 0]);
      await drain(worker);
      assert.equal(receiver.acceptedChanges().length, 1, 'the change made while failed, once revived');
      isProblem(await admin(h.app, 'POST', '/webhooks/99999999/retry'), 404, 'not_found');
    });

    test('POST /webhooks/:id/retry tries the head batch now instead of at its backoff', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const worker = newWorker({ config: { ...h.config, webhookBackoffBaseMs: 3_600_000 } });
      receiver.answer = 503;
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      await worker.runOnce();
      receiver.answer = 200;
      assert.equal((await worker.runOnce()).claimed, 0, 'backing off for half an hour or more');
      const retried = await admin(h.app, 'POST', `/webhooks/${webhook.webhook_id}/retry`);
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.json().next_attempt_at, h.clock.now().toISOString());
      await drain(worker);
      assert.equal(receiver.accepted().length, 1);
      assert.equal((await endpointOf(h.app, webhook.webhook_id)).attempts, 0);
    });

    test('a dead endpoint does not hold the others up', async () => {
      await reset();
      const dead = new Receiver();
      await dead.listen();
      const deadUrl = dead.url;
      await dead.close();
      await register(h.app, deadUrl);
      const healthy = await register(h.app, receiver.url);
      receiver.secret = healthy.secret;
      await writeChanges(
        h,
        Array.from({ length: 150 }, () => ({ eventId: eventId(), type: 'hold.granted' as const })),
      );
      const worker = newWorker({ config: { ...h.config, webhookBatchMax: 50 } });
      assert.equal((await worker.runOnce()).claimed, 2);
      assert.equal(receiver.acceptedChanges().length, 150, 'all of them in the pass where the dead one failed');
    });

    test('GET /webhooks/:id/attempts pages newest first with a cursor', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      receiver.answer = 503;
      const worker = newWorker();
      for (let attempt = 0; attempt < 5; attempt++) {
        await worker.runOnce();
        h.clock.advanceSeconds(3600);
      }
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const page = await attemptsOf(
          h.app,
          webhook.webhook_id,
          `?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
        );
        assert.ok(page.attempts.length <= 2);
        seen.push(...page.attempts.map((a) => a.attempt_id));
        cursor = page.next_cursor;
      } while (cursor !== null);
      assert.equal(seen.length, 5);
      assert.deepEqual(
        seen,
        [...seen].sort((a, b) => b - a),
      );
      for (const query of ['?cursor=abc', '?limit=0', '?status=pending']) {
        isProblem(
          await admin(h.app, 'GET', `/webhooks/${webhook.webhook_id}/attempts${query}`),
          400,
          'validation_failed',
        );
      }
    });

    test('the delivery worker refuses private addresses at connect time unless allowed', async () => {
      await reset();
      // Registered while allowed; the worker below is not: the name resolves to loopback now.
      const byName = await register(h.app, receiver.url.replace('127.0.0.1', 'localhost'));
      const byAddress = await register(h.app, receiver.url);
      receiver.secret = byName.secret;
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      await newWorker({ config: { ...h.config, webhookAllowPrivateUrls: false } }).runOnce();
      assert.equal(receiver.receipts.length, 0);
      const named = await endpointOf(h.app, byName.webhook_id);
      assert.match(String(named.last_error), /localhost resolves to .*private, loopback or link-local/);
      const literal = await endpointOf(h.app, byAddress.webhook_id);
      assert.match(String(literal.last_error), /127\.0\.0\.1 is a private, loopback or link-local address/);
    });

    test('a database that fails mid-pass never crashes the worker; deliveries resume when it is back', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      let down = true;
      const flaky = new Proxy(h.store, {
        get(target, property, receiverProxy) {
          const value = Reflect.get(target, property, receiverProxy) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (down) return Promise.reject(new DatabaseUnavailable('injected'));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
      const warnings: string[] = [];
      const log = { warn: (_: object, message: string) => warnings.push(message), error: () => {} };
      const worker = newWorker({ store: flaky, log: log as unknown as WebhookWorkerOptions['log'] });
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      assert.equal((await worker.runOnce()).failed, true);
      await worker.runOnce();
      assert.deepEqual(warnings, ['webhooks: could not claim webhook endpoints'], 'one line, not one per pass');
      down = false;
      await drain(worker);
      assert.equal(receiver.accepted().length, 1);
    });

    test('at least once: a worker that dies after sending, before recording, has its batch sent again once the lease runs out', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      // The "crash": the outcome of the attempt is never recorded, and the lease is never given back.
      const crashing = new Proxy(h.store, {
        get(target, property, receiverProxy) {
          const value = Reflect.get(target, property, receiverProxy) as unknown;
          if (property === 'finishBatch') return () => Promise.reject(new Error('the process died'));
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      const log = { warn: () => {}, error: () => {} };
      await writeChanges(h, [
        { eventId: eventId(), type: 'hold.granted' },
        { eventId: eventId(), type: 'hold.granted' },
      ]);
      await newWorker({ store: crashing, log: log as unknown as WebhookWorkerOptions['log'] }).runOnce();
      assert.equal(receiver.receipts.length, 1);
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      const survivor = newWorker();
      assert.equal((await survivor.runOnce()).claimed, 0, 'leased: no one else sends meanwhile');
      h.clock.advanceSeconds(leaseMs(h.config) / 1000 + 1);
      await drain(survivor);
      assert.equal(receiver.receipts[1]!.id, receiver.receipts[0]!.id, 'the same batch, the same webhook-id');
      assert.equal(receiver.receipts[1]!.body, receiver.receipts[0]!.body);
      assert.equal(receiver.receipts.length, 3, 'then the change written meanwhile');
      assert.deepEqual(receiver.acceptedChanges(), await expectedChanges(h.store, webhook.cursor_position));
      assert.deepEqual(receiver.badSignatures, []);
    });

    test('in the background the worker wakes on new changes (not the poll), delivers, and stops cleanly', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const worker = newWorker({ clock: systemClock, pollIntervalMs: 60_000, feed: h.app.changeFeed });
      worker.start();
      await new Promise((resolve) => setTimeout(resolve, 100));
      await writeChanges(h, [{ eventId: eventId(), type: 'hold.granted' }]);
      await waitFor('the delivery', () => receiver.accepted().length === 1, 5000);
      await worker.stop();
      assert.deepEqual(receiver.badSignatures, []);
    });

    test('a slow endpoint does not delay the others', async () => {
      await reset();
      const slow = new Receiver();
      await slow.listen();
      slow.delayMs = 2000;
      const slowHook = await register(h.app, slow.url);
      slow.secret = slowHook.secret;
      const fast = await register(h.app, receiver.url);
      receiver.secret = fast.secret;
      const worker = newWorker({ clock: systemClock, pollIntervalMs: 20 });
      try {
        worker.start();
        const id = eventId();
        await writeChanges(h, [{ eventId: id, type: 'hold.granted' }]);
        await waitFor('the first change at the fast endpoint', () => receiver.accepted().length === 1, 1500);
        await writeChanges(h, [{ eventId: id, type: 'hold.released' }]);
        await waitFor('the second', () => receiver.acceptedChanges().length === 2, 1500);
        assert.equal(slow.receipts.length, 0, 'the slow one has not answered yet');
        await waitFor('the slow endpoint', () => slow.acceptedChanges().length === 2, 10_000);
        assertInOrder(slow.acceptedChanges());
      } finally {
        await worker.stop();
        await slow.close();
      }
    });

    if (backend.name !== 'pglite') {
      test('two workers on one database never send a batch twice at once, nor out of order', async () => {
        await reset();
        const webhook = await register(h.app, receiver.url);
        receiver.secret = webhook.secret;
        receiver.delayMs = 15;
        const second = await backend.reopen(h.url);
        try {
          const options = { clock: systemClock, pollIntervalMs: 10, config: { ...h.config, webhookBatchMax: 5 } };
          const a = newWorker(options);
          const b = newWorker({ ...options, store: second });
          const events = Array.from({ length: 12 }, eventId);
          a.start();
          b.start();
          for (let round = 0; round < 6; round++) {
            await writeChanges(
              h,
              events.map((id) => ({ eventId: id, type: 'hold.granted' as const })),
            );
          }
          const expected = await expectedChanges(h.store, webhook.cursor_position);
          await waitFor('every change', () => receiver.acceptedChanges().length >= expected.length, 30_000);
          await Promise.all([a.stop(), b.stop()]);
          assert.deepEqual(receiver.overlaps, [], 'no webhook-id in flight twice at once');
          assert.equal(receiver.maxInFlight, 1, 'one batch in flight for the endpoint');
          assert.equal(
            receiver.receipts.reduce((n, r) => n + r.changes.length, 0),
            expected.length,
            'each change sent exactly once',
          );
          assert.deepEqual(receiver.acceptedChanges(), expected);
          assert.deepEqual(receiver.badSignatures, []);
        } finally {
          await second.close();
        }
      });
    }
  });
}

describe('webhook URLs are checked at registration', () => {
  let h: H;
  const auth = { authorization: 'Bearer a-staff-token-long-enough' };
  before(async () => {
    h = await contractHarness(backends()[0]!, { env: { ADMIN_TOKEN: 'a-staff-token-long-enough' } });
  });
  after(() => h.close());

  const create = (url: string) => h.app.inject({ method: 'POST', url: '/webhooks', headers: auth, payload: { url } });

  test('private, loopback and link-local URLs are refused without WEBHOOK_ALLOW_PRIVATE_URLS', async () => {
    for (const url of [
      'http://127.0.0.1:8080/hook',
      'http://localhost/hook',
      'http://[::1]/hook',
      'http://10.0.0.7/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[fd12::1]/hook',
      'http://[::ffff:192.168.0.1]/hook',
      'file:///etc/passwd',
    ]) {
      isProblem(await create(url), 400, 'webhook_url_refused');
    }
    // A public address is accepted (an address literal: nothing is resolved, nothing is sent here).
    const res = await create('https://1.1.1.1/hook');
    assert.equal(res.statusCode, 201, res.body);
    isProblem(
      await h.app.inject({
        method: 'PATCH',
        url: `/webhooks/${res.json().webhook_id}`,
        headers: auth,
        payload: { url: 'http://192.168.1.1/' },
      }),
      400,
      'webhook_url_refused',
    );
  });

  test('webhook routes need the admin token when it is set', async () => {
    for (const [method, url] of [
      ['GET', '/webhooks'],
      ['POST', '/webhooks'],
      ['GET', '/webhooks/1'],
      ['PATCH', '/webhooks/1'],
      ['DELETE', '/webhooks/1'],
      ['POST', '/webhooks/1/rotate-secret'],
      ['GET', '/webhooks/1/attempts'],
      ['POST', '/webhooks/1/retry'],
    ] as const) {
      isProblem(await h.app.inject({ method, url, payload: {} }), 401, 'unauthorized');
    }
  });
});

contractTest();
