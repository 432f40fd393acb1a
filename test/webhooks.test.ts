// Webhooks: the admin routes, Standard Webhooks signatures, the delivery worker (fan-out,
// ordered and retried deliveries, pause, rotation, failure), SSRF refusals, and two workers
// sharing one database. A real HTTP receiver on 127.0.0.1 checks every signature. The worker is
// driven pass by pass (runOnce) on the harness's manual clock wherever it can be; the tests that
// run it in the background wait in real time, briefly and with a bound.
import assert from 'node:assert/strict';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.ts';
import { renderChange } from '../src/changes/render.ts';
import { systemClock } from '../src/clock.ts';
import { DatabaseUnavailable } from '../src/errors.ts';
import { createMetrics } from '../src/metrics.ts';
import type { ChangeType, NewChange } from '../src/model.ts';
import type { Store } from '../src/storage/store.ts';
import { WebhookWorker, type WebhookWorkerOptions, retryDelayMs } from '../src/webhooks/delivery.ts';
import { isPrivateAddress } from '../src/webhooks/safe-url.ts';
import { sign, verify } from '../src/webhooks/signature.ts';
import { contractHarness, contractTest, installContractCheck, isProblem } from './contract.ts';
import { type Harness, backends } from './helpers.ts';

installContractCheck();

type H = Harness & { close: () => Promise<void> };

/** Private URLs allowed (the receiver is on 127.0.0.1), and retries that wait milliseconds. */
const WEBHOOK_ENV = { WEBHOOK_ALLOW_PRIVATE_URLS: 'true', WEBHOOK_BACKOFF_BASE_MS: '10' };

interface Receipt {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  status: number;
}

/** An HTTP endpoint that verifies every signature and answers as told. */
class Receiver {
  secret = '';
  /** The status to answer with. */
  answer = 200;
  delayMs = 0;
  readonly receipts: Receipt[] = [];
  readonly badSignatures: string[] = [];
  /** webhook-ids that were in flight twice at the same moment. */
  readonly overlaps: string[] = [];
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

  /** First 2xx receipt of each webhook-id, in the order they were accepted. */
  accepted(): Receipt[] {
    const seen = new Set<string>();
    return this.receipts.filter((r) => r.status < 300 && !seen.has(r.id) && seen.add(r.id));
  }

  acceptedPositions(): string[] {
    return this.accepted().map((r) => JSON.parse(r.body).position);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    const id = String(request.headers['webhook-id']);
    const timestamp = String(request.headers['webhook-timestamp']);
    const signature = String(request.headers['webhook-signature']);
    if (
      request.headers['content-type'] !== 'application/json' ||
      !verify(this.secret, id, Number(timestamp), body, signature)
    ) {
      this.badSignatures.push(id);
    }
    const inFlight = (this.inFlight.get(id) ?? 0) + 1;
    this.inFlight.set(id, inFlight);
    if (inFlight > 1) this.overlaps.push(id);
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    this.inFlight.set(id, this.inFlight.get(id)! - 1);
    const status = this.answer;
    this.receipts.push({ id, timestamp, signature, body, status });
    response.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
  }
}

const admin = (app: App, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });

