// A line server behind a load balancer that speaks the PROXY protocol (HAProxy's send-proxy,
// send-proxy-v2): answers each line with the client it sees, which is the balancer's client.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/proxy-protocol-server.js [127.0.0.1:8080] [name]
// Reply to each line: "<name> client=<ip:port> via=<ip:port> proxy=v1|v2 line=<the line>".
// A v2 LOCAL connection (HAProxy's health check) is logged as "health check from <balancer>".
import { listen, proxyHeader, type Conn } from 'muxnet';

const address = process.argv[2] ?? '127.0.0.1:8080';
const name = process.argv[3] ?? 'muxnet';

async function answerLines(conn: Conn): Promise<void> {
  const header = proxyHeader(conn);
  if (header?.command === 'LOCAL') console.log(`health check from ${conn.remoteAddr()}`);
  const client = `client=${conn.remoteAddr()} via=${conn.localAddr()} proxy=v${header?.version}`;
  const buf = new Uint8Array(4096);
  let pending = '';
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    pending += Buffer.from(buf.subarray(0, n)).toString('utf8');
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      await conn.write(`${name} ${client} line=${line}\n`);
    }
  }
}

async function main(): Promise<void> {
  const ln = listen('tcp', address, {
    proxyProtocol: { onError: (err, peer) => console.log(`refused ${peer ?? 'a connection'}: ${err.message}`) },
  });
  console.log(`listening on ${ln.addr()}`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => ln.close());
  // A client that resets mid-line costs only its own connection.
  await ln.serve(answerLines, { onError: (err, conn) => console.log(`${conn.remoteAddr()}: ${String(err)}`) });
}

void main();
