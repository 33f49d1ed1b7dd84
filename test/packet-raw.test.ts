// Raw IP sockets ('ip4:icmp'): echo requests answered on loopback, IPv4 header left out, a clear error without CAP_NET_RAW.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { OpError, listenPacket } from 'muxnet';
import type { PacketConn } from 'muxnet';
import { loopConfigs } from './helpers/configs';
import { assertArgError, thrownBy } from './helpers/assert-errors';
import { Resources, withTimeout } from './helpers/util';

const pingScript = path.join(__dirname, '..', 'examples', 'ping.js');

/** Whether this process may open raw sockets (root or CAP_NET_RAW). */
function canOpenRaw(): boolean {
  try {
    listenPacket('ip4:icmp', '127.0.0.1').close();
    return true;
  } catch {
    return false;
  }
}

function echoRequest(id: number, seq: number): Uint8Array {
  const msg = Buffer.alloc(8);
  msg[0] = 8;  // echo request
  msg.writeUInt16BE(id, 4);
  msg.writeUInt16BE(seq, 6);
  let sum = 0;
  for (let i = 0; i < msg.length; i += 2) sum += msg.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  msg.writeUInt16BE(~sum & 0xffff, 2);
  return msg;
}

/** Reads until the echo reply for (id, seq) arrives (other ICMP traffic is skipped); at most 100 datagrams. */
async function readReply(conn: PacketConn, id: number, seq: number): Promise<{ n: number; from: string }> {
  const buf = new Uint8Array(1500);
  for (let i = 0; i < 100; i++) {
    const d = await conn.readFrom(buf);
    const msg = Buffer.from(buf.buffer, 0, d.n);
    if (d.n >= 8 && msg[0] === 0 && msg.readUInt16BE(4) === id && msg.readUInt16BE(6) === seq) return { n: d.n, from: String(d.addr) };
  }
  throw new Error('no echo reply among 100 datagrams');
}

describe('raw sockets', () => {
  const privileged = canOpenRaw();

  for (const cfg of loopConfigs()) {
    describe(`[${cfg.name}]`, () => {
      const res = new Resources();
      afterEach(() => res.closeAll());

      it('sends an ICMP echo request to 127.0.0.1 and reads the reply without the IPv4 header', async function () {
        if (!privileged) this.skip();
        const conn = res.add(listenPacket('ip4:icmp', '0.0.0.0', cfg.options));
        const id = (process.pid + cfg.name.length) & 0xffff;
        await conn.writeTo(echoRequest(id, 7), '127.0.0.1');
        const reply = await withTimeout(readReply(conn, id, 7), 10_000, 'the echo reply');
        assert.equal(reply.n, 8, 'the ICMP message alone: the 20-byte IPv4 header is not part of it');
        assert.equal(reply.from, '127.0.0.1');
      });
    });
  }

  it('runs the ping example against 127.0.0.1', function () {
    if (!privileged) this.skip();
    const out = execFileSync(process.execPath, [pingScript, '127.0.0.1', '2'], { encoding: 'utf8', timeout: 20_000 });
    assert.match(out, /16 bytes from 127\.0\.0\.1: icmp_seq=1 /);
    assert.match(out, /2 sent, 2 received/);
  });

  it('says which capability is missing when raw sockets are not allowed', function () {
    if (privileged) {
      // Drop CAP_NET_RAW for a child (setpriv, from util-linux) and check what it is told.
      const r = spawnSync('setpriv', ['--inh-caps=-net_raw', '--bounding-set=-net_raw', process.execPath, pingScript, '127.0.0.1', '1'],
        { encoding: 'utf8', timeout: 20_000 });
      if (r.error !== undefined) this.skip();  // no setpriv on this machine
      assert.equal(r.status, 2, `stdout ${r.stdout} stderr ${r.stderr}`);
      assert.match(r.stderr, /listen ip4:icmp 0\.0\.0\.0: socket: operation not permitted \(raw sockets need the CAP_NET_RAW capability/);
      return;
    }
    const err = thrownBy(() => listenPacket('ip4:icmp', '0.0.0.0'));
    assert.ok(err instanceof OpError && err.code === 'EPERM');
    assert.match(err.message, /CAP_NET_RAW/);
  });

  it('names a bad protocol or address', () => {
    assertArgError(thrownBy(() => listenPacket('ip4:nope' as never, '0.0.0.0')), /network/);
    assertArgError(thrownBy(() => listenPacket('ip4:icmp', '::1')), /address/);
    assertArgError(thrownBy(() => listenPacket('ip4:icmp', '127.0.0.1:80')), /address/);
  });
});