async function register(app: App, url: string, eventTypes?: ChangeType[]) {
  const res = await admin(app, 'POST', '/webhooks', {
    url,
    ...(eventTypes === undefined ? {} : { event_types: eventTypes }),
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<{ webhook_id: number; secret: string; last_position: string; event_types: string[] }>();
}

/** Writes changes as the service would, in one transaction, and numbers them. */
async function writeChanges(store: Store, changes: Array<{ eventId: number; type: ChangeType }>): Promise<void> {
  const rows: NewChange[] = changes.map((c, i) => ({
    eventId: c.eventId,
    type: c.type,
    qty: 1,
    snapshot: { total: 100, available: 99 - i, held: 1 + i, booked: 0 },
  }));
  await store.transaction((tx) => store.recordChanges(tx, rows, new Date()));
  // The app's own sequencer may be numbering them right now (ours then returns at once): wait
  // until none is left unnumbered.
  const deadline = Date.now() + 5000;
  for (;;) {
    await store.sequenceChanges(1000);
    const [left] = await store.sql.rows<{ n: number }>('select count(*) as n from changes where position is null');
    if (Number(left!.n) === 0) return;
    if (Date.now() > deadline) throw new Error('changes were never numbered');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The log's changes after a webhook's start, as the bodies it should receive. */
async function expectedBodies(store: Store, after: string, types: ChangeType[] = []): Promise<string[]> {
  const changes = await store.changesAfter(Number(after), 100_000);
  return changes
    .filter((c) => types.length === 0 || types.includes(c.type))
    .map((c) => JSON.stringify(renderChange(c)));
}

/** Passes until one finds nothing to do. */
async function drain(worker: WebhookWorker, maxPasses = 500): Promise<void> {
  for (let pass = 0; pass < maxPasses; pass++) {
    const result = await worker.runOnce();
    if (result.claimed === 0 && result.fannedOut === 0 && !result.more) return;
  }
  throw new Error(`the worker was still busy after ${maxPasses} passes`);
}

/** Each event's accepted positions, which must ascend. */
function assertOrderedPerEvent(receipts: Receipt[]): void {
  const last = new Map<number, number>();
  for (const receipt of receipts) {
    const change = JSON.parse(receipt.body) as { event_id: number; position: string };
    const position = Number(change.position);
    assert.ok((last.get(change.event_id) ?? 0) < position, `event ${change.event_id} got ${position} out of order`);
    last.set(change.event_id, position);
  }
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const deliveriesOf = async (app: App, webhookId: number, query = '') => {
  const res = await admin(app, 'GET', `/webhooks/${webhookId}/deliveries${query}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{
    deliveries: Array<Record<string, unknown> & { delivery_id: number; status: string; attempts: number }>;
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
      receiver.answer = 200;
      receiver.delayMs = 0;
    };

    test('POST /webhooks answers 201 with the secret once; reads never show it; PATCH, DELETE and 404s', async () => {
      await reset();
      await writeChanges(h.store, [{ eventId: eventId(), type: 'event.created' }]);
      const created = await register(h.app, receiver.url, ['hold.granted', 'hold.granted', 'booking.created']);
      assert.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
      assert.equal(Buffer.from(created.secret.slice(6), 'base64').length, 32);
      assert.deepEqual(created.event_types, ['hold.granted', 'booking.created']);
      assert.equal(created.last_position, String(await h.store.lastPosition()), 'starts at the head of the log');

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

      assert.equal((await admin(h.app, 'DELETE', `/webhooks/${created.webhook_id}`)).statusCode, 204);
      for (const [method, url] of [
        ['GET', `/webhooks/${created.webhook_id}`],
        ['DELETE', `/webhooks/${created.webhook_id}`],
        ['POST', `/webhooks/${created.webhook_id}/rotate-secret`],
        ['GET', `/webhooks/${created.webhook_id}/deliveries`],
        ['POST', `/webhooks/${created.webhook_id}/deliveries/1/retry`],
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

    test('every change after registration arrives once, signed, as in the log, in order per event', async () => {
      await reset();
      const all = await register(h.app, receiver.url);
      receiver.secret = all.secret;
      const events = [eventId(), eventId(), eventId()];
      const kinds: ChangeType[] = ['hold.granted', 'booking.created', 'hold.released', 'hold.expired'];
      for (let round = 0; round < 5; round++) {
        await writeChanges(
          h.store,
          events.flatMap((id, i) => [{ eventId: id, type: kinds[(round + i) % kinds.length]! }]),
        );
      }
      const metrics = createMetrics();
      await drain(newWorker({ metrics }));
      const expected = await expectedBodies(h.store, all.last_position);
      assert.equal(expected.length, 15);
      assert.deepEqual(receiver.badSignatures, []);
      assert.equal(receiver.receipts.length, 15, 'each change sent once');
      assert.deepEqual(
        receiver
          .accepted()
          .map((r) => r.body)
          .sort(),
        [...expected].sort(),
        'the body is the change as in the log',
      );
      assertOrderedPerEvent(receiver.accepted());
      for (const receipt of receiver.receipts) {
        assert.match(receipt.id, /^msg_\d+$/);
        assert.equal(receipt.timestamp, String(Math.floor(h.clock.now().getTime() / 1000)));
      }
      assert.match(await metrics.registry.metrics(), /webhook_deliveries_total\{outcome="succeeded"\} 15/);

      const page = await deliveriesOf(h.app, all.webhook_id);
      const first = page.deliveries[0]!;
      assert.equal(first.status, 'succeeded');
      assert.equal(first.attempts, 1);
      assert.equal(first.last_status_code, 200);
      assert.equal(typeof first.last_latency_ms, 'number');
      assert.equal(first.next_attempt_at, null);
      assert.equal(typeof first.delivered_at, 'string');
    });

    test('an endpoint gets only the change types it asked for', async () => {
      await reset();
      const bookings = await register(h.app, receiver.url, ['booking.created']);
      receiver.secret = bookings.secret;
      const id = eventId();
      await writeChanges(h.store, [
        { eventId: id, type: 'hold.granted' },
        { eventId: id, type: 'booking.created' },
        { eventId: id, type: 'hold.granted' },
      ]);
      await drain(newWorker());
      assert.deepEqual(
        receiver.accepted().map((r) => r.body),
        await expectedBodies(h.store, bookings.last_position, ['booking.created']),
      );
      assert.equal(receiver.accepted().length, 1);
    });

    test('while the endpoint is down (503, then not listening) changes wait; once back every one arrives, in order', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const events = [eventId(), eventId()];
      const worker = newWorker();

      receiver.answer = 503;
      await writeChanges(h.store, [
        { eventId: events[0]!, type: 'hold.granted' },
        { eventId: events[1]!, type: 'hold.granted' },
        { eventId: events[0]!, type: 'booking.created' },
      ]);
      await worker.runOnce();
      h.clock.advanceSeconds(60);
      await worker.runOnce();
      // Only the oldest change of each event is tried while it fails.
      assert.equal(receiver.receipts.length, 4);
      assert.deepEqual(new Set(receiver.receipts.map((r) => JSON.parse(r.body).type)), new Set(['hold.granted']));
      const waiting = (await deliveriesOf(h.app, webhook.webhook_id, '?status=pending')).deliveries;
      assert.equal(waiting.length, 3);
      const tried = waiting.find((d) => d.attempts === 2)!;
      assert.equal(tried.last_status_code, 503);
      assert.equal(tried.last_error, 'the endpoint answered 503');
      assert.equal(typeof tried.next_attempt_at, 'string');

      await receiver.close();
      await writeChanges(h.store, [
        { eventId: events[1]!, type: 'hold.released' },
        { eventId: events[0]!, type: 'hold.expired' },
      ]);
      h.clock.advanceSeconds(60);
      await worker.runOnce();
      const refused = (await deliveriesOf(h.app, webhook.webhook_id, '?status=pending')).deliveries;
      assert.equal(refused.length, 5);
      assert.ok(refused.some((d) => d.last_status_code === null && /ECONNREFUSED/.test(String(d.last_error))));

      receiver.answer = 200;
      await receiver.listen();
      h.clock.advanceSeconds(3600);
      await drain(worker);
      assert.deepEqual(receiver.badSignatures, []);
      assert.deepEqual(
        receiver
          .accepted()
          .map((r) => r.body)
          .sort(),
        (await expectedBodies(h.store, webhook.last_position)).sort(),
      );
      assertOrderedPerEvent(receiver.accepted());
      // The same webhook-id on every attempt of a delivery.
      const firstId = receiver.receipts[0]!.id;
      assert.ok(receiver.receipts.filter((r) => r.id === firstId).length >= 3);
      assert.equal((await deliveriesOf(h.app, webhook.webhook_id, '?status=pending')).deliveries.length, 0);
    });

    test('pause holds deliveries back until resumed; rotate-secret changes the key; delete stops them', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const worker = newWorker();
      const id = eventId();
      const path = `/webhooks/${webhook.webhook_id}`;

      assert.equal((await admin(h.app, 'PATCH', path, { status: 'paused' })).statusCode, 200);
      await writeChanges(h.store, [{ eventId: id, type: 'hold.granted' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 0, 'nothing while paused');
      assert.equal((await admin(h.app, 'PATCH', path, { status: 'active' })).statusCode, 200);
      await drain(worker);
      assert.equal(receiver.receipts.length, 1, 'what happened while paused, once resumed');

      const rotated = (await admin(h.app, 'POST', `${path}/rotate-secret`)).json();
      await writeChanges(h.store, [{ eventId: id, type: 'hold.released' }]);
      await drain(worker);
      assert.deepEqual(receiver.badSignatures, [receiver.receipts[1]!.id], 'signed with the new key, not the old');
      receiver.badSignatures.length = 0;
      receiver.secret = rotated.secret;
      const last = receiver.receipts[1]!;
      assert.ok(verify(rotated.secret, last.id, Number(last.timestamp), last.body, last.signature));

      assert.equal((await admin(h.app, 'DELETE', path)).statusCode, 204);
      await writeChanges(h.store, [{ eventId: id, type: 'hold.granted' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 2, 'nothing after delete');
    });

    test('retries stop after WEBHOOK_RETRY_SECONDS; failures in a row mark the endpoint failed; active revives it', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const path = `/webhooks/${webhook.webhook_id}`;
      const retrySeconds = h.config.webhookRetrySeconds;
      const config = { ...h.config, webhookMaxConsecutiveFailures: 2 };
      const metrics = createMetrics();
      const worker = newWorker({ config, metrics });
      receiver.answer = 500;
      await writeChanges(h.store, [
        { eventId: eventId(), type: 'hold.granted' },
        { eventId: eventId(), type: 'hold.granted' },
      ]);
      await worker.runOnce();
      h.clock.advanceSeconds(retrySeconds - 1);
      await worker.runOnce();
      assert.equal((await admin(h.app, 'GET', path)).json().status, 'active', 'still retrying');
      h.clock.advanceSeconds(1);
      await worker.runOnce();
      const failed = (await deliveriesOf(h.app, webhook.webhook_id, '?status=failed')).deliveries;
      assert.equal(failed.length, 2);
      assert.equal(failed[0]!.attempts, 3);
      assert.equal(failed[0]!.next_attempt_at, null);
      const metricsText = await metrics.registry.metrics();
      assert.match(metricsText, /webhook_deliveries_total\{outcome="failed"\} 2/);
      assert.match(metricsText, /webhook_deliveries_total\{outcome="retrying"\} 4/);
      const endpoint = (await admin(h.app, 'GET', path)).json();
      assert.deepEqual([endpoint.status, endpoint.consecutive_failures], ['failed', 2]);

      // A failed endpoint gets nothing more, not even new deliveries.
      receiver.answer = 200;
      receiver.receipts.length = 0;
      await writeChanges(h.store, [{ eventId: eventId(), type: 'hold.granted' }]);
      await drain(worker);
      assert.equal(receiver.receipts.length, 0);
      assert.equal((await deliveriesOf(h.app, webhook.webhook_id, '?status=pending')).deliveries.length, 0);

      const revived = (await admin(h.app, 'PATCH', path, { status: 'active' })).json();
      assert.deepEqual([revived.status, revived.consecutive_failures], ['active', 0]);
      await drain(worker);
      assert.equal(receiver.accepted().length, 1, 'the change made while failed, once revived');

      // A failed delivery sent again by hand.
      const retried = await admin(h.app, 'POST', `${path}/deliveries/${failed[0]!.delivery_id}/retry`);
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.json().status, 'pending');
      assert.equal(retried.json().next_attempt_at, h.clock.now().toISOString());
      await drain(worker);
      assert.equal(receiver.accepted().length, 2);
      const after = (await deliveriesOf(h.app, webhook.webhook_id)).deliveries.find(
        (d) => d.delivery_id === failed[0]!.delivery_id,
      )!;
      assert.deepEqual([after.status, after.attempts], ['succeeded', 4]);
      isProblem(await admin(h.app, 'POST', `${path}/deliveries/99999999/retry`), 404, 'not_found');
    });

    test('an endpoint with many deliveries due does not crowd the others out of a pass', async () => {
      await reset();
      const dead = new Receiver();
      await dead.listen();
      const deadUrl = dead.url;
      await dead.close();
      await register(h.app, deadUrl);
      const healthy = await register(h.app, receiver.url);
      receiver.secret = healthy.secret;
      await writeChanges(
        h.store,
        Array.from({ length: 150 }, () => ({ eventId: eventId(), type: 'hold.granted' as const })),
      );
      const worker = newWorker();
      // The dead endpoint's 150 come first in the queue, but it may only have its 4 in flight,
      // and so may the healthy one: one pass sends 4 to each.
      const slots = h.config.webhookConcurrencyPerEndpoint;
      assert.equal((await worker.runOnce()).claimed, 2 * slots);
      assert.equal(receiver.accepted().length, slots);
      await drain(worker);
      assert.equal(receiver.accepted().length, 150);
    });

    test('GET /webhooks/:id/deliveries pages newest first with a cursor and filters by status', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const id = eventId();
      await writeChanges(
        h.store,
        Array.from({ length: 5 }, () => ({ eventId: id, type: 'hold.granted' as const })),
      );
      // One pass: the fan-out, and one refused attempt at the oldest (the only one eligible).
      receiver.answer = 503;
      await newWorker().runOnce();
      const seen: number[] = [];
      let cursor: string | null = null;
      do {
        const page = await deliveriesOf(
          h.app,
          webhook.webhook_id,
          `?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`,
        );
        assert.ok(page.deliveries.length <= 2);
        seen.push(...page.deliveries.map((d) => d.delivery_id));
        cursor = page.next_cursor;
      } while (cursor !== null);
      assert.equal(seen.length, 5);
      assert.deepEqual(
        seen,
        [...seen].sort((a, b) => b - a),
      );
      assert.equal((await deliveriesOf(h.app, webhook.webhook_id, '?status=succeeded')).deliveries.length, 0);
      assert.equal((await deliveriesOf(h.app, webhook.webhook_id, '?status=pending')).deliveries.length, 5);
      isProblem(
        await admin(h.app, 'GET', `/webhooks/${webhook.webhook_id}/deliveries?cursor=abc`),
        400,
        'validation_failed',
      );
      isProblem(
        await admin(h.app, 'GET', `/webhooks/${webhook.webhook_id}/deliveries?limit=0`),
        400,
        'validation_failed',
      );
      isProblem(
        await admin(h.app, 'GET', `/webhooks/${webhook.webhook_id}/deliveries?status=x`),
        400,
        'validation_failed',
      );
    });

    test('the delivery worker refuses private addresses at connect time unless allowed', async () => {
      await reset();
      // Registered while allowed; the worker below is not: the name resolves to loopback now.
      const byName = await register(h.app, receiver.url.replace('127.0.0.1', 'localhost'));
      const byAddress = await register(h.app, receiver.url);
      receiver.secret = byName.secret;
      await writeChanges(h.store, [{ eventId: eventId(), type: 'hold.granted' }]);
      await newWorker({ config: { ...h.config, webhookAllowPrivateUrls: false } }).runOnce();
      assert.equal(receiver.receipts.length, 0);
      const [named] = (await deliveriesOf(h.app, byName.webhook_id)).deliveries;
      assert.match(String(named!.last_error), /localhost resolves to .*private, loopback or link-local/);
      const [literal] = (await deliveriesOf(h.app, byAddress.webhook_id)).deliveries;
      assert.match(String(literal!.last_error), /127\.0\.0\.1 is a private, loopback or link-local address/);
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
      await writeChanges(h.store, [{ eventId: eventId(), type: 'hold.granted' }]);
      assert.equal((await worker.runOnce()).failed, true);
      await worker.runOnce();
      assert.deepEqual(warnings, ['webhooks: could not fan out changes to webhooks'], 'one line, not one per pass');
      down = false;
      await drain(worker);
      assert.equal(receiver.accepted().length, 1);
    });

    test('in the background the worker delivers without being driven, and stops cleanly', async () => {
      await reset();
      const webhook = await register(h.app, receiver.url);
      receiver.secret = webhook.secret;
      const worker = newWorker({ clock: systemClock, pollIntervalMs: 20 });
      worker.start();
      await writeChanges(h.store, [{ eventId: eventId(), type: 'hold.granted' }]);
      await waitFor('the delivery', () => receiver.accepted().length === 1, 5000);
      await worker.stop();
      assert.deepEqual(receiver.badSignatures, []);
    });

    if (backend.name !== 'pglite') {
      test('two workers on one database never send a delivery twice at once', async () => {
        await reset();
        const webhook = await register(h.app, receiver.url);
        receiver.secret = webhook.secret;
        receiver.delayMs = 15;
        const second = await backend.reopen(h.url);
        try {
          const options = { clock: systemClock, pollIntervalMs: 10 };
          const a = newWorker(options);
          const b = newWorker({ ...options, store: second });
          const events = Array.from({ length: 12 }, eventId);
          a.start();
          b.start();
          for (let round = 0; round < 6; round++) {
            await writeChanges(
              h.store,
              events.map((id) => ({ eventId: id, type: 'hold.granted' as const })),
            );
          }
          const expected = await expectedBodies(h.store, webhook.last_position);
          await waitFor('every delivery', () => receiver.accepted().length >= expected.length, 30_000);
          await Promise.all([a.stop(), b.stop()]);
          assert.deepEqual(receiver.overlaps, [], 'no webhook-id in flight twice at once');
          assert.equal(receiver.receipts.length, expected.length, 'each sent exactly once');
          assert.deepEqual(
            receiver
              .accepted()
              .map((r) => r.body)
              .sort(),
            [...expected].sort(),
          );
          assertOrderedPerEvent(receiver.accepted());
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
      ['GET', '/webhooks/1/deliveries'],
      ['POST', '/webhooks/1/deliveries/1/retry'],
    ] as const) {
      isProblem(await h.app.inject({ method, url, payload: {} }), 401, 'unauthorized');
    }
  });
});

contractTest();
