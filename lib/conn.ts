// Conn: a TCP connection with Go's Read/Write/deadline semantics, as promises.
import { Addr, addrFromNative } from './addr';
import {
  EAGAIN, EBADF, EBUSY, ENOBUFS, EPIPE, ErrClosed, ErrDeadlineExceeded, OpError, SystemError,
} from './errors';
import { EventKind, SocketOption } from './native';
import { connInfo, readInfo, type ConnInfo } from './info';
import type { Loop, LoopHandle } from './loop';
import { wrapPassed, type HandlesRead, type PassableHandle } from './passing';

/** Where recvHandles reports the sockets it adopted: a count, then id and kind per socket. */
const passedScratch = new Int32Array(1 + 2 * 16);

/** A pooled read: a view into the loop's slab pool, returned with `release()`. */
export interface Chunk {
  /** The bytes read. Throws once the chunk is released: its memory may hold other data. */
  readonly bytes: Uint8Array;
  /** Returns the memory to the pool. Idempotent. */
  release(): void;
}

/** Options for {@link Conn.setKeepAlive}, in milliseconds and probes. */
export interface KeepAliveOptions {
  /** Idle time before the first probe (TCP_KEEPIDLE), in ms, rounded to whole seconds; the system's when unset. */
  idle?: number;
  /** Time between probes (TCP_KEEPINTVL), in ms, rounded to whole seconds; the system's when unset. */
  interval?: number;
  /** Unanswered probes before the connection is dropped (TCP_KEEPCNT); the system's when unset. */
  count?: number;
}

/** Default bound on bytes queued per connection: the backpressure limit. */
export const kDefaultWriteQueueLimit = 1024 * 1024;

const RESOLVED: Promise<void> = Promise.resolve();
/**
 * The write lists of a connection that has never queued: shared, so an idle connection
 * carries no arrays of its own. Only ever read, spliced or shifted while empty; a
 * connection replaces it with its own array before the first push.
 */
const NO_WRITES: never[] = [];
/** readNow's answer when the socket has nothing now. */
const AGAIN = Symbol('again');

class PooledChunk implements Chunk {
  private view: Uint8Array | null;
  constructor(private readonly loop: Loop | null, private readonly index: number, view: Uint8Array) {
    this.view = view;
  }
  get bytes(): Uint8Array {
    if (this.view === null) {
      const err = new Error('chunk used after release(): copy the bytes to keep them');
      (err as { code?: string }).code = 'ERR_CHUNK_RELEASED';
      throw err;
    }
    return this.view;
  }
  release(): void {
    if (this.view === null) return;
    this.view = null;
    if (this.loop !== null) this.loop.releaseChunk(this.index);
  }
}

interface PendingWrite {
  resolve: () => void;
  reject: (err: Error) => void;
  chunk: number;  // pooled chunk kept alive by this write, or -1
}

interface HeldWrite extends PendingWrite {
  data: Uint8Array;
}

interface PendingRead {
  buf: Uint8Array | null;  // null: a chunk read
  resolve: (value: any) => void;
  reject: (err: Error) => void;
  handles: boolean;  // readHandles(): recvmsg, sockets passed with the bytes
  iter: ChunkIterator | null;  // a chunk read for `for await`: resolves an IteratorResult
}

const DONE: IteratorResult<Uint8Array> = Object.freeze({ done: true, value: undefined });

/**
 * `for await (const bytes of conn)`: each step reads a pooled chunk and releases the one
 * before. Its reads resolve with the IteratorResult itself, so a step costs one promise.
 */
class ChunkIterator implements AsyncIterator<Uint8Array> {
  /** The chunk yielded last, released at the next step. @internal */
  previous: Chunk | null = null;

  constructor(private readonly conn: Conn) {}

  next(): Promise<IteratorResult<Uint8Array>> {
    this.releasePrevious();
    return this.conn._nextChunk(this);
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.releasePrevious();
    return Promise.resolve(DONE);
  }

  /** What a read for this iterator resolves with. @internal */
  result(chunk: Chunk | null): IteratorResult<Uint8Array> {
    if (chunk === null) return DONE;
    this.previous = chunk;
    return { done: false, value: chunk.bytes };
  }

