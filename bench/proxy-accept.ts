// What the PROXY protocol costs a muxnet server: server CPU per short connection (accept, header, one line, close), without a header, with v1 and with v2.
//   npx tsc -p bench/tsconfig.json
// The server runs pinned to CPU 0 in a child process; run the clients (Node's net) on CPU 1:
//   flock /tmp/muxnet-bench.lock taskset -c 1 node .bench-build/bench/proxy-accept.js 5000
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { pin } from './measure';

type Form = 'none' | 'v1' | 'v2';

function header(form: Form, s: net.Socket): Buffer {
  if (form === 'none') return Buffer.alloc(0);
  if (form === 'v1') return Buffer.from(`PROXY TCP4 192.0.2.10 ${s.localAddress} ${s.localPort} ${s.remotePort}\r\n`);
  const h = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(h);
  h[12] = 0x21;
  h[13] = 0x11;
  h.writeUInt16BE(12, 14);
  h.set([192, 0, 2, 10, 127, 0, 0, 1], 16);
  h.writeUInt16BE(s.localPort!, 24);
  h.writeUInt16BE(s.remotePort!, 26);
  return h;
}

/** Server side: answers one line per connection, reports its CPU time when told. */
async function serve(form: Form): Promise<void> {
  const { listen } = await import('../lib/index.js');
  const ln = listen('tcp', '127.0.0.1:0', form === 'none' ? {} : { proxyProtocol: true });
  process.send!({ port: ln.addr().port });
  process.on('message', (m: string) => {
    if (m === 'start') process.send!({ cpu: process.cpuUsage() });
    if (m === 'stop') {
      process.send!({ cpu: process.cpuUsage() });
      ln.close();
      process.disconnect();  // the IPC channel would keep this process alive
    }
  });
  await ln.serve(async (conn) => {
    const buf = new Uint8Array(256);
    while ((await conn.read(buf)) !== null) {
      if (buf.includes(0x0a)) {
        await conn.write('pong\n');
        return;
      }
    }
  });
}

function once(port: number, form: Form): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.concat([header(form, s), Buffer.from('ping\n')])));
    s.on('data', () => {});
    s.once('error', reject);
    s.once('close', () => resolve());
  });
}

async function measure(form: Form, connections: number): Promise<number> {
  const [cmd, args] = pin(0, process.execPath, [__filename, 'serve', form]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (): Promise<any> => new Promise((resolve) => child.once('message', resolve));
  const { port } = await next();
  for (let i = 0; i < 200; i++) await once(port, form);  // warm-up
  child.send('start');
  const { cpu: start } = await next();
  const concurrency = 16;
  let started = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (started < connections) {
      started++;
      await once(port, form);
    }
  }));
  child.send('stop');
  const { cpu: end } = await next();
  await new Promise((resolve) => child.once('exit', resolve));
  return (end.user + end.system - start.user - start.system) / connections;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve(process.argv[3] as Form);
  const connections = Number(process.argv[2] ?? 5000);
  for (let round = 0; round < 3; round++) {
    for (const form of ['none', 'v1', 'v2'] as Form[]) {
      console.log(`${form.padEnd(4)} ${(await measure(form, connections)).toFixed(1)} us server CPU per connection`);
    }
  }
}

void main();
