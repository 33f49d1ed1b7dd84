// Discard servers for the stream benchmark, one process each: `node discard.js <form> <json loop options>`.
// Forms: native (C++ discard, the floor), go (read loop into one buffer), pooled (for await
// chunks), node (Node's net).
// Prints {"port","pid"} once listening; exits when stdin closes.
import * as net from 'node:net';
import { listen } from '../../lib/index';
import { obeyStdin, ready, serveNative, serverArgs } from './common';

const { form, options } = serverArgs();


async function serveGo(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) {
    void (async () => {
      // 64 KiB, as the echo server: several 16 KiB chunks per read when the socket holds them.
      const buf = new Uint8Array(64 * 1024);
      try {
        while ((await c.read(buf)) !== null) { /* discard */ }
      } catch {
        // a reset at the end of a run
      }
      c.close();
    })();
  }
}

async function servePooled(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) {
    void (async () => {
      try {
        for await (const data of c) void data;  // released at the next iteration
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
  for await (const c of ln) c.onData(() => { /* discard */ }, () => c.close());
}

function serveNode(): void {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('data', () => { /* discard */ });
    socket.on('error', () => socket.destroy());
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as net.AddressInfo).port);
  });
}

obeyStdin();
if (form === 'native') serveNative(options, true);
else if (form === 'node') serveNode();
else if (form === 'pooled') void servePooled();
else if (form === 'callback') void serveCallback();
else void serveGo();
