// Echo servers for the benchmark, one process each: `node echo.js <form> <json loop options>`.
// Forms: native (C++ echo, the floor), go (read/write loop), pooled (for await chunks),
// serve (Listener.serve with a read/write handler), callback (Conn.onData: no promise per
// read, no buffer per idle connection), node (Node's net). Prints {"port","pid"} once listening; exits when stdin closes.
import * as net from 'node:net';
import { listen } from '../../lib/index';
import { echoConn, echoReadWrite, obeyStdin, ready, serveNative, serverArgs } from './common';

const { form, options } = serverArgs();

async function serveGo(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) void echoConn(c);
}

async function servePooled(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) {
    void (async () => {
      try {
        for await (const data of c) await c.write(data);
      } catch {
        // a reset at the end of a run
      }
      c.close();
    })();
  }
}

async function serveCallback(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) {
    // write() of an onData view retains its pool chunk until the kernel took it (no copy).
    c.onData((data) => {
      c.write(data).catch(() => {});  // a reset at the end of a run
    }, () => c.close());
  }
}

async function serveHandler(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  await ln.serve(echoReadWrite, { onError: () => {} });  // a reset at the end of a run
}

function serveNode(): void {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as net.AddressInfo).port);
  });
}

obeyStdin();
if (form === 'native') serveNative(options, false);
else if (form === 'node') serveNode();
else if (form === 'pooled') void servePooled();
else if (form === 'serve') void serveHandler();
else if (form === 'callback') void serveCallback();
else void serveGo();