  private releasePrevious(): void {
    if (this.previous !== null) {
      this.previous.release();
      this.previous = null;
    }
  }
}

/** sendHandles() waiting for room in the socket buffer. */
interface HandleSend {
  data: Uint8Array;
  ids: Int32Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A Go bool parameter: anything else is a mistake (a truthy 'false' would turn the option on). */
function checkOn(on: unknown): void {
  if (typeof on !== 'boolean') throw new TypeError(`on: expected a boolean, got ${typeof on}`);
}

/** A socket buffer size argument, or a RangeError naming `bytes`. @internal */
export function checkBytes(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes > 0x7fffffff) {
    throw new RangeError(`bytes: expected a positive integer, got ${String(bytes)}`);
  }
  return bytes;
}

/** A deadline argument as epoch ms (0 clears), or a TypeError naming `name`. @internal */
export function toDeadline(t: Date | number, name: string): number {
  const ms = t instanceof Date ? t.getTime() : t;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`${name}: expected a Date or epoch milliseconds (0 clears it), got ${String(t)}`);
  }
  return ms;
}

/**
 * A stream connection (TCP or Unix), like Go's `net.Conn`. Reads and writes are promises; deadlines are
 * absolute and apply to pending and future operations. Get one from `dial` or
 * `Listener.accept`.
 */
export class Conn implements AsyncIterable<Uint8Array>, LoopHandle {
  /** The network: 'tcp', 'tcp4', 'tcp6' or 'unix'. */
  readonly network: string;
  /** Bytes this connection may queue in the kernel's absence before `write` waits. */
  readonly writeQueueLimit: number;

  private readonly loop: Loop;
  private readonly id: number;
  private closed = false;
  private readable = true;   // readiness seen since the last EAGAIN
  private armed: boolean;     // the native side reports readiness
  private eof = false;
  private writeShut = false;       // closeWrite() was called
  private shutdownHeld = false;    // ... while writes were held: shut down once they are handed over
  private peerHungUp = false;  // after the peer's FIN a short read does not mean drained
  private readErr: Error | null = null;
  // Pending reads, oldest first: the first inline (the common case allocates no array),
  // later concurrent ones in `moreReads`.
  private read0: PendingRead | null = null;
  private moreReads: PendingRead[] | null = null;
  private writes: PendingWrite[] = NO_WRITES;  // queued natively, in order
  private held: HeldWrite[] = NO_WRITES;       // waiting for room in the native queue
  private readDeadline = 0;
  private writeDeadline = 0;
  private readTag = 0;
  private writeTag = 0;
  private local: Addr | undefined;
  private remote: Addr | undefined;
  private connectWaiter: ((errno: number) => void) | null = null;
  private handleSend: HandleSend | null = null;
  // onData(): bytes go to these callbacks as they arrive, instead of to pending reads.
  private dataHandler: ((data: Uint8Array) => void) | null = null;
  private endHandler: ((err: Error | null) => void) | null = null;

  /** @internal */
  constructor(loop: Loop, id: number, network: string, writeQueueLimit: number) {
    this.loop = loop;
    this.id = id;
    this.network = network;
    this.writeQueueLimit = writeQueueLimit;
    this.armed = loop.edge;  // edge-triggered sockets report every edge, always
    loop.adopt(id, this);
  }

  /** The multiplexing backend this connection runs on, e.g. 'epoll'. */
  get backend(): string {
    return this.loop.backend;
  }

