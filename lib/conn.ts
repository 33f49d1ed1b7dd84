// Conn: a TCP connection with Go's Read/Write/deadline semantics, as promises.
import { fstat } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Addr } from './addr';
import { Descriptor, checkOn } from './descriptor';
import {
  EAGAIN, EFAULT, EINPROGRESS, EINVAL, ENOBUFS, EPIPE, ErrClosed, ErrDeadlineExceeded, SystemError, describeValue,
} from './errors';
import { EventKind, ReadMode, SocketOption, SubmitOp } from './native';
import type { Loop } from './loop';
import { ConnStream, type ConnStreamOptions } from './stream';

// Connections that have handed their reads to a stream (see Conn.stream).
const streamed = new WeakSet<object>();

/**
 * What splices through a connection (pipe() on Linux) is told of it: readiness it waits for,
 * and the end of it (closed, a deadline). @internal
 */
export interface Splicer {
  readable(): void;
  writable(): void;
  fail(err: Error): void;
}

// Connections a splicing pipe() drives, and what it is told (no field per connection: rare).
const splicers = new WeakMap<object, Splicer>();

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
/**
 * Writes held behind a full native queue (made without awaiting the earlier ones) may add
 * up to this many bytes, or writeQueueLimit if larger, before write() rejects with ENOBUFS.
 * Large, because held writes are references, not copies (an echo that does not await its
 * writes holds views of data it read), and a small writeQueueLimit is a valid choice for
 * latency that should not make such a program fail; but bounded, so a runaway writer
 * fails instead of taking all memory.
 */
export const kHeldBytesFloor = 64 * 1024 * 1024;

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
  bytes: number;  // this write's length, for writableLength
  resolve: () => void;
  reject: (err: Error) => void;
  chunk: number;  // pooled chunk kept alive by this write, or -1
}

interface HeldWrite extends PendingWrite {
  data: Uint8Array;
  file: FileRange | null;  // sendFile(): the file's bytes instead of `data`
}

interface FileRange {
  fd: number;
  offset: number;
  ready: boolean;  // false while the file is being opened: the writes behind it wait
  handle: FileHandle | null;  // opened by sendFile (a path): closed when the send settles
}

/** Options of {@link Conn.sendFile}. */
export interface SendFileOptions {
  /** Where in the file to start (default 0). */
  offset?: number;
  /** How many bytes to send (default: to the end of the file). */
  length?: number;
}

const NO_BYTES = new Uint8Array(0);
const fstatAsync = promisify(fstat);

interface PendingRead {
  buf: Uint8Array | null;  // null: a chunk read
  resolve: (value: any) => void;
  reject: (err: Error) => void;
  handles: boolean;  // readHandles(): recvmsg, sockets passed with the bytes
  iter: ChunkIterator | null;  // a chunk read for `for await`: resolves an IteratorResult
  own: Uint8Array | null;  // a chunk read done into memory of its own (the pool ran dry)
}

/** The largest queue limit a submitted write carries (an int32). */
const kMaxLimit = 0x7fffffff;

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

/**
 * A stream connection (TCP or Unix), like Go's `net.Conn`. Reads and writes are promises; deadlines are
 * absolute and apply to pending and future operations. Get one from `dial` or
 * `Listener.accept`.
 */
export class Conn extends Descriptor implements AsyncIterable<Uint8Array> {
  /** The network: 'tcp', 'tcp4', 'tcp6' or 'unix'. */
  declare readonly network: string;
  /**
   * Bytes this connection may queue natively before `write` holds further writes (which
   * wait, in order); held writes are bounded by as much again (see {@link write}).
   */
  readonly writeQueueLimit: number;

