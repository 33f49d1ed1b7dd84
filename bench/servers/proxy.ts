// TCP proxies for the benchmark, one process each: `node proxy.js <form> <json loop options> <upstream port>`.
// Each accepted connection is joined to a new connection to 127.0.0.1:<upstream port>, bytes
// copied both ways, each direction's end passed on (half close). Forms: pipe (muxnet pipe()
// both ways), go (muxnet read/write loops, Go's io.Copy by hand), node (Node's net with
// socket.pipe both ways). Prints {"port","pid"} once listening; exits when stdin closes.
import * as net from 'node:net';
import { dial, listen, pipe, type Conn } from '../../lib/index';
import { obeyStdin, ready, serverArgs } from './common';

const { form, options } = serverArgs();
const upstreamPort = Number(process.argv[4]);
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0 || upstreamPort > 65535) {
  throw new RangeError(`upstream port: expected an integer in 1..65535, got ${process.argv[4]}`);
}
const upstream = `127.0.0.1:${upstreamPort}`;

/** Copies `src` to `dst` through one 64 KiB buffer (the echo servers' size), then closes `dst`'s sending side. */
async function copy(src: Conn, dst: Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await src.read(buf);
    if (n === null) break;
    await dst.write(buf.subarray(0, n));
  }
  dst.closeWrite();
}

/** muxnet: every accepted connection joined to a new upstream one by `join`, both closed at the end. */
async function serveMuxnet(join: (a: Conn, b: Conn) => Promise<unknown>): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) {
    void (async () => {
      let u: Conn | null = null;
      try {
        u = await dial('tcp', upstream, options);
        await join(c, u);
      } catch {
        // a reset at the end of a run
      }
      c.close();
      u?.close();
    })();
  }
}

function serveNode(): void {
  // allowHalfOpen: one side's end is passed on by pipe() (end()), not answered at once.
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    const up = net.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true, allowHalfOpen: true });
    socket.pipe(up);
    up.pipe(socket);
    // A reset at the end of a run: take both down.
    const destroy = (): void => {
      socket.destroy();
      up.destroy();
    };
    socket.on('error', destroy);
    up.on('error', destroy);
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as net.AddressInfo).port);
  });
}

obeyStdin();
if (form === 'node') serveNode();
else if (form === 'go') void serveMuxnet((a, b) => Promise.all([copy(a, b), copy(b, a)]));
else if (form === 'pipe') void serveMuxnet((a, b) => Promise.all([pipe(a, b), pipe(b, a)]));
else throw new RangeError(`form: expected pipe, go or node, got ${form}`);
