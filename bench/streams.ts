// Open N Server-Sent Events streams on one event and keep them open, to measure what thousands
// of listeners cost the hot path (run the bench against the same server meanwhile):
//   npx tsx bench/streams.ts --url http://127.0.0.1:8080 --event 1 --count 2000 --seconds 60
// Prints, every 5 s and at the end, how many streams are open and the messages they received.
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    event: { type: 'string' },
    count: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '60' },
  },
});
if (values.url === undefined || values.event === undefined) {
  console.error('usage: tsx bench/streams.ts --url http://HOST:PORT --event ID [--count N] [--seconds S]');
  process.exit(2);
}
const count = Number(values.count);
const agent = new Agent({ connections: count, headersTimeout: 0, bodyTimeout: 0 });
const controller = new AbortController();
let open = 0;
let messages = 0;
let bytes = 0;
let failed = 0;

async function listen(): Promise<void> {
  try {
    const res = await request(`${values.url}/events/${values.event}/stream`, {
      dispatcher: agent,
      signal: controller.signal,
      headers: { accept: 'text/event-stream' },
    });
    if (res.statusCode !== 200) {
      failed++;
      await res.body.dump();
      return;
    }
    open++;
    for await (const chunk of res.body) {
      const text = String(chunk);
      bytes += text.length;
      messages += text.split('event: availability').length - 1;
    }
  } catch {
    if (!controller.signal.aborted) failed++;
  } finally {
    open = Math.max(0, open - 1);
  }
}

const started = Date.now();
const streams = Array.from({ length: count }, () => listen());
const report = () =>
  console.log(
    JSON.stringify({
      seconds: Math.round((Date.now() - started) / 1000),
      open,
      failed,
      messages,
      kilobytes: Math.round(bytes / 1024),
    }),
  );
const ticker = setInterval(report, 5000);
await new Promise((resolve) => setTimeout(resolve, Number(values.seconds) * 1000));
clearInterval(ticker);
report();
controller.abort();
await Promise.allSettled(streams);
await agent.close();
