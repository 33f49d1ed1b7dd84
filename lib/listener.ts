// Listener: accepts connections, like Go's net.Listener, as promises or async iteration.
import { lstatSync, unlinkSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { Addr } from './addr';
import type { Conn } from './conn';
import { EMFILE, ENFILE, ErrClosed, OpError, SystemError, describeValue } from './errors';
import { EventKind } from './native';
import { connInfo, readInfo, type ConnInfo } from './info';
import type { Loop, LoopHandle } from './loop';
import type { ConnStreamOptions } from './stream';

/**
 * What a {@link Listener} hands out and {@link Listener.serve} / {@link Listener.serveNode}
 * use: a {@link Conn}, {@link UnixConn} or {@link TLSConn}.
 */
export interface ListenerConn {
  /** Closes the connection; calling it again does nothing. */
  close(): void;
  /** The peer's address. */
  remoteAddr(): Addr;
  /** The local address. */
  localAddr(): Addr;
  /** The connection as a Node stream, for {@link Listener.serveNode}. */
  stream(options?: ConnStreamOptions): Duplex;
}

/** What {@link Listener.serveNode} needs of a Node server: `http.Server`, `tls.Server`, … */
export interface NodeServer {
  /**
   * Gets `'listening'` once, then `'connection'` with each connection's `stream()`: a
   * {@link ConnStream}, or for a {@link listenTLS} listener its `tls.TLSSocket`.
   */
  emit(event: string | symbol, ...args: unknown[]): boolean;
  /** Called when the listener closes. */
  close(callback?: (err?: Error) => void): unknown;
}

// Accepted connections kept ready for accept() before the listener stops accepting and
// leaves the rest in the kernel's backlog: bounds memory under a connection flood.
const kAcceptQueue = 128;
// Back-off after EMFILE/ENFILE, as Go's http.Server does: 5 ms doubling up to 1 s.
const kBackoffMinMs = 5;
const kBackoffMaxMs = 1000;

/** Options for {@link Listener.serve}; `C` is the listener's connection class. */
export interface ServeOptions<C extends ListenerConn = Conn> {
  /**
   * Called with what a handler threw or rejected with, and its connection, which is closed
   * when this returns. By default the error is printed to stderr with the peer's address,
   * as Go's servers log a handler's panic.
   */
  onError?: (err: unknown, conn: C) => void;
}

/** What {@link Listener.serve} runs for each connection. */
export type Handler<C extends ListenerConn = Conn> = (conn: C) => void | Promise<void>;

function removeSocketFile(path: string, file: { dev: number; ino: number }): void {
  try {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st !== undefined && st.isSocket() && st.dev === file.dev && st.ino === file.ino) unlinkSync(path);
  } catch {
    // Gone already, or not ours to remove: nothing is lost either way.
  }
}

function printHandlerError(err: unknown, conn: ListenerConn): void {
  let peer = 'a connection';
  try {
    peer = String(conn.remoteAddr());  // cached at accept: there even after a reset
  } catch {
    // Never known (an unnamed peer): the error says what happened.
  }
  console.error(`muxnet: handler for ${peer} failed:`, err);
}

interface Waiter<C> {
  resolve: (conn: C) => void;
  reject: (err: Error) => void;
}

/**
 * A TCP or Unix listener, like Go's `net.Listener`. Get one from `listen`. `C` is the class
 * of the connections it accepts: {@link UnixConn} for a Unix listener, {@link TLSConn} for
 * {@link listenTLS}, else {@link Conn}.
 */
export class Listener<C extends ListenerConn = Conn> implements AsyncIterable<C>, LoopHandle {
  private readonly loop: Loop;
  private readonly id: number;
  private readonly network: string;
  private wrap: (id: number) => C;
  private readonly address: Addr;
  private readonly file: { dev: number; ino: number } | undefined;  // Unix socket file to remove
  private closed = false;
  private granted = 0;  // connections the native side may still accept before it stops
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private warned = false;
  private readonly queue: C[] = [];
  private readonly waiters: Waiter<C>[] = [];

