// UDP echo servers for the benchmark, one process each: `node udp.js <form> <json loop options>`.
// Forms: single (readFrom + writeTo, one datagram per call), batch (readBatch + writeBatch:
// recvmmsg/sendmmsg, up to 64 datagrams per call), node (Node's dgram). Prints {"port","pid"}
// once bound; exits when stdin closes.
import * as dgram from 'node:dgram';
import { listenPacket } from '../../lib/index';
import type { OutgoingDatagram } from '../../lib/index';
import { obeyStdin, ready, serverArgs } from './common';

const { form, options } = serverArgs();
// Datagrams per recvmmsg: enough for every flow of the benchmark's 50 to be answered at once.
const kBatch = 64;

async function serveSingle(): Promise<void> {
  const conn = listenPacket('udp4', '127.0.0.1:0', options);
  ready(conn.localAddr().port);
  const buf = new Uint8Array(2048);
  for (;;) {
    const d = await conn.readFrom(buf);
    await conn.writeTo(buf.subarray(0, d.n), d.addr);
  }
}

async function serveBatch(): Promise<void> {
  const conn = listenPacket('udp4', '127.0.0.1:0', options);
  ready(conn.localAddr().port);
  const bufs = Array.from({ length: kBatch }, () => new Uint8Array(2048));
  for (;;) {
    const got = await conn.readBatch(bufs);
    const replies: OutgoingDatagram[] = got.map((d, i) => ({ data: bufs[i].subarray(0, d.n), addr: d.addr }));
    await conn.writeBatch(replies);
  }
}

function serveNode(): void {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  socket.bind(0, '127.0.0.1', () => ready(socket.address().port));
}

obeyStdin();
if (form === 'node') serveNode();
else if (form === 'batch') void serveBatch();
else void serveSingle();
