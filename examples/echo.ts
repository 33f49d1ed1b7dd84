// Echo server, Go's first net program: `go func(c net.Conn) { io.Copy(c, c); c.Close() }(conn)`
// for each accepted connection: every byte a client sends comes back, until it ends its side.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/echo.js [127.0.0.1:7007]
// Try it: socat - TCP:127.0.0.1:7007   or   nc -N 127.0.0.1 7007 < some-file
import { listenOrExit, stopOnSignals } from './shared/cli';

const usage = 'echo.js [host:port]';
const ln = listenOrExit(process.argv[2] ?? '127.0.0.1:7007', usage);
let echoed = 0;
// Clients still connected at SIGTERM get one second, then are closed.
stopOnSignals(ln, 1000, () => `, ${echoed} bytes echoed`);

void ln.serve(async (conn) => {
  // One chunk in flight at a time: a client that sends but never reads stalls this write,
  // so its bytes wait in the kernel's buffers, not in this process (memory stays bounded).
  // Each chunk is a view into the loop's pool; write() keeps it alive until it is sent.
  for await (const data of conn) {
    await conn.write(data);
    echoed += data.length;
  }
  // The client's end of stream: returning closes the connection (serve does), so the client
  // reads EOF after its last byte came back.
}, { onError: () => {} });  // a client that resets mid-echo costs only its own connection