  private eof = false;
  private writeShut = false;       // closeWrite() was called
  private shutdownHeld = false;    // ... while writes were held: shut down once they are handed over
  /** After the peer's FIN a short read does not mean drained. @internal */
  protected peerHungUp = false;
  private readErr: Error | null = null;
  // Pending reads, oldest first: the first inline (the common case allocates no array),
  // later concurrent ones in `moreReads`.
  private read0: PendingRead | null = null;
  private moreReads: PendingRead[] | null = null;
  /** Writes submitted (loop.submit) whose result has not come back, in order. @internal */
  protected sent: HeldWrite[] = NO_WRITES;
  /** Writes queued natively, in order. @internal */
  protected writes: PendingWrite[] = NO_WRITES;
  /** Writes waiting for room in the native queue. @internal */
  protected held: HeldWrite[] = NO_WRITES;
  private sentBytes = 0;    // bytes of `sent`
  private queuedBytes = 0;  // bytes of `writes`
  private submitted = 0;    // operations in the loop's submission queue
  private nativeRead = false;  // the head read is submitted or started natively
  private expiring = false;    // expireReads: start no further read
  private heldBytes = 0;    // bytes of `held`
  private connectWaiter: ((errno: number) => void) | null = null;
  // onData(): bytes go to these callbacks as they arrive, instead of to pending reads.
  private dataHandler: ((data: Uint8Array) => void) | null = null;
  private endHandler: ((err: Error | null) => void) | null = null;

  /**
   * @internal `connected`: false while a dial is in progress (the addresses are cached when
   * it completes); an accepted or connected socket caches them at once.
   */
  constructor(loop: Loop, id: number, network: string, writeQueueLimit: number, connected = true) {
    super(loop, id, network);
    this.writeQueueLimit = writeQueueLimit;
    if (connected) this.cacheAddrs();
  }

