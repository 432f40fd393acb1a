// One HTTP attempt at a batch, Standard Webhooks style: POST the batch's JSON with webhook-id
// (stable across retries), webhook-timestamp and webhook-signature. Each attempt has
// its own deadline; connections resolve their host through the SSRF guard; redirects are not
// followed (undici's request never does).
import type { Agent } from 'undici';
import type { Config } from '../config.ts';
import { guardedLookup, refusalOf } from './safe-url.ts';
import { sign } from './signature.ts';

export type SenderConfig = Pick<
  Config,
  'webhookAttemptTimeoutMs' | 'webhookConcurrencyPerEndpoint' | 'webhookAllowPrivateUrls'
>;

/** One request: where, signed with what, and the body. */
export interface Message {
  url: string;
  secret: string;
  /** The webhook-id header: the same on every attempt at the same batch. */
  messageId: string;
  /** The JSON body; as bytes when many endpoints share it. Signed as it is. */
  payload: string | Buffer;
  /** The payload gzipped, for an endpoint that takes gzip: sent instead, with Content-Encoding: gzip. */
  gzipped?: Buffer | null;
}

export interface AttemptOutcome {
  statusCode: number | null;
  /** Null for a 2xx answer. */
  error: string | null;
}

/** Response bodies are read (and dropped) up to this, so the connection can be reused. */
const RESPONSE_BODY_LIMIT_BYTES = 64 * 1024;

/** undici, loaded on the first attempt rather than at start (~0.1 s of a start). */
let undici: Promise<typeof import('undici')> | undefined;

export class WebhookSender {
  private agent: Agent | undefined;
  private closed = false;
  private readonly aborts = new Set<AbortController>();

  constructor(private readonly config: SenderConfig) {}

  /** One attempt; never throws. */
  async send(message: Message): Promise<AttemptOutcome> {
    const { webhookAttemptTimeoutMs, webhookAllowPrivateUrls } = this.config;
    let url: URL;
    try {
      url = new URL(message.url);
    } catch {
      return { statusCode: null, error: 'the URL is not a valid absolute URL' };
    }
    // An address literal never goes through the lookup: check it here.
    const refusal = refusalOf(url, webhookAllowPrivateUrls);
    if (refusal !== null) return { statusCode: null, error: refusal };
    const id = message.messageId;
    // Wall-clock time, not the worker's clock: receivers compare it with theirs to refuse replays.
    const timestamp = Math.floor(Date.now() / 1000);
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`no answer within ${webhookAttemptTimeoutMs} ms`)),
      webhookAttemptTimeoutMs,
    );
    this.aborts.add(controller);
    try {
      const { Agent, request } = await (undici ??= import('undici'));
      controller.signal.throwIfAborted();
      if (this.closed) throw new Error('the webhook sender is closed');
      this.agent ??= new Agent({
        // Every connection resolves its host here, so a name rebound to a private address after
        // it was registered is still refused.
        connect: { lookup: guardedLookup(webhookAllowPrivateUrls), timeout: webhookAttemptTimeoutMs },
        connections: this.config.webhookConcurrencyPerEndpoint,
        headersTimeout: webhookAttemptTimeoutMs,
        bodyTimeout: webhookAttemptTimeoutMs,
      });
      const response = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        signal: controller.signal,
        headers: {
          'content-type': 'application/json',
          ...(message.gzipped == null ? {} : { 'content-encoding': 'gzip' }),
          'user-agent': 'box-office-webhooks',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          // Over the JSON, whatever the encoding: what a receiver's framework hands it once inflated.
          'webhook-signature': sign(message.secret, id, timestamp, message.payload),
        },
        body: message.gzipped ?? message.payload,
      });
      await response.body.dump({ limit: RESPONSE_BODY_LIMIT_BYTES }).catch(() => {});
      const ok = response.statusCode >= 200 && response.statusCode < 300;
      return { statusCode: response.statusCode, error: ok ? null : `the endpoint answered ${response.statusCode}` };
    } catch (error) {
      return { statusCode: null, error: describe(controller.signal.aborted ? controller.signal.reason : error) };
    } finally {
      clearTimeout(timer);
      this.aborts.delete(controller);
    }
  }

  /** Cuts every attempt in flight short (each answers with this reason), and closes connections. */
  async close(reason: string): Promise<void> {
    this.closed = true;
    for (const controller of this.aborts) controller.abort(new Error(reason));
    await this.agent?.close();
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined || error.message.includes(code) ? error.message : `${code}: ${error.message}`;
}