  /**
   * Reads into `buf`. Resolves with the number of bytes read (at least 1, possibly fewer
   * than `buf.length`), or `null` at end of stream. Rejects with an {@link OpError}:
   * {@link ErrClosed} after `close()`, {@link ErrDeadlineExceeded} after the read deadline.
   * Concurrent reads complete in the order they were made.
   */
  read(buf: Uint8Array): Promise<number | null> {
    if (!(buf instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`buf: expected a Uint8Array or Buffer, got ${typeof buf}`));
    }
    return this.startRead(buf) as Promise<number | null>;
  }

  /**
   * Reads into a pooled chunk: no buffer is held while the connection is idle. Resolves
   * with a {@link Chunk} (release it when done) or `null` at end of stream.
   */
  readChunk(): Promise<Chunk | null> {
    return this.startRead(null) as Promise<Chunk | null>;
  }

  /**
   * Iterates over the stream as pooled views: each is valid until the next iteration
   * (copy it to keep it). Passing one to `write()` keeps it alive until written.
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return new ChunkIterator(this);
  }

  /** @internal The next step of a `for await` loop. */
  _nextChunk(iter: ChunkIterator): Promise<IteratorResult<Uint8Array>> {
    return this.startRead(null, false, iter) as Promise<IteratorResult<Uint8Array>>;
  }

  /**
   * Writes all of `data` (a string is sent as UTF-8). Resolves when every byte is in the
   * kernel; what the kernel does not take at once is queued by reference, so do not modify
   * `data` (or transfer its ArrayBuffer) until the promise settles. When `writeQueueLimit` bytes are queued, further
   * writes wait: that is the backpressure.
   */
  write(data: Uint8Array | string): Promise<void> {
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    else if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`data: expected a Uint8Array, Buffer or string, got ${typeof data}`));
    }
    if (this.closed) return Promise.reject(this.opError('write', new ErrClosed()));
    if (this.writeShut) return Promise.reject(this.opError('write', new SystemError(EPIPE, 'write')));
    if (this.writeDeadline !== 0 && Date.now() >= this.writeDeadline) {
      return Promise.reject(this.opError('write', new ErrDeadlineExceeded()));
    }
    if (data.length === 0) return RESOLVED;
    // onData's view is reused at the next delivery: a queued write must not point into it.
    // Write it straight from the shared buffer and copy only what the kernel leaves.
    // (`.buffer` is a slow runtime call: look only on loops that have the shared buffer.)
    const shared = this.loop.receiveBuffer;
    if (shared !== undefined && data.buffer === shared.buffer) {
      const n = this.held.length === 0 ? this.loop.native.tryWrite(this.id, data) : EBUSY;
      if (n === data.length) return RESOLVED;
      if (n < 0 && n !== EBUSY) return Promise.reject(this.opError('write', new SystemError(n, 'write')));
      data = data.slice(Math.max(n, 0));
    }
    if (this.held.length === 0) {
      const r = this.loop.native.write(this.id, data, this.writeQueueLimit);
      if (r === 0) return RESOLVED;
      if (r < 0) return Promise.reject(this.opError('write', new SystemError(r, 'write')));
      if (r === 1) {
        const chunk = this.retain(data);
        this.loop.hold(this.id, this);
        if (this.writes === NO_WRITES) this.writes = [];
        return new Promise((resolve, reject) => {
          this.writes.push({ resolve, reject, chunk });
        });
      }
    }
    const chunk = this.retain(data);
    const bytes = data;
    this.loop.hold(this.id, this);
    if (this.held === NO_WRITES) this.held = [];
    return new Promise((resolve, reject) => {
      this.held.push({ data: bytes, resolve, reject, chunk });
    });
  }

  /** Shuts down the sending side (after queued writes); the peer reads end of stream. */
  closeWrite(): void {
    if (this.closed) throw this.opError('close', new ErrClosed());
    if (this.writeShut) return;
    this.writeShut = true;
    // Writes waiting for room in the queue go first; the native side shuts down after the
    // ones already queued.
    if (this.held.length > 0) {
      this.shutdownHeld = true;
      return;
    }
    const r = this.loop.native.shutdown(this.id);
    if (r < 0) throw this.opError('close', new SystemError(r, 'shutdown'));
  }

  /**
   * Closes the connection. Pending reads and writes reject with {@link ErrClosed}; queued
   * bytes are dropped. Calling it again does nothing.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.forget(this.id, this);
    this.loop.native.close(this.id);
    const err = new ErrClosed();
    this.rejectReads(this.opError('read', err));
    this.rejectWrites(this.opError('write', err));
    this.connectWaiter = null;  // dial closes a connection it gives up on, and rejects itself
    this.dataHandler = null;    // closed by its owner: no onEnd
    this.endHandler = null;
    if (this.handleSend !== null) {
      this.handleSend.reject(this.opError('write', err));
      this.handleSend = null;
    }
  }

  /** The local address. */
  localAddr(): Addr {
    return this.fetchAddr(false);
  }

  /** The remote address. */
  remoteAddr(): Addr {
    return this.fetchAddr(true);
  }

  /** Sets both deadlines: a Date or epoch milliseconds; 0 clears. */
  setDeadline(deadline: Date | number): void {
    const ms = toDeadline(deadline, 'deadline');
    this.setReadDeadline(ms);
    this.setWriteDeadline(ms);
  }

  /**
   * Reads pending now or started later fail with {@link ErrDeadlineExceeded} once `deadline`
   * passes. A later deadline extends it; 0 clears it.
   */
  setReadDeadline(deadline: Date | number): void {
    const ms = toDeadline(deadline, 'deadline');
    this.checkOpen();
    this.readDeadline = ms;
    this.readTag = (this.readTag + 1) | 0;
    this.armDeadline(1, ms, this.readTag);
  }

  /** Like {@link setReadDeadline}, for writes. */
  setWriteDeadline(deadline: Date | number): void {
    const ms = toDeadline(deadline, 'deadline');
    this.checkOpen();
    this.writeDeadline = ms;
    this.writeTag = (this.writeTag + 1) | 0;
    this.armDeadline(2, ms, this.writeTag);
  }

  /**
   * What the connection is doing: addresses, state, bytes moved through muxnet, age, the
   * socket buffer sizes and, for TCP, the kernel's `TCP_INFO` (rtt, retransmits, congestion
   * window, bytes sent/acked/received, …). Throws {@link ErrClosed} after `close()`.
   */
  info(): ConnInfo {
    if (this.closed) throw this.opError('info', new ErrClosed());
    const info = this._describe();
    if (info === undefined) throw this.opError('info', new SystemError(EBADF, 'getsockopt'));
    return info;
  }

  /** @internal */
  get _kind(): 'conn' {
    return 'conn';
  }

  /** @internal */
  _describe(): ConnInfo | undefined {
    if (this.closed) return undefined;
    const v = readInfo(this.loop, this.id);
    if (typeof v === 'number') return undefined;
    const local = this.tryAddr(false);
    const remote = this.tryAddr(true);
    return connInfo(v, {
      kind: 'conn',
      network: this.network,
      local: local instanceof Addr ? String(local) : '',
      remote: remote instanceof Addr ? String(remote) : '',
      backend: this.loop.backend,
    }, 'CONNECTED');
  }

  /** TCP_NODELAY: send small writes at once instead of coalescing them (Nagle). On by default, as in Go. */
  setNoDelay(on = true): void {
    checkOn(on);
    this.setOption(SocketOption.NoDelay, on ? 1 : 0);
  }

  /** SO_KEEPALIVE, with optional idle time, probe interval (ms) and probe count. */
  setKeepAlive(on: boolean, options: KeepAliveOptions = {}): void {
    checkOn(on);
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`options: expected an object, got ${options === null ? 'null' : typeof options}`);
    }
    const seconds = (name: string, v: number | undefined): number => {
      if (v === undefined) return 0;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
        throw new TypeError(`options.${name}: expected a positive number of milliseconds, got ${String(v)}`);
      }
      return Math.max(1, Math.round(v / 1000));
    };
    const count = options.count;
    if (count !== undefined && (!Number.isInteger(count) || count <= 0)) {
      throw new TypeError(`options.count: expected a positive integer, got ${String(count)}`);
    }
    this.setOption(SocketOption.KeepAlive, on ? 1 : 0, seconds('idle', options.idle),
      seconds('interval', options.interval), count ?? 0);
  }

  /** SO_LINGER: < 0 is the default (close in the background); 0 resets the connection on close. */
  setLinger(sec: number): void {
    if (!Number.isInteger(sec)) throw new TypeError(`sec: expected an integer, got ${String(sec)}`);
    this.setOption(SocketOption.Linger, sec);
  }

  /** SO_RCVBUF in bytes (the kernel doubles it and applies its bounds). */
  setReadBuffer(bytes: number): void {
    this.setOption(SocketOption.ReadBuffer, checkBytes(bytes));
  }

  /** SO_SNDBUF in bytes (the kernel doubles it and applies its bounds). */
  setWriteBuffer(bytes: number): void {
    this.setOption(SocketOption.WriteBuffer, checkBytes(bytes));
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number): void {
    switch (kind) {
      case EventKind.Readable: this.onReadable(a); break;
      case EventKind.Written: this.onWritten(a); break;
      case EventKind.WriteError: this.onWriteError(a); break;
      case EventKind.Connected: if (this.connectWaiter !== null) this.connectWaiter(a); break;
      case EventKind.Deadline: this.onDeadline(a, b); break;
      case EventKind.Writable: {
        const send = this.handleSend;
        this.handleSend = null;
        if (send !== null && !this.closed) this.trySendHandles(send);
        break;
      }
    }
    this.settle();
  }

  /** @internal dial: called with 0 or -errno when the connect completes. */
  _waitConnected(callback: (errno: number) => void): void {
    this.loop.hold(this.id, this);
    this.connectWaiter = (errno) => {
      this.connectWaiter = null;
      callback(errno);
    };
  }

  /**
   * Unix connections: sends `data` (at least one byte) with the given sockets attached
   * (SCM_RIGHTS), so another process can take them over: the receiver's
   * {@link readHandles} gets working copies; close yours when done. Sockets must be on
   * this connection's loop. Rejects with EBUSY while other writes are queued (let them
   * settle first), or an OpError from sendmsg.
   */
  sendHandles(data: Uint8Array | string, handles: PassableHandle[]): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) {
      return Promise.reject(new TypeError('data: expected a non-empty Uint8Array or string: descriptors travel with bytes'));
    }
    if (!Array.isArray(handles) || handles.length === 0 || handles.length > 16) {
      return Promise.reject(new TypeError('handles: expected an array of 1 to 16 Conns, Listeners or PacketConns'));
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
    if (this.writes.length > 0 || this.held.length > 0 || this.handleSend !== null) {
      return Promise.reject(this.opError('write', new SystemError(EBUSY, 'sendmsg')));
    }
    return new Promise((resolve, reject) => this.trySendHandles({ data: bytes, ids, resolve, reject }));
  }

  /**
   * Unix connections: reads into `buf` like {@link read}, and takes the sockets sent with
   * those bytes by {@link sendHandles}, now open in this process on this loop. Resolves
   * `{ n, handles }`, or null at end of stream.
   */
  readHandles(buf: Uint8Array): Promise<HandlesRead | null> {
    if (!(buf instanceof Uint8Array) || buf.length === 0) {
      return Promise.reject(new TypeError('buf: expected a non-empty Uint8Array'));
    }
    return this.startRead(buf, true) as Promise<HandlesRead | null>;
  }

  /** @internal This handle's id on `loop`, or -1 (closed, or on another loop). */
  _handleOn(loop: Loop): number {
    return this.closed || loop !== this.loop ? -1 : this.id;
  }

  /**
   * Switches the connection to callbacks, like uSockets' `on_data`: `onData` is called with
   * the bytes as they arrive, and `onEnd` once, with null at end of stream or the error
   * that ended it (then close the connection). No promise and no buffer are held while the
   * connection is idle, which makes this the leanest form for many idle connections. The
   * view passed to `onData` is the loop's shared receive buffer, valid only during the call:
   * copy what you keep (`write(view)` sends it from there and copies only what the kernel does not take at once). If `onData` throws, the connection
   * is closed and `onEnd` gets the error. Not with pending `read()`s; cannot be undone.
   */
  onData(onData: (data: Uint8Array) => void, onEnd?: (err: Error | null) => void): void {
    if (typeof onData !== 'function') throw new TypeError(`onData: expected a function, got ${typeof onData}`);
    if (onEnd !== undefined && typeof onEnd !== 'function') throw new TypeError(`onEnd: expected a function, got ${typeof onEnd}`);
    if (this.closed) throw this.opError('read', new ErrClosed());
    if (this.read0 !== null || this.dataHandler !== null) {
      throw new TypeError('onData: the connection already has a reader (pending read() calls or an onData handler)');
    }
    this.dataHandler = onData;
    this.endHandler = onEnd ?? null;
    // Nobody may hold a reference but the loop: the handler is what uses the connection now.
    this.loop.pin(this.id, this);
    this.loop.receiveBuffer ??= new Uint8Array(this.loop.native.chunkSize);
    if (this.eof || this.readErr !== null) {
      queueMicrotask(() => this.endData(this.readErr));
      return;
    }
    if (!this.armed) {
      this.loop.native.wantRead(this.id);
      this.armed = true;
    }
    // Data may be waiting already (it came with the connection, or before onData).
    if (this.readable) queueMicrotask(() => this.deliverData());
  }

  /** Reads into the shared buffer and hands each read to onData, until the socket is drained. */
  private deliverData(): void {
    const buf = this.loop.receiveBuffer!;
    const native = this.loop.native;
    while (this.dataHandler !== null && !this.closed && this.readable) {
      const n = native.read(this.id, buf);
      if (n > 0) {
        // As in readNow: a short read drained the socket, unless the peer hung up.
        if (n < buf.length && !this.peerHungUp) this.readable = false;
        try {
          this.dataHandler(buf.subarray(0, n));
        } catch (err) {
          this.endData(err instanceof Error ? err : new Error(String(err)));
          this.close();
          return;
        }
      } else if (n === EAGAIN) {
        this.readable = false;
      } else if (n === 0) {
        this.eof = true;
        this.endData(null);
      } else {
        this.endData(this.failRead(n));
      }
    }
  }

  /** Calls onEnd once; without one, an error is printed (the connection is the caller's to close). */
  private endData(err: Error | null): void {
    const onEnd = this.endHandler;
    this.dataHandler = null;
    this.endHandler = null;
    // Idle again once its writes settle: collectable (and reclaimed) if dropped without close().
    if (!this.closed) this.loop.adopt(this.id, this);
    this.settle();
    if (onEnd !== null) onEnd(err);
    else if (err !== null) console.error('muxnet: onData connection ended with an error:', err);
  }

  private trySendHandles(send: HandleSend): void {
    const r = this.loop.native.sendHandles(this.id, send.data, send.ids);
    if (r === EAGAIN) {
      this.handleSend = send;
      this.loop.hold(this.id, this);
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

  /** read() and readChunk(): at once when the socket may hold data, else when it is ready. */
  private startRead(buf: Uint8Array | null, handles = false, iter: ChunkIterator | null = null): Promise<unknown> {
    const fail = this.readFailure();
    if (fail !== null) return Promise.reject(fail);
    if (this.read0 === null) {
      if (this.eof) return Promise.resolve(iter !== null ? DONE : null);
      if (buf !== null && buf.length === 0) return Promise.resolve(0);
      if (this.readable) {
        const result = this.readNow(buf, handles);
        if (result instanceof Error) return Promise.reject(result);
        if (result !== AGAIN) return Promise.resolve(iter !== null ? iter.result(result as Chunk | null) : result);
      } else if (!this.armed) {
        this.loop.native.wantRead(this.id);
        this.armed = true;
      }
    }
    this.loop.hold(this.id, this);
    return new Promise((resolve, reject) => {
      this.pushRead({ buf, resolve, reject, handles, iter });
    });
  }

  /**
   * With nothing in flight, the loop holds this connection only weakly: dropped without
   * close(), it can be collected (and its socket closed by the loop's finalizer).
   */
  private settle(): void {
    if (this.read0 === null && this.writes.length === 0 && this.held.length === 0 &&
        this.connectWaiter === null && this.handleSend === null && this.dataHandler === null && !this.closed) {
      this.loop.hold(this.id, undefined);
    }
  }

  /**
   * One read(2) for `buf` (null: into a pooled chunk). Returns the bytes read, a Chunk, null
   * at EOF, an Error, or AGAIN when the socket is drained (readiness is then reported).
   */
  private readNow(buf: Uint8Array | null, handles = false): number | Chunk | HandlesRead | null | Error | typeof AGAIN {
    const native = this.loop.native;
    let n: number;
    let chunk = -1;
    if (handles) {
      n = native.recvHandles(this.id, buf!, passedScratch);
      if (n > 0) {
        if (n < buf!.length && !this.peerHungUp) this.readable = false;
        return { n, handles: wrapPassed(this.loop, passedScratch) };
      }
      // With no bytes there are no descriptors either: EOF, EAGAIN or an error below.
    } else if (buf !== null) {
      if (buf.length === 0) return 0;
      n = native.read(this.id, buf);
    } else {
      n = native.readChunk(this.id, this.loop.scratch);
      chunk = this.loop.scratch[0];
      if (n === ENOBUFS) {
        // Pool exhausted: read into memory of our own instead (no waiting, order kept).
        const own = Buffer.allocUnsafe(native.chunkSize);
        const result = this.readNow(own);
        return typeof result === 'number' ? new PooledChunk(null, -1, own.subarray(0, result)) : result;
      }
    }
    if (n > 0) {
      // A short read drained the socket (unless the peer hung up: then EOF is still to
      // come, and an edge-triggered socket will not report it again).
      const size = buf !== null ? buf.length : native.chunkSize;
      if (n < size && !this.peerHungUp) this.readable = false;
      return buf !== null ? n : new PooledChunk(this.loop, chunk, this.loop.chunkView(chunk, n));
    }
    if (n === 0) {
      this.eof = true;
      return null;
    }
    if (n === EAGAIN) {
      this.readable = false;
      this.armed = true;  // the native side armed readiness on EAGAIN
      return AGAIN;
    }
    return this.failRead(n);
  }

  private onReadable(hungUp: number): void {
    this.readable = true;
    if (hungUp !== 0) this.peerHungUp = true;
    if (this.dataHandler !== null) return this.deliverData();
    if (this.read0 === null) {
      // Level-triggered readiness with nobody waiting would fire again and again. (After
      // serving reads nothing is needed: a short read drained the socket, and a full one
      // leaves data that reports again if nobody reads it.)
      if (!this.loop.edge && this.armed) {
        this.loop.native.pauseRead(this.id);
        this.armed = false;
      }
      return;
    }
    // Serve the waiting reads in order while the socket has data: an edge-triggered socket
    // reports this readiness once.
    while (this.read0 !== null && this.readable && !this.closed) {
      const result = this.readNow(this.read0.buf, this.read0.handles);
      if (result === AGAIN) return;
      const pending = this.shiftRead()!;
      if (result instanceof Error) {
        this.rejectReads(result, pending);
        return;
      }
      pending.resolve(pending.iter !== null ? pending.iter.result(result as Chunk | null) : result);
      if (result === null) {
        this.resolveEof();
        return;
      }
    }
  }

  /** After EOF every waiting read resolves null, as later reads do. */
  private resolveEof(): void {
    for (const pending of this.takeReads()) pending.resolve(pending.iter !== null ? DONE : null);
  }

  private onWritten(count: number): void {
    for (const w of this.writes.splice(0, count)) {
      if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
      w.resolve();
    }
    // Room in the queue: hand over the writes that were waiting for it, in order.
    while (this.held.length > 0 && !this.closed) {
      const w = this.held[0];
      const r = this.loop.native.write(this.id, w.data, this.writeQueueLimit);
      if (r === 2) return;
      this.held.shift();
      if (r === 1) {
        if (this.writes === NO_WRITES) this.writes = [];
        this.writes.push(w);
      } else if (r === 0) {
        if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
        w.resolve();
      } else {
        // Only the writes not yet handed over fail here; queued ones report for themselves.
        const err = this.opError('write', new SystemError(r, 'write'));
        for (const h of [w, ...this.held.splice(0)]) {
          if (h.chunk >= 0) this.loop.releaseChunk(h.chunk);
          h.reject(err);
        }
        this.shutdownIfHeld();
        return;
      }
    }
    this.shutdownIfHeld();
  }

  /**
   * The shutdown closeWrite() deferred until the held writes were handed over: now they
   * are, or they failed (a write deadline, an error). Either way the peer must see EOF.
   */
  private shutdownIfHeld(): void {
    if (!this.shutdownHeld || this.closed) return;
    this.shutdownHeld = false;
    this.loop.native.shutdown(this.id);
  }

  private onWriteError(errno: number): void {
    this.rejectWrites(this.opError('write', new SystemError(errno, 'write')));
  }

  private onDeadline(kind: number, tag: number): void {
    // Only operations waiting now fail (and count in stats()): one started after the
    // deadline has failed already, and counted itself.
    if (kind === 1 && tag === this.readTag && this.readDeadline !== 0) {
      if (this.read0 !== null) this.rejectReads(this.opError('read', new ErrDeadlineExceeded()));
    } else if (kind === 2 && tag === this.writeTag && this.writeDeadline !== 0 &&
               (this.writes.length > 0 || this.held.length > 0)) {
      if (this.writes.length > 0) this.loop.native.cancelWrites(this.id);
      this.rejectWrites(this.opError('write', new ErrDeadlineExceeded()));
    }
  }

  private armDeadline(kind: 1 | 2, ms: number, tag: number): void {
    if (ms === 0) {
      this.loop.native.setDeadline(this.id, kind, -1, tag);
      return;
    }
    const delay = ms - Date.now();
    if (delay <= 0) {
      this.loop.native.setDeadline(this.id, kind, -1, tag);
      this.onDeadline(kind, tag);
      this.settle();
      return;
    }
    this.loop.native.setDeadline(this.id, kind, Math.ceil(delay), tag);
  }

  private readFailure(): Error | null {
    if (this.closed) return this.opError('read', new ErrClosed());
    if (this.readErr !== null) return this.readErr;
    if (this.readDeadline !== 0 && Date.now() >= this.readDeadline) {
      return this.opError('read', new ErrDeadlineExceeded());
    }
    return null;
  }

  private failRead(errno: number): Error {
    this.readErr = this.opError('read', new SystemError(errno, 'read'));
    return this.readErr;
  }

  private pushRead(pending: PendingRead): void {
    if (this.read0 === null) this.read0 = pending;
    else (this.moreReads ??= []).push(pending);
  }

  private shiftRead(): PendingRead | null {
    const first = this.read0;
    this.read0 = this.moreReads?.shift() ?? null;
    return first;
  }


  /** Removes and returns every pending read, oldest first. */
  private takeReads(): PendingRead[] {
    const all = this.read0 === null ? [] : [this.read0];
    if (this.moreReads !== null) all.push(...this.moreReads.splice(0));
    this.read0 = null;
    return all;
  }

  private rejectReads(err: Error, first?: PendingRead): void {
    if (first !== undefined) first.reject(err);
    for (const pending of this.takeReads()) pending.reject(err);
  }

  private rejectWrites(err: Error): void {
    const all = this.writes.splice(0).concat(this.held.splice(0));
    for (const w of all) {
      if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
      w.reject(err);
    }
    this.shutdownIfHeld();
  }

  private retain(data: Uint8Array): number {
    const chunk = this.loop.chunkOf(data);
    if (chunk >= 0) this.loop.retainChunk(chunk);
    return chunk;
  }

  private checkOpen(): void {
    if (this.closed) throw this.opError('set', new ErrClosed());
  }


  private setOption(option: SocketOption, a: number, b = 0, c = 0, d = 0): void {
    this.checkOpen();
    const r = this.loop.native.setOption(this.id, option, a, b, c, d);
    if (r < 0) throw this.opError('set', new SystemError(r, 'setsockopt'));
  }

  private fetchAddr(peer: boolean): Addr {
    if (this.closed) throw new OpError('set', this.network, new ErrClosed(), this.local, this.remote);
    const addr = this.tryAddr(peer);
    if (addr instanceof Addr) return addr;
    throw new OpError('set', this.network, new SystemError(addr, peer ? 'getpeername' : 'getsockname'), this.local, this.remote);
  }

  /** The address, cached once known, or -errno (a reset socket has no peer any more). */
  private tryAddr(peer: boolean): Addr | number {
    const cached = peer ? this.remote : this.local;
    if (cached !== undefined || this.closed) return cached ?? EBADF;
    const r = this.loop.native.addr(this.id, peer);
    if (typeof r === 'number') return r;
    const addr = addrFromNative(this.network, r);
    if (peer) this.remote = addr; else this.local = addr;
    return addr;
  }

  private opError(op: string, err: Error): OpError {
    this.loop.countError((err as { code?: string }).code ?? 'ERR_UNKNOWN');
    const source = this.tryAddr(false);
    const addr = this.tryAddr(true);
    // An unnamed Unix socket (a dialing client's) has no address worth printing.
    const named = source instanceof Addr && (source.network !== 'unix' || source.path !== '');
    return new OpError(op, this.network, err, named ? source : undefined,
      addr instanceof Addr ? addr : undefined);
  }
}