  /**
   * Reads into `buf`. Resolves with the number of bytes read (at least 1, possibly fewer
   * than `buf.length`), or `null` at end of stream. Rejects with an {@link OpError}:
   * {@link ErrClosed} after `close()`, {@link ErrDeadlineExceeded} after the read deadline.
   * Concurrent reads complete in the order they were made.
   */
  read(buf: Uint8Array): Promise<number | null> {
    if (!(buf instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`buf: expected a Uint8Array or Buffer, got ${describeValue(buf)}`));
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
   * writes wait: that is the backpressure. Writes nobody awaits are bounded too: while
   * writes wait, one more that would make the waiting bytes exceed 64 MiB (or
   * `writeQueueLimit`, if larger) rejects with ENOBUFS; the first waiting write may be of
   * any size. {@link writableLength} tells how much is queued.
   */
  write(data: Uint8Array | string): Promise<void> {
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    else if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`data: expected a Uint8Array, Buffer or string, got ${describeValue(data)}`));
    }
    const failed = this.writeFailure();
    if (failed !== null) return Promise.reject(failed);
    if (data.length === 0) return RESOLVED;
    if (this.held.length === 0) {
      // Crosses with the other operations of this batch, in one submit(): the result
      // (written, queued natively, or held behind a full queue) comes back in order.
      const chunk = this.retain(data);
      const bytes = data.length;
      const sent = data;
      this.keep();
      if (this.sent === NO_WRITES) this.sent = [];
      this.sentBytes += bytes;
      this.submitted++;
      this.loop.submit(this, this.id, SubmitOp.Write, Math.min(this.writeQueueLimit, kMaxLimit), sent);
      return new Promise((resolve, reject) => {
        this.sent.push({ data: sent, bytes, resolve, reject, chunk, file: null });
      });
    } else if (this.heldBytes + data.length > Math.max(this.writeQueueLimit, kHeldBytesFloor)) {
      // Writes nobody awaits would otherwise pile up here without bound.
      const err = this.opError('write', new SystemError(ENOBUFS, 'write'));
      err.message += ` (${this.heldBytes} bytes already wait behind a full write queue: await earlier writes)`;
      return Promise.reject(err);
    }
    const chunk = this.retain(data);
    const held = data;
    this.keep();
    if (this.held === NO_WRITES) this.held = [];
    this.heldBytes += held.length;
    return new Promise((resolve, reject) => {
      this.held.push({ data: held, bytes: held.length, resolve, reject, chunk, file: null });
    });
  }

  /**
   * Sends a file's bytes, `options.length` of them from `options.offset` (default: all of
   * it), in order with the writes around it, like Go's `io.Copy(conn, file)`: with
   * `sendfile(2)` where the platform has it, so the bytes never pass through JavaScript or
   * a user-space buffer. `file` is a path (opened and closed here) or an open descriptor
   * (yours: keep it open until this settles). Resolves with the bytes sent once all are in
   * the kernel; deadlines, `close()` and backpressure behave as for {@link write}. Rejects
   * with a RangeError when the file is shorter than asked. Reading the file happens on the
   * loop's thread: from the page cache this costs nothing, from a cold disk it blocks the
   * loop for the read, as nginx's `sendfile on` does.
   */
  sendFile(file: string | number, options: SendFileOptions = {}): Promise<number> {
    if (typeof file !== 'string' && !(Number.isInteger(file) && (file as number) >= 0)) {
      return Promise.reject(new TypeError(`file: expected a path or an open file descriptor, got ${describeValue(file)}`));
    }
    if (options === null || typeof options !== 'object') {
      return Promise.reject(new TypeError(`options: expected an object, got ${describeValue(options)}`));
    }
    const { offset = 0, length } = options;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return Promise.reject(new RangeError(`options.offset: expected an integer >= 0, got ${describeValue(offset)}`));
    }
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
      return Promise.reject(new RangeError(`options.length: expected an integer >= 0, got ${describeValue(length)}`));
    }
    const failed = this.writeFailure();
    if (failed !== null) return Promise.reject(failed);
    // Its place among the writes is taken now, while the file opens: writes made before it
    // learn where they stand (flushOps), and writes made after it wait behind it.
    this.flushOps();
    const range: FileRange = { fd: -1, offset, ready: false, handle: null };
    let w!: HeldWrite;
    const settled = new Promise<void>((resolve, reject) => {
      w = { data: NO_BYTES, bytes: 0, resolve, reject, chunk: -1, file: range };
    });
    if (this.held === NO_WRITES) this.held = [];
    this.held.push(w);
    this.keep();
    void this.openFile(file, length, w);
    // The file is closed once its bytes are in the kernel, or the send failed.
    return settled.then(() => w.bytes).finally(() => range.handle?.close());
  }

  /** Why no write can start now (closed, shut down, past the write deadline), or null. */
  private writeFailure(): Error | null {
    if (this.closed) return this.opError('write', new ErrClosed());
    if (this.writeShut) return this.opError('write', new SystemError(EPIPE, 'write'));
    return this.deadlinePassed('write');
  }

  /**
   * sendFile(): opens and checks `file`, then lets write `w` (held, waiting for this) go to
   * the native queue with its range, and the writes behind it after it.
   */
  private async openFile(file: string | number, length: number | undefined, w: HeldWrite): Promise<void> {
    const range = w.file!;
    try {
      if (typeof file === 'string') range.handle = await open(file, 'r');
      const fd = range.handle?.fd ?? (file as number);
      const st = await fstatAsync(fd);
      if (!st.isFile()) throw new TypeError(`file: expected a regular file, got ${describeValue(file)} (not a file)`);
      const n = length ?? Math.max(0, st.size - range.offset);
      if (range.offset + n > st.size) {
        throw new RangeError(`options.length: ${describeValue(file)} has ${st.size} bytes, fewer than offset ${range.offset} + length ${n}`);
      }
      const i = this.held.indexOf(w);
      if (i < 0) {
        // Failed while the file opened (closed, a deadline): already rejected.
        await range.handle?.close();
        return;
      }
      range.fd = fd;
      range.ready = true;
      w.bytes = n;
      this.heldBytes += n;
      if (n === 0) {
        this.held.splice(i, 1);
        w.resolve();
      }
    } catch (err) {
      const i = this.held.indexOf(w);
      if (i >= 0) {
        this.held.splice(i, 1);
        w.reject(err as Error);
      }
    }
    this.pumpHeld();
    this.settle();
  }

  /**
   * Bytes written but not yet taken by the kernel: queued natively and waiting to be
   * queued, as Node's `writableLength`. A write counts whole until its promise settles.
   */
  get writableLength(): number {
    return this.sentBytes + this.queuedBytes + this.heldBytes;
  }

  /**
   * This connection as a Node `Duplex` ({@link ConnStream}), for anything that takes a
   * socket: Node's `http`, `https`, `tls` and `http2` servers (see
   * {@link Listener.serveNode}), `new tls.TLSSocket(stream)`, `stream.pipeline`. The stream
   * does the reading from then on: call it once, and make no reads of your own.
   */
  stream(options: ConnStreamOptions = {}): ConnStream {
    if (streamed.has(this)) throw new TypeError('stream: this connection already has a stream');
    if (this.read0 !== null || this.dataHandler !== null) {
      throw new TypeError('stream: the connection already has a reader (pending read() calls or an onData handler)');
    }
    const s = new ConnStream(this, options);
    streamed.add(this);
    return s;
  }

  /** Shuts down the sending side (after queued writes); the peer reads end of stream. */
  closeWrite(): void {
    if (this.closed) throw this.opError('close', new ErrClosed());
    if (this.writeShut) return;
    this.writeShut = true;
    this.flushOps();  // submitted writes go before the shutdown
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
   * The remote address, cached when the connection was made: still there after the peer
   * resets and after `close()`, as in Go.
   */
  remoteAddr(): Addr {
    const addr = this.tryAddr(true);
    if (typeof addr !== 'number') return addr;
    throw this.opError('set', this.closed ? new ErrClosed() : new SystemError(addr, 'getpeername'));
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
      throw new TypeError(`options: expected an object, got ${describeValue(options)}`);
    }
    const seconds = (name: string, v: number | undefined): number => {
      if (v === undefined) return 0;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
        throw new TypeError(`options.${name}: expected a positive number of milliseconds, got ${describeValue(v)}`);
      }
      return Math.max(1, Math.round(v / 1000));
    };
    const count = options.count;
    if (count !== undefined && (!Number.isInteger(count) || count <= 0)) {
      throw new TypeError(`options.count: expected a positive integer, got ${describeValue(count)}`);
    }
    this.setOption(SocketOption.KeepAlive, on ? 1 : 0, seconds('idle', options.idle),
      seconds('interval', options.interval), count ?? 0);
  }

  /** SO_LINGER: < 0 is the default (close in the background); 0 resets the connection on close. */
  setLinger(sec: number): void {
    if (!Number.isInteger(sec)) throw new TypeError(`sec: expected an integer, got ${describeValue(sec)}`);
    this.setOption(SocketOption.Linger, sec);
  }

  /**
   * @internal pipe(): lets `splicer` drive this connection's reads (`reading`) or writes.
   * False when it cannot: closed, splicing already, a stream or reader owns the reads, or
   * writes are queued.
   */
  _spliceAttach(splicer: Splicer, reading: boolean): boolean {
    if (this.closed || splicers.has(this)) return false;
    this.flushOps();
    if (reading ? this.read0 !== null || this.dataHandler !== null || streamed.has(this) || this.eof
      : this.writableLength > 0 || this.writeShut) {
      return false;
    }
    splicers.set(this, splicer);
    return true;
  }

  /** @internal pipe(): splicing through this connection has ended. */
  _spliceDetach(): void {
    splicers.delete(this);
    if (!this.closed) this.settle();
  }

  /** @internal The loop this connection is on, for pipe() to splice within one. */
  get _loop(): Loop {
    return this.loop;
  }

  /** @internal Readiness seen since the last EAGAIN. */
  get _readable(): boolean {
    return this.readable;
  }

  /**
   * @internal splice(2) from this socket into `pipe`: bytes, 0 at end of stream, EAGAIN
   * (with `pipeEmpty`, the socket is drained and readiness is armed; else the pipe may be
   * full), or -errno.
   */
  _spliceIn(pipe: number, len: number, pipeEmpty: boolean): number {
    const n = this.loop.native.spliceIn(this.id, pipe, len);
    if (n === EAGAIN && pipeEmpty) this.drained();
    else if (n === 0) this.eof = true;
    return n;
  }

  /** @internal splice(2) from `pipe` to this socket: bytes, EAGAIN (room is then asked for), or -errno. */
  _spliceOut(pipe: number, len: number): number {
    const n = this.loop.native.spliceOut(pipe, this.id, len);
    if (n === EAGAIN) this.loop.native.wantWrite(this.id);
    return n;
  }

  /** @internal pipe(): readiness is wanted (after EAGAIN it is armed already). */
  _spliceWantRead(): void {
    this.armRead();
  }

  /** @internal pipe(): readiness is not wanted now (level-triggered would repeat it). */
  _splicePauseRead(): void {
    this.pauseIdleRead();
  }

  /** @internal An OpError for a splice result, as this connection names its errors. */
  _spliceError(op: 'read' | 'write', errno: number): Error {
    return this.opError(op, new SystemError(errno, 'splice'));
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number): void {
    switch (kind) {
      case EventKind.Read: this.onRead(a, b, false); break;
      case EventKind.Readable: this.onReadable(a); break;
      case EventKind.Written: this.onWritten(a); break;
      case EventKind.WriteError: this.onWriteError(a); break;
      case EventKind.Connected: if (this.connectWaiter !== null) this.connectWaiter(a); break;
      case EventKind.Deadline: this.onDeadline(a, b); break;
      case EventKind.Writable:
        if (!this.closed) {
          const splicer = splicers.get(this);
          if (splicer !== undefined) splicer.writable();
          else this.onWritable();
        }
        break;
    }
    this.settle();
  }

  /** @internal dial: called with 0 or -errno when the connect completes. */
  _waitConnected(callback: (errno: number) => void, remote: Addr): void {
    this.keep();
    this.connectWaiter = (errno) => {
      this.connectWaiter = null;
      if (errno === 0) this.cacheAddrs(remote);
      callback(errno);
    };
  }

  /**
   * Switches the connection to callbacks, like uSockets' `on_data`: `onData` is called with
   * the bytes as they arrive, and `onEnd` once, with null at end of stream or the error
   * that ended it (then close the connection). No promise and no buffer are held while the
   * connection is idle, which makes this the leanest form for many idle connections. The
   * view passed to `onData` is a pooled chunk that the loop read into, valid only during
   * the call: copy what you keep (`write(view)` keeps its chunk until written, with no
   * copy). If `onData` throws, the connection is closed and `onEnd` gets the error. Not
   * with pending `read()`s; cannot be undone.
   */
  onData(onData: (data: Uint8Array) => void, onEnd?: (err: Error | null) => void): void {
    if (typeof onData !== 'function') throw new TypeError(`onData: expected a function, got ${describeValue(onData)}`);
    if (onEnd !== undefined && typeof onEnd !== 'function') throw new TypeError(`onEnd: expected a function, got ${describeValue(onEnd)}`);
    if (this.closed) throw this.opError('read', new ErrClosed());
    if (this.read0 !== null || this.dataHandler !== null) {
      throw new TypeError('onData: the connection already has a reader (pending read() calls or an onData handler)');
    }
    this.dataHandler = onData;
    this.endHandler = onEnd ?? null;
    // Nobody may hold a reference but the loop: the handler is what uses the connection now.
    this.loop.pin(this.id, this);
    if (this.eof || this.readErr !== null) {
      queueMicrotask(() => this.endData(this.readErr));
      return;
    }
    this.startStream();
  }

  /** Starts (or, after data came at once, goes on with) the native read of a stream of chunks. */
  private startStream(): void {
    this.nativeRead = true;
    this.submitted++;
    this.loop.submit(this, this.id, SubmitOp.Read, ReadMode.Stream, undefined);
  }

  /** Hands one chunk to onData; the chunk goes back to the pool after the call. */
  private deliverData(chunk: number, n: number): void {
    const handler = this.dataHandler!;
    const view = this.loop.chunkView(chunk, n);
    try {
      handler(view);
    } catch (err) {
      this.endData(err instanceof Error ? err : new Error(String(err)));
      this.close();
    } finally {
      this.loop.releaseChunk(chunk);
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

  /**
   * read(), readChunk(), a `for await` step and readHandles(): queued in order; the first
   * is started natively (see {@link startHead}) and completes in a submit() result or a
   * Read event, with no call of its own. @internal
   */
  protected startRead(buf: Uint8Array | null, handles = false, iter: ChunkIterator | null = null): Promise<unknown> {
    const fail = this.readFailure();
    if (fail !== null) return Promise.reject(fail);
    if (this.read0 === null) {
      if (this.eof) return Promise.resolve(iter !== null ? DONE : null);
      if (buf !== null && buf.length === 0) return Promise.resolve(0);
    }
    this.keep();
    return new Promise((resolve, reject) => {
      const pending: PendingRead = { buf, resolve, reject, handles, iter, own: null };
      const first = this.read0 === null;
      this.pushRead(pending);
      // readFailure() has checked what startHead() checks for reads that come up later.
      if (first) this.beginRead(pending);
    });
  }

  /** Starts the read that has come up first, unless the connection closed or its deadline passed. */
  private startHead(): void {
    let head = this.read0;
    // An empty read queued behind others completes as it comes up, as it would alone.
    while (head !== null && head.buf !== null && head.buf.length === 0 && !head.handles) {
      this.shiftRead();
      head.resolve(0);
      head = this.read0;
    }
    if (head === null || this.closed || this.expiring) return;
    const late = this.deadlinePassed('read');
    if (late !== null) {
      this.rejectReads(late);
      return;
    }
    this.beginRead(head);
  }

  /**
   * Starts `head`, the oldest pending read: natively (into its buffer, or a pooled chunk),
   * or for readHandles() with recvmsg now and on readiness (Readable events).
   */
  private beginRead(head: PendingRead): void {
    if (head.handles) {
      this.onReadable(0);
      if (this.read0 === head) this.armRead();
      return;
    }
    this.nativeRead = true;
    this.submitted++;
    const target = head.own ?? head.buf;
    this.loop.submit(this, this.id, SubmitOp.Read, target !== null ? ReadMode.Buffer : ReadMode.Chunk, target ?? undefined);
  }

  /** Submits this connection's queued operations now, when their order with what follows matters. @internal */
  protected flushOps(): void {
    if (this.submitted > 0) this.loop.flush();
  }

  /** @internal The result of an operation this connection submitted. */
  _onSubmitted(op: SubmitOp, result: number, arg: number): void {
    this.submitted--;
    if (op === SubmitOp.Write) this.onWriteSubmitted(result);
    else if (op === SubmitOp.Read) this.onRead(result, arg, true);
    this.settle();
  }

  /**
   * A native read completed: bytes (> 0, into the read's buffer or pool chunk `chunk`), 0 at
   * EOF, -EINPROGRESS (it waits: a Read event follows) or -errno.
   */
  private onRead(n: number, chunk: number, submitted: boolean): void {
    if (n === EINPROGRESS) return;
    if (!this.nativeRead || this.closed) {
      if (chunk >= 0) this.loop.returnChunk(chunk);
      return;
    }
    if (this.dataHandler !== null) return this.onStreamRead(n, chunk, submitted);
    this.nativeRead = false;
    const pending = this.read0;
    if (pending === null) {
      if (chunk >= 0) this.loop.returnChunk(chunk);
      return;
    }
    if (n === ENOBUFS && pending.buf === null && pending.own === null) {
      // The pool ran dry: this read goes into memory of its own instead (order kept).
      pending.own = Buffer.allocUnsafe(this.loop.native.chunkSize);
      this.startHead();
      return;
    }
    this.shiftRead();
    if (n > 0) {
      const value = pending.own !== null ? new PooledChunk(null, -1, pending.own.subarray(0, n))
        : pending.buf !== null ? n
          : new PooledChunk(this.loop, chunk, this.loop.chunkView(chunk, n));
      pending.resolve(pending.iter !== null ? pending.iter.result(value as Chunk) : value);
      this.startHead();
    } else if (n === 0) {
      this.eof = true;
      pending.resolve(pending.iter !== null ? DONE : null);
      this.resolveEof();
    } else if (n === EFAULT) {
      // The caller's buffer went away while the read waited (its ArrayBuffer was
      // transferred): that read fails, nothing was consumed, the connection reads on.
      pending.reject(new TypeError('buf: its ArrayBuffer was detached (transferred) while the read waited'));
      this.startHead();
    } else {
      this.rejectReads(this.failRead(n), pending);
    }
  }

  /** onData's native stream: a chunk, EOF or an error. */
  private onStreamRead(n: number, chunk: number, submitted: boolean): void {
    if (n > 0) {
      this.deliverData(chunk, n);
      // Data at once leaves the stream started: read on until it waits (edge-triggered
      // readiness would not come again for what is already there).
      if (submitted && this.dataHandler !== null && !this.closed) this.startStream();
      return;
    }
    this.nativeRead = false;
    if (n === ENOBUFS) {
      // Chunks come back as handlers return: try again after the callbacks of this turn.
      setImmediate(() => {
        if (this.dataHandler !== null && !this.closed && !this.nativeRead) this.startStream();
      });
      return;
    }
    if (n === 0) {
      this.eof = true;
      this.endData(null);
    } else {
      this.endData(this.failRead(n));
    }
  }

  /** A submitted write's result: written, queued natively, held behind a full queue, or failed. */
  private onWriteSubmitted(r: number): void {
    const w = this.sent.shift();
    if (w === undefined) return;  // failed already (closed)
    this.sentBytes -= w.bytes;
    if (r === 0) {
      if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
      w.resolve();
    } else if (r === 1) {
      if (this.writes === NO_WRITES) this.writes = [];
      this.writes.push(w);
      this.queuedBytes += w.bytes;
    } else if (r === 2) {
      if (this.held === NO_WRITES) this.held = [];
      this.held.push(w);
      this.heldBytes += w.bytes;
    } else {
      if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
      w.reject(this.opError('write', new SystemError(r, 'write')));
    }
  }

  /** Closes the connection, after handing the native side what was submitted before. */
  override close(): void {
    if (!this.closed) this.flushOps();
    super.close();
  }

  /** @internal */
  protected busy(): boolean {
    return this.read0 !== null || this.sent.length !== 0 || this.writes.length !== 0 ||
      this.held.length !== 0 || this.connectWaiter !== null || this.dataHandler !== null ||
      this.submitted !== 0;
  }

  /** The Writable event (asked for by a subclass with wantWrite). @internal */
  protected onWritable(): void {}

  /**
   * readHandles(): recvmsg into `buf`, taking passed sockets. Returns what the read
   * resolves with, or a number as `read` returns (0, -EAGAIN, -errno) when no bytes came.
   * Only {@link UnixConn} passes sockets. @internal
   */
  protected readWithHandles(_buf: Uint8Array): object | number {
    return EINVAL;
  }

  /**
   * readHandles(): one recvmsg into `buf`. Returns what the read resolves with, null at
   * EOF, an Error, or AGAIN when the socket is drained (readiness is then reported).
   */
  private readNow(buf: Uint8Array): object | null | Error | typeof AGAIN {
    const r = this.readWithHandles(buf);
    if (typeof r !== 'number') return r;
    if (r === 0) {
      this.eof = true;
      return null;
    }
    if (r === EAGAIN) {
      this.drained();
      return AGAIN;
    }
    return this.failRead(r);
  }

  /** Readiness reported for readHandles() (WantRead), or edge-triggered with no read started. */
  private onReadable(hungUp: number): void {
    this.readable = true;
    if (hungUp !== 0) this.peerHungUp = true;
    const splicer = splicers.get(this);
    if (splicer !== undefined) {
      splicer.readable();
      return;
    }
    if (this.read0 === null || !this.read0.handles) {
      // (After serving reads nothing is needed: a short read drained the socket, and a
      // full one leaves data that reports again if nobody reads it.)
      this.pauseIdleRead();
      return;
    }
    // Serve the waiting reads in order while the socket has data: an edge-triggered socket
    // reports this readiness once.
    while (this.read0 !== null && this.read0.handles && this.readable && !this.closed) {
      const result = this.readNow(this.read0.buf!);
      if (result === AGAIN) return;
      const pending = this.shiftRead()!;
      if (result instanceof Error) {
        this.rejectReads(result, pending);
        return;
      }
      pending.resolve(result);
      if (result === null) {
        this.resolveEof();
        return;
      }
    }
    // A read of another kind is next: it is started natively.
    if (this.read0 !== null && !this.read0.handles && !this.nativeRead) this.startHead();
  }

  /** After EOF every waiting read resolves null, as later reads do. */
  private resolveEof(): void {
    for (const pending of this.takeReads()) pending.resolve(pending.iter !== null ? DONE : null);
  }

  private onWritten(count: number): void {
    for (const w of this.writes.splice(0, count)) {
      this.queuedBytes -= w.bytes;
      if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
      w.resolve();
    }
    // Room in the queue: hand over the writes that were waiting for it, in order.
    this.pumpHeld();
  }

  /** Hands the held writes to the native queue in order, until it is full. */
  private pumpHeld(): void {
    while (this.held.length > 0 && !this.closed) {
      const w = this.held[0];
      if (w.file !== null && !w.file.ready) return;  // a file still opening: the rest wait behind it
      const r = w.file === null ? this.loop.native.write(this.id, w.data, this.writeQueueLimit)
        : this.loop.native.sendFile(this.id, w.file.fd, w.file.offset, w.bytes, this.writeQueueLimit, w);
      if (r === 2) return;
      this.held.shift();
      this.heldBytes -= w.bytes;
      if (r === 1) {
        if (this.writes === NO_WRITES) this.writes = [];
        this.writes.push(w);
        this.queuedBytes += w.bytes;
      } else if (r === 0) {
        if (w.chunk >= 0) this.loop.releaseChunk(w.chunk);
        w.resolve();
      } else {
        // Only the writes not yet handed over fail here; queued ones report for themselves.
        const err = this.opError('write', new SystemError(r, w.file === null ? 'write' : 'sendfile'));
        this.heldBytes = 0;
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

  /** @internal */
  protected expireReads(): void {
    splicers.get(this)?.fail(this.opError('read', new ErrDeadlineExceeded()));
    if (this.read0 === null) return;
    // Its read completed before the deadline was seen (the Read event is further on in this
    // batch): it keeps its bytes; the reads queued behind it fail as they come up.
    if (this.nativeRead && this.loop.readAhead(this.id)) return;
    // A submitted read may still complete now (its bytes would otherwise be consumed and
    // lost); one started natively is stopped, so it never writes into a buffer whose read
    // has failed.
    this.expiring = true;
    this.flushOps();
    if (this.nativeRead) {
      this.nativeRead = false;
      this.submitted++;
      this.loop.submit(this, this.id, SubmitOp.ReadStop, 0, undefined);
      this.loop.flush();
    }
    this.expiring = false;
    if (this.read0 !== null) this.rejectReads(this.opError('read', new ErrDeadlineExceeded()));
  }

  /** @internal */
  protected expireWrites(): void {
    splicers.get(this)?.fail(this.opError('write', new ErrDeadlineExceeded()));
    this.flushOps();  // submitted writes learn whether they were written, queued or held
    if (this.writes.length === 0 && this.held.length === 0) return;
    if (this.writes.length > 0) this.loop.native.cancelWrites(this.id);
    this.rejectWrites(this.opError('write', new ErrDeadlineExceeded()));
  }

  /** close(): everything pending fails with ErrClosed. @internal */
  protected abort(): void {
    splicers.get(this)?.fail(this.opError('splice', new ErrClosed()));
    if (this.read0 !== null) this.rejectReads(this.opError('read', new ErrClosed()));
    if (this.sent.length > 0 || this.writes.length > 0 || this.held.length > 0) {
      this.rejectWrites(this.opError('write', new ErrClosed()));
    }
    this.connectWaiter = null;  // dial closes a connection it gives up on, and rejects itself
    this.dataHandler = null;    // closed by its owner: no onEnd
    this.endHandler = null;
  }

  private readFailure(): Error | null {
    if (this.closed) return this.opError('read', new ErrClosed());
    if (this.readErr !== null) return this.readErr;
    return this.deadlinePassed('read');
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
    const all = [...this.sent.splice(0), ...this.writes.splice(0), ...this.held.splice(0)];
    this.sentBytes = 0;
    this.queuedBytes = 0;
    this.heldBytes = 0;
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
}

