// A TCP proxy, Go style: accept, dial the upstream, then io.Copy both ways at once
// (`go io.Copy(up, client); io.Copy(client, up)`) — here `Promise.all([pipe(c, up), pipe(up, c)])`.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/tcp-proxy.js <listen host:port> <upstream host:port>
// Try it: node .test-build/examples/tcp-proxy.js 127.0.0.1:7100 example.com:80 & curl -H 'Host: example.com' http://127.0.0.1:7100/
// Each end of stream passes through (pipe() half-closes the other side), so a client that
// shuts down its sending side still gets the rest of the answer. Memory per connection is
// bounded: pipe() reads one pooled chunk ahead of the write, so a slow side stops the other.
import { dial, listen, pipe, type Conn } from 'muxnet';

const [listenAddr, upstreamAddr, dialMs = '5000'] = process.argv.slice(2);
if (listenAddr === undefined || upstreamAddr === undefined || !/^\d+$/.test(dialMs)) {
  console.error('usage: tcp-proxy.js <listen host:port> <upstream host:port> [dial timeout ms]');
  process.exit(2);
}

/** Proxies one client to a new upstream connection until both directions have ended. */
async function proxy(client: Conn): Promise<void> {
  const peer = String(client.remoteAddr());
  let up: Conn;
  try {
    up = await dial('tcp', upstreamAddr!, { timeout: Number(dialMs) });
  } catch (err) {
    // The client is closed at once (serve() closes it when the handler returns): no waiting.
    console.log(`${peer}: upstream ${upstreamAddr}: ${(err as Error).message}`);
    return;
  }
  try {
    const [sent, received] = await Promise.all([pipe2(client, up), pipe2(up, client)]);
    console.log(`${peer}: ${sent} bytes to upstream, ${received} bytes back`);
  } catch (err) {
    console.log(`${peer}: ${(err as Error).message}`);
  } finally {
    up.close();  // the client's close is serve()'s, once this returns
  }
}

/** pipe(), closing both ends on the first error so the opposite copy stops too. */
async function pipe2(src: Conn, dst: Conn): Promise<number> {
  try {
    return await pipe(src, dst);
  } catch (err) {
    src.close();
    dst.close();
    throw err;
  }
}

async function main(): Promise<void> {
  const ln = listen('tcp', listenAddr!);
  console.log(`listening on ${ln.addr()} (upstream ${upstreamAddr})`);
  const stop = (signal: string): void => {
    console.log(`${signal}: shutting down`);
    // Proxied connections get 5 s to finish; what is left is closed.
    void ln.shutdown({ timeout: 5000 }).then(({ finished, forced }) => {
      console.log(`shutdown: ${finished} finished, ${forced} forced`);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await ln.serve(proxy);
}

void main();
