// A small ping over a raw ICMP socket, like Go's golang.org/x/net/icmp examples.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/ping.js 127.0.0.1 [count]
// Needs CAP_NET_RAW (root, or `setcap cap_net_raw+ep` on node); without it muxnet says so.
import { listenPacket } from 'muxnet';

const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;

/** The Internet checksum (RFC 1071) of an ICMP message. */
function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function echoRequest(id: number, seq: number): Uint8Array {
  const msg = Buffer.alloc(16);
  msg[0] = ECHO_REQUEST;
  msg.writeUInt16BE(id, 4);
  msg.writeUInt16BE(seq, 6);
  msg.writeDoubleBE(performance.now(), 8);  // the send time comes back in the reply
  msg.writeUInt16BE(checksum(msg), 2);
  return msg;
}

async function main(): Promise<void> {
  const target = process.argv[2] ?? '127.0.0.1';
  const count = Number(process.argv[3] ?? 3);
  const conn = listenPacket('ip4:icmp', '0.0.0.0');
  const id = process.pid & 0xffff;
  const buf = new Uint8Array(1500);
  let received = 0;
  try {
    for (let seq = 1; seq <= count; seq++) {
      await conn.writeTo(echoRequest(id, seq), target);
      conn.setReadDeadline(Date.now() + 1000);
      // Other ICMP traffic arrives on the same socket (our own request, on loopback): skip it.
      for (;;) {
        let d;
        try {
          d = await conn.readFrom(buf);
        } catch (err) {
          console.log(`no reply from ${target} (seq ${seq}): ${(err as Error).message}`);
          break;
        }
        const msg = Buffer.from(buf.buffer, buf.byteOffset, d.n);
        if (d.n < 16 || msg[0] !== ECHO_REPLY || msg.readUInt16BE(4) !== id || msg.readUInt16BE(6) !== seq) continue;
        const ms = performance.now() - msg.readDoubleBE(8);
        console.log(`${d.n} bytes from ${d.addr}: icmp_seq=${seq} time=${ms.toFixed(3)} ms`);
        received++;
        break;
      }
    }
  } finally {
    conn.close();
  }
  console.log(`${count} sent, ${received} received`);
  process.exitCode = received === count ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exitCode = 2;
});
