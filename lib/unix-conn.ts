// UnixConn: a Unix stream connection that can pass sockets to another process (SCM_RIGHTS), and wrapping what arrives.
import { Addr, addrFromNative } from './addr';
import { Conn, kDefaultWriteQueueLimit } from './conn';
import { EAGAIN, EBUSY, ErrClosed, SystemError, describeValue } from './errors';
import { Listener } from './listener';
import type { Loop } from './loop';
import { HandleKind } from './native';
import { PacketConn } from './packet';

/** A socket that can travel with {@link UnixConn.sendHandles}. */
export type PassableHandle = Conn | Listener | PacketConn;

/** What {@link UnixConn.readHandles} resolves with: the bytes read and the sockets that came with them. */
export interface HandlesRead {
  /** Bytes read into the buffer. */
  n: number;
  /** The sockets that came with those bytes, open in this process. */
  handles: PassableHandle[];
}

/** sendHandles() waiting for room in the socket buffer. */
interface HandleSend {
  data: Uint8Array;
  ids: Int32Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Where recvHandles reports the sockets it adopted: a count, then id and kind per socket. */
const passedScratch = new Int32Array(1 + 2 * 16);

// Address families as the kernel numbers them (the addon reports SO_DOMAIN).
const AF_UNIX = 1;
const AF_INET6 = 10;

/**
 * A Unix stream connection (`dial('unix', …)`, or accepted by a Unix listener): a
 * {@link Conn} that can also pass open sockets to the process at the other end, as Go's
 * `*net.UnixConn` does with `WriteMsgUnix`/`ReadMsgUnix`.
 */
export class UnixConn extends Conn {
  private handleSend: HandleSend | null = null;

  /**
   * Sends `data` (at least one byte) with the given sockets attached (SCM_RIGHTS), so
   * another process can take them over: the receiver's {@link readHandles} gets working
   * copies; close yours when done. Sockets must be on this connection's loop. Rejects with
   * EBUSY while other writes are queued (let them settle first), or an OpError from sendmsg.
   */
  sendHandles(data: Uint8Array | string, handles: PassableHandle[]): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      return Promise.reject(new TypeError(`data: expected a non-empty Uint8Array or string: descriptors travel with bytes; got ${describeValue(data)}`));
    }
    if (!Array.isArray(handles) || handles.length === 0 || handles.length > 16) {
      return Promise.reject(new TypeError(`handles: expected an array of 1 to 16 Conns, Listeners or PacketConns, got ${describeValue(handles)}`));
    }
    const ids = new Int32Array(handles.length);
    for (let i = 0; i < handles.length; i++) {
      const id = (handles[i] as { _handleOn?: (loop: Loop) => number })?._handleOn?.(this.loop) ?? -1;
      if (id < 0) {
        return Promise.reject(new TypeError(`handles[${i}]: expected an open Conn, Listener or PacketConn on this connection's loop (same backend options)`));
      }
      ids[i] = id;
    }
    if (this.closed) return Promise.reject(this.opError('write', new ErrClosed()));
    this.flushOps();  // writes made before go first, or are seen as still queued
    if (this.sent.length > 0 || this.writes.length > 0 || this.held.length > 0 || this.handleSend !== null) {
      return Promise.reject(this.opError('write', new SystemError(EBUSY, 'sendmsg')));
    }
    return new Promise((resolve, reject) => this.trySendHandles({ data: bytes, ids, resolve, reject }));
  }

  /**
   * Reads into `buf` like {@link Conn.read}, and takes the sockets sent with those bytes by
   * {@link sendHandles}, now open in this process on this loop. Resolves `{ n, handles }`,
   * or null at end of stream.
   */
  readHandles(buf: Uint8Array): Promise<HandlesRead | null> {
    if (!(buf instanceof Uint8Array) || buf.length === 0) {
      return Promise.reject(new TypeError(`buf: expected a non-empty Uint8Array, got ${describeValue(buf)}`));
    }
    return this.startRead(buf, true) as Promise<HandlesRead | null>;
  }

  /** @internal */
  protected override readWithHandles(buf: Uint8Array): HandlesRead | number {
    const n = this.loop.native.recvHandles(this.id, buf, passedScratch);
    if (n <= 0) return n;
    if (n < buf.length && !this.peerHungUp) this.readable = false;
    return { n, handles: wrapPassed(this.loop, passedScratch) };
  }

  /** @internal */
  protected override onWritable(): void {
    const send = this.handleSend;
    this.handleSend = null;
    if (send !== null) this.trySendHandles(send);
  }

  /** @internal */
  protected override busy(): boolean {
    return this.handleSend !== null || super.busy();
  }

  /** @internal */
  protected override abort(): void {
    super.abort();
    if (this.handleSend !== null) {
      this.handleSend.reject(this.opError('write', new ErrClosed()));
      this.handleSend = null;
    }
  }

  private trySendHandles(send: HandleSend): void {
    const r = this.loop.native.sendHandles(this.id, send.data, send.ids);
    if (r === EAGAIN) {
      this.handleSend = send;
      this.keep();
      this.loop.native.wantWrite(this.id);
    } else if (r < 0) {
      send.reject(this.opError('write', new SystemError(r, 'sendmsg')));
    } else if (r < send.data.length) {
      // The descriptors went with the first bytes; the rest is an ordinary write.
      this.write(send.data.subarray(r)).then(send.resolve, send.reject);
    } else {
      send.resolve();
    }
  }
}

/** A new stream connection on `loop` of the right class for `network`. @internal */
export function streamConn(loop: Loop, id: number, network: string, writeQueueLimit: number, connected = true): Conn {
  return network === 'unix'
    ? new UnixConn(loop, id, network, writeQueueLimit, connected)
    : new Conn(loop, id, network, writeQueueLimit, connected);
}

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
    if (kind === HandleKind.Datagram) {
      const network = unix ? 'unixgram' : family === AF_INET6 ? 'udp6' : 'udp';
      const peer = loop.native.addr(id, true);
      const remote = typeof peer === 'number' ? undefined : addrFromNative(network, peer);
      handles.push(new PacketConn(loop, id, network, remote));
      continue;
    }
    const network = unix ? 'unix' : 'tcp';
    if (kind === HandleKind.Listener) {
      const local = loop.native.addr(id, false);
      const addr = typeof local === 'number' ? new Addr(network, '', 0) : addrFromNative(network, local);
      handles.push(new Listener(loop, id, network, addr,
        (conn) => streamConn(loop, conn, network, kDefaultWriteQueueLimit)));
    } else {
      handles.push(streamConn(loop, id, network, kDefaultWriteQueueLimit));
    }
  }
  return handles;
}
