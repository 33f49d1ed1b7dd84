// Passing sockets between processes over Unix connections (SCM_RIGHTS): wrapping what arrives.
import { Addr, addrFromNative } from './addr';
import { Conn, kDefaultWriteQueueLimit } from './conn';
import { Listener } from './listener';
import type { Loop } from './loop';
import { PacketConn } from './packet';

/** A socket that can travel with {@link Conn.sendHandles}. */
export type PassableHandle = Conn | Listener | PacketConn;

/** What {@link Conn.readHandles} resolves with: the bytes read and the sockets that came with them. */
export interface HandlesRead {
  /** Bytes read into the buffer. */
  n: number;
  /** The sockets that came with those bytes, open in this process. */
  handles: PassableHandle[];
}

// Address families as the kernel numbers them (the addon reports SO_DOMAIN).
const AF_UNIX = 1;
const AF_INET6 = 10;

/**
 * Wraps the handles the addon adopted into `loop` (out: count, then id and kind + 256 *
 * family each) as Conns, Listeners and PacketConns. @internal
 */
export function wrapPassed(loop: Loop, out: Int32Array): PassableHandle[] {
  const handles: PassableHandle[] = [];
  for (let i = 0; i < out[0]; i++) {
    const id = out[1 + 2 * i];
    const kind = out[2 + 2 * i] & 0xff;
    const family = out[2 + 2 * i] >> 8;
    const unix = family === AF_UNIX;
    if (kind === 3) {
      const network = unix ? 'unixgram' : family === AF_INET6 ? 'udp6' : 'udp';
      const peer = loop.native.addr(id, true);
      const remote = typeof peer === 'number' ? undefined : addrFromNative(network, peer);
      handles.push(new PacketConn(loop, id, network, remote));
      continue;
    }
    const network = unix ? 'unix' : 'tcp';
    if (kind === 2) {
      const local = loop.native.addr(id, false);
      const addr = typeof local === 'number' ? new Addr(network, '', 0) : addrFromNative(network, local);
      handles.push(new Listener(loop, id, network, addr, kDefaultWriteQueueLimit));
    } else {
      handles.push(new Conn(loop, id, network, kDefaultWriteQueueLimit));
    }
  }
  return handles;
}