  /** @internal `wrap` makes the connection object for an accepted socket's id. */
  constructor(loop: Loop, id: number, network: string, address: Addr, wrap: (id: number) => C,
              file?: { dev: number; ino: number }) {
    this.file = file;
    this.loop = loop;
    this.id = id;
    this.network = network;
    this.address = address;
    this.wrap = wrap;
    loop.handles[id] = this;
  }

  /** The multiplexing backend this listener runs on, e.g. 'epoll'. */
  get backend(): string {
    return this.loop.backend;
  }

  /** The address the listener is bound to (with the port the kernel chose for port 0). */
  addr(): Addr {
    return this.address;
  }

  /**
   * Waits for the next connection. Rejects with an {@link OpError}: {@link ErrClosed} after
   * `close()`, or a temporary error such as EMFILE when the process is out of descriptors
   * (the connection was shed; accepting resumes after a back-off).
   */
  accept(): Promise<C> {
    if (this.closed) return Promise.reject(new OpError('accept', this.network, new ErrClosed(), undefined, this.address));
    const conn = this.queue.shift();
    if (conn !== undefined) {
      this.startAccepting();
      return Promise.resolve(conn);
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.startAccepting();
    });
  }

  /**
   * Yields accepted connections until the listener is closed. Temporary errors (EMFILE and
   * the like) do not end the iteration: they are reported once as a process warning.
   */
  [Symbol.asyncIterator](): AsyncIterator<C> {
    const next = (): Promise<IteratorResult<C>> => this.accept().then(
      (value) => ({ done: false, value }),
      (err: OpError) => {
        if (err instanceof ErrClosed) return { done: true, value: undefined };
        if (err.temporary()) {
          if (!this.warned) {
            this.warned = true;
            process.emitWarning(`muxnet: accept on ${this.address}: ${err.message}; retrying with back-off`);
          }
          return next();
        }
        throw err;
      });
    return {
      next,
      return: () => Promise.resolve({ done: true, value: undefined }),
    };
  }

  /**
   * Serves a Node server over this listener: each connection goes to `server` as its
   * `'connection'` event, as a {@link ConnStream} (Node's `http.Server`, `https.Server`,
   * `tls.Server` and `http2` servers all take it; over a {@link listenTLS} listener an
   * `http.Server` gets TLS sockets: HTTPS). `server` gets `'listening'` first, which
   * arms what Node's servers arm when they listen themselves (http's `headersTimeout` and
   * `requestTimeout` checks). Resolves when the listener is closed, after calling
   * `server.close()` (which stops those checks; open connections stay until they end).
   *
   * ```ts
   * const server = http.createServer((req, res) => res.end('hello'));
   * await listen('tcp', ':8080').serveNode(server);
   * ```
   */
  async serveNode(server: NodeServer, options: ConnStreamOptions = {}): Promise<void> {
    if (server === null || typeof server !== 'object' || typeof server.emit !== 'function' ||
        typeof server.close !== 'function') {
      throw new TypeError(`server: expected a Node server (http.Server, tls.Server, ...), got ${describeValue(server)}`);
    }
    server.emit('listening');
    try {
      for await (const conn of this) {
        const stream = conn.stream(options);
        try {
          server.emit('connection', stream);
        } catch (err) {
          // A 'connection' listener threw: this connection is lost, the listener serves on.
          stream.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      }
    } finally {
      server.close(() => {});  // a server that was never listening calls back with an error: fine
    }
  }

  /**
   * Accepts connections until the listener is closed and runs `handler` for each one,
   * concurrently. The handler owns its connection: it is closed when the handler returns
   * or its promise settles. A handler that throws or rejects costs only its own
   * connection: the error goes to `options.onError` and the server keeps serving.
   * Resolves when the listener is closed; rejects if accepting fails for good (temporary
   * errors such as EMFILE are retried with back-off).
   */
  async serve(handler: (conn: C) => void | Promise<void>, options: ServeOptions<C> = {}): Promise<void> {
    if (typeof handler !== 'function') {
      throw new TypeError(`handler: expected a function (conn) => void | Promise<void>, got ${describeValue(handler)}`);
    }
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`options: expected an object, got ${describeValue(options)}`);
    }
    const onError = options.onError ?? printHandlerError;
    if (typeof onError !== 'function') {
      throw new TypeError(`options.onError: expected a function, got ${describeValue(onError)}`);
    }
    const failed = (conn: C) => (err: unknown): void => {
      try {
        onError(err, conn);
      } finally {
        conn.close();
      }
    };
    for await (const conn of this) {
      // Through a promise, so a handler that throws at once is caught like one that rejects.
      Promise.resolve(conn).then(handler).then(() => conn.close(), failed(conn));
    }
  }

  /**
   * Stops listening. Pending `accept()` calls reject with {@link ErrClosed}; connections
   * accepted but not yet taken are closed; a Unix listener's socket file is removed (unless
   * another socket has taken its path since). Calling it again does nothing.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.backoffTimer !== null) clearTimeout(this.backoffTimer);
    this.loop.handles[this.id] = undefined;
    this.loop.native.close(this.id);
    if (this.file !== undefined) removeSocketFile(this.address.path, this.file);
    for (const conn of this.queue.splice(0)) conn.close();
    const err = new OpError('accept', this.network, new ErrClosed(), undefined, this.address);
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /**
   * @internal From now on this listener hands out `f(conn)` for each connection it accepts
   * (listenTLS wraps each in a TLSConn). Only before the first accept.
   */
  _mapConns<D extends ListenerConn>(f: (conn: C) => D): Listener<D> {
    const wrap = this.wrap;
    const mapped = this as unknown as Listener<D>;
    mapped.wrap = (id) => f(wrap(id));
    return mapped;
  }

  /** @internal This handle's id on `loop`, or -1 (closed, or on another loop). */
  _handleOn(loop: Loop): number {
    return this.closed || loop !== this.loop ? -1 : this.id;
  }

  /** @internal */
  get _kind(): 'listener' {
    return 'listener';
  }

  /** @internal */
  _describe(): ConnInfo | undefined {
    const v = readInfo(this.loop.native, this.id);
    if (typeof v === 'number') return undefined;
    return connInfo(v, { kind: 'listener', network: this.network, local: String(this.address), remote: '', backend: this.loop.backend },
      'LISTEN');
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number): void {
    if (kind === EventKind.Accept) {
      const conn = this.wrap(a);
      this.backoffMs = 0;
      this.granted--;
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter.resolve(conn);
      else this.queue.push(conn);
      if (this.granted === 0) this.startAccepting();
    } else if (kind === EventKind.AcceptError) {
      // The native side stopped accepting; resume after a back-off so a full descriptor
      // table does not turn into a busy loop.
      this.granted = 0;
      const err = new OpError('accept', this.network, new SystemError(a, 'accept'), undefined, this.address);
      this.loop.countError(err.code);
      if (a === EMFILE || a === ENFILE || err.temporary()) {
        this.backoffMs = Math.min(kBackoffMaxMs, Math.max(kBackoffMinMs, this.backoffMs * 2));
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = null;
          if (!this.closed && this.waiters.length > 0) this.startAccepting();
        }, this.backoffMs);
      }
      const waiter = this.waiters.shift();
      if (waiter !== undefined) waiter.reject(err);
    }
  }

  /** Lets the native side accept as many as the queue has room for; it stops by itself. */
  private startAccepting(): void {
    if (this.granted > 0 || this.closed || this.backoffTimer !== null) return;
    const room = kAcceptQueue - this.queue.length;
    if (room <= 0) return;
    this.granted = room;
    this.loop.native.setAccepting(this.id, room);
  }
}
