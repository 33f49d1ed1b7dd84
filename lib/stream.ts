// ConnStream: a Node Duplex over a Conn, shaped like net.Socket where Node's http, https,
// tls and http2 servers (and libraries such as ws) touch their socket.
import type { AddressInfo } from 'node:net';
import { Duplex, type DuplexOptions } from 'node:stream';
import type { Addr } from './addr';
import { describeValue } from './errors';

/** What a {@link ConnStream} needs of its connection (a {@link Conn}). @internal */
export interface StreamSource {
  read(buf: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<void>;
  closeWrite(): void;
  close(): void;
  localAddr(): Addr;
  remoteAddr(): Addr;
  setNoDelay(on?: boolean): void;
  setKeepAlive(on: boolean, options?: { idle?: number }): void;
  readonly writableLength: number;
}

/** Options for {@link Conn.stream}. */
export interface ConnStreamOptions {
  /**
   * Keep the sending side open after the peer ends its side (Node's `allowHalfOpen`);
   * default true, as for the sockets of Node's servers: `end()` sends end of stream.
   */
  allowHalfOpen?: boolean;
  /** Bytes buffered on each side before backpressure; Node's default (16 KiB) if unset. */
  highWaterMark?: number;
}

// Reads go into a buffer of this size. A read of at least kKeepWhole bytes is passed on as
// it is (no copy; the unused tail of the buffer goes with it); a smaller one is copied out
// into a buffer of its own size and the read buffer is used again.
const kReadSize = 64 * 1024;
const ignore = (): void => {};
const kKeepWhole = 16 * 1024;

/** An IP endpoint's address as Node gives it; undefined for a Unix address. */
function nodeAddress(addr: Addr): AddressInfo | undefined {
  if (addr.ip === '') return undefined;
  return { address: addr.ip, family: addr.ip.includes(':') ? 'IPv6' : 'IPv4', port: addr.port };
}

/** Checks {@link ConnStreamOptions}; the Duplex options they make. @internal */
export function checkStreamOptions(options: ConnStreamOptions): DuplexOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options: expected an object, got ${describeValue(options)}`);
  }
  const { allowHalfOpen = true, highWaterMark } = options;
  if (typeof allowHalfOpen !== 'boolean') {
    throw new TypeError(`options.allowHalfOpen: expected a boolean, got ${describeValue(allowHalfOpen)}`);
  }
  if (highWaterMark !== undefined && !(Number.isInteger(highWaterMark) && highWaterMark > 0)) {
    throw new TypeError(`options.highWaterMark: expected a positive integer, got ${describeValue(highWaterMark)}`);
  }
  const duplex: DuplexOptions = { allowHalfOpen, emitClose: true, autoDestroy: true };
  if (highWaterMark !== undefined) duplex.highWaterMark = highWaterMark;
  return duplex;
}

/**
 * A Node `Duplex` over a {@link Conn}, from {@link Conn.stream}: pass it wherever Node takes
 * a socket (`http.Server`'s `'connection'`, `new tls.TLSSocket(stream)`, `stream.pipeline`),
 * or give a whole listener to a Node server with {@link Listener.serveNode}.
 *
 * - Reads start when the stream is read from and pause while its buffer is full (a slow
 *   consumer stops reading from the socket). A read of 16 KiB or more is handed on without a
 *   copy; smaller ones are copied into a buffer of their own size, so a chunk never pins
 *   more memory than it holds.
 * - Writes go to the connection by reference (do not change a buffer you wrote);
 *   `write()` returns false while `writableHighWaterMark` bytes or more are queued, and
 *   `'drain'` follows. `end()` shuts down the sending side (`closeWrite()`) after the
 *   queued bytes; `destroy()` closes the connection; a read or write error destroys the
 *   stream with the connection's `OpError` (e.g. code `ECONNRESET`).
 * - Like `net.Socket`: `setTimeout()` (`'timeout'` after that long with no read or write:
 *   what http's `keepAliveTimeout` and `server.timeout` use), `setNoDelay()`,
 *   `setKeepAlive()`, `address()`, `remoteAddress`/`remotePort`/`remoteFamily`,
 *   `localAddress`/`localPort`, `destroySoon()`, `ref()`/`unref()` (no-ops: the
 *   connection keeps the process alive while open).
 *
 * The connection belongs to the stream from then on: do not read from it yourself.
 */
export class ConnStream extends Duplex {
  private readonly conn: StreamSource;
  private buf: Buffer | null = null;
  private reading = false;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | null = null;
  // The two ends as Node describes them, read once: undefined for a Unix socket.
  private local: AddressInfo | undefined;
  private remote: AddressInfo | undefined;

  /** @internal Use {@link Conn.stream}. */
  constructor(conn: StreamSource, options: ConnStreamOptions = {}) {
    super(checkStreamOptions(options));
    this.conn = conn;
    try {
      this.local = nodeAddress(conn.localAddr());
      this.remote = nodeAddress(conn.remoteAddr());
    } catch {
      // An unnamed Unix peer has no address: the getters say undefined.
    }
  }

  /** @internal */
  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    void this.readLoop();
  }

  /** Reads while the consumer wants more; stops when push() says the buffer is full. */
  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const buf = this.buf ?? Buffer.allocUnsafe(kReadSize);
        this.buf = buf;
        const n = await this.conn.read(buf);
        if (this.destroyed) return;
        if (n === null) {
          this.reading = false;
          this.push(null);
          return;
        }
        this.touch();
        let chunk: Buffer;
        if (n >= kKeepWhole) {
          chunk = buf.subarray(0, n);
          this.buf = null;  // the chunk owns it now
        } else {
          chunk = Buffer.allocUnsafe(n);
          buf.copy(chunk, 0, 0, n);
        }
        if (!this.push(chunk)) {
          this.reading = false;
          return;
        }
      }
    } catch (err) {
      this.reading = false;
      if (!this.destroyed) this.destroy(err as Error);
    }
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.touch();
    this.written(this.conn.write(chunk), callback);
  }

  /** The chunks buffered while a write was in flight go to the connection in one go. @internal */
  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.touch();
    let last: Promise<void> = Promise.resolve();
    // The connection orders its writes: only the last one needs waiting for (an earlier
    // failure fails the later ones too, and the last reports it).
    for (const { chunk } of chunks) {
      last.catch(ignore);
      last = this.conn.write(chunk);
    }
    this.written(last, callback);
  }

  /** A write is in the kernel (activity for the idle timer), or failed. */
  private written(write: Promise<void>, callback: (err?: Error | null) => void): void {
    write.then(() => {
      this.touch();
      callback();
    }, callback);
  }

  /** @internal */
  override _final(callback: (err?: Error | null) => void): void {
    try {
      this.conn.closeWrite();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** @internal */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.clearTimer();
    this.conn.close();
    callback(err);
  }

  /**
   * Emits `'timeout'` once the stream has neither read nor written for `ms` (0 turns it
   * off), as `net.Socket#setTimeout` does; the stream stays open: act on the event.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new TypeError(`ms: expected a number of milliseconds >= 0, got ${describeValue(ms)}`);
    }
    if (callback !== undefined) {
      if (typeof callback !== 'function') throw new TypeError(`callback: expected a function, got ${describeValue(callback)}`);
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.timeoutMs = ms;
    this.clearTimer();
    if (ms > 0 && !this.destroyed) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.emit('timeout');
      }, ms);
      this.timer.unref();
    }
    return this;
  }

  /** Activity: the idle timer starts again. */
  private touch(): void {
    if (this.timer !== null) this.timer.refresh();
    else if (this.timeoutMs > 0 && !this.destroyed) this.setTimeout(this.timeoutMs);
  }

  /** @internal What net.Socket calls on activity (tls and http call it on theirs). */
  _unrefTimer(): void {
    this.touch();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** TCP_NODELAY (on by default, as in Go and for Node's http servers). */
  setNoDelay(noDelay = true): this {
    if (!this.destroyed) this.conn.setNoDelay(noDelay);
    return this;
  }

  /** SO_KEEPALIVE, probes starting after `initialDelay` ms of idleness (0: the system's). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    if (!this.destroyed) this.conn.setKeepAlive(enable, initialDelay > 0 ? { idle: initialDelay } : {});
    return this;
  }

  /** Ends the sending side, then destroys the stream once the peer's end has come too. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** No-op, for code written for net.Socket: an open connection keeps the process alive. */
  ref(): this {
    return this;
  }

  /** No-op, for code written for net.Socket. */
  unref(): this {
    return this;
  }

  /** The local address as `net.Socket#address()` gives it: `{ address, family, port }`. */
  address(): AddressInfo | Record<string, never> {
    return this.local ?? {};
  }

  /** The peer's IP address, as `net.Socket#remoteAddress` (undefined for a Unix socket). */
  get remoteAddress(): string | undefined {
    return this.remote?.address;
  }

  /** The peer's port. */
  get remotePort(): number | undefined {
    return this.remote?.port;
  }

  /** 'IPv4' or 'IPv6'. */
  get remoteFamily(): string | undefined {
    return this.remote?.family;
  }

  /** The local IP address. */
  get localAddress(): string | undefined {
    return this.local?.address;
  }

  /** The local port. */
  get localPort(): number | undefined {
    return this.local?.port;
  }

  /** Bytes queued on the connection and not yet in the kernel, plus what the stream holds. */
  get bufferSize(): number {
    return this.writableLength + this.conn.writableLength;
  }
}
