// How long 2,000 clients connecting at once wait for their first byte from a bare node:http
// server listening with a given backlog (the accept queue): past it the kernel drops the
// connections, and each dropped client waits for its 1-second retry. Compare 511 (Node's
// default) with the service's LISTEN_BACKLOG, and read `nstat -az TcpExtListenOverflows` around it:
//   node --import tsx bench/backlog.ts 511
import { createServer } from 'node:http';
import { connect } from 'node:net';

const BACKLOG = Number(process.argv[2] ?? 511);
const CLIENTS = Number(process.argv[3] ?? 2000);

const server = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'text/event-stream' });
  response.write('data: hi\n\n');
});
await new Promise<void>((done) => server.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG }, done));
const { port } = server.address() as { port: number };
const started = performance.now();
let last = 0;
let finished = 0;
await new Promise<void>((done) => {
  const settle = () => {
    if (++finished === CLIENTS) done();
  };
  for (let i = 0; i < CLIENTS; i++) {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
    socket.once('data', () => {
      last = Math.max(last, performance.now() - started);
      settle();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      console.log(`client error ${error.code ?? error.message}`);
      settle();
    });
  }
});
console.log(`backlog ${BACKLOG}: last first byte after ${last.toFixed(0)} ms`);
process.exit(0);
