// Listener: accepts connections, like Go's net.Listener, as promises or async iteration.
import { lstatSync, unlinkSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { Addr } from './addr';
import type { Conn } from './conn';
import { EMFILE, ENFILE, ErrClosed, OpError, SystemError, describeValue } from './errors';
import { EventKind } from './native';
import { connInfo, readInfo, type ConnInfo } from './info';
import type { Limiter } from './limits';
import type { Loop, LoopHandle } from './loop';
import { readProxyHeader, type ProxyAcceptOptions } from './proxy-accept';
import { checkStreamOptions, type ConnStream, type ConnStreamOptions } from './stream';

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
  /** Called while {@link Listener.shutdown} waits, if the server has it (Node's `http.Server`). */
  closeIdleConnections?(): void;
}

// Accepted connections kept ready for accept() before the listener stops accepting and
// leaves the rest in the kernel's backlog: bounds memory under a connection flood.
const kAcceptQueue = 128;
// Back-off after EMFILE/ENFILE, as Go's http.Server does: 5 ms doubling up to 1 s.
const kBackoffMinMs = 5;
const kBackoffMaxMs = 1000;
// PROXY protocol: connections reading their header at once, at most. Each holds a descriptor
// and a timer until its header is complete (or its timeout); past this, accepting waits and
// the kernel's backlog holds the rest, so silent peers cannot take every descriptor.
const kMaxHeaderReads = 256;

/** Options for {@link Listener.serve}; `C` is the listener's connection class. */
export interface ServeOptions<C extends ListenerConn = Conn> {
  /**
   * Called with what a handler threw or rejected with, and its connection, which is closed
   * when this returns. By default the error is printed to stderr with the peer's address,
   * as Go's servers log a handler's panic.
   */
  onError?: (err: unknown, conn: C) => void;
}

/**
 * What {@link Listener.serve} runs for each connection. `signal` aborts when
 * {@link Listener.shutdown} begins: a handler that loops over requests can finish the one
 * it is on and return (Go's `BaseContext` cancelled), rather than be closed at the timeout.
 */
export type Handler<C extends ListenerConn = Conn> = (conn: C, signal: AbortSignal) => void | Promise<void>;

/** Options for {@link Listener.shutdown}. */
export interface ShutdownOptions {
  /** Milliseconds to let connections finish before closing the rest; default: no limit. */
  timeout?: number;
  /** Closes the connections still open when it aborts (as Go's context does for Shutdown). */
  signal?: AbortSignal;
}

/** What {@link Listener.shutdown} resolves with. */
export interface ShutdownResult {
  /** Connections that were being served when shutdown began and finished by themselves. */
  finished: number;
  /** Connections still open at the timeout (or abort) that shutdown closed. */
  forced: number;
}

// Shutdown polls a Node server's idle connections, as Go's Shutdown polls its idle ones:
// first after 1 ms, doubling to 500 ms (an in-flight response becomes idle when it ends).
const kPollMinMs = 1;
const kPollMaxMs = 500;

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
  // Makes the connection for an accepted socket: a C, or what mapConn turns into one.
  private readonly wrap: (id: number) => ListenerConn;
  // listenTLS: what each connection becomes once accepted (after its PROXY header, if any).
  private mapConn: ((conn: ListenerConn) => C) | null = null;
  private readonly address: Addr;
  private readonly file: { dev: number; ino: number } | undefined;  // Unix socket file to remove
  private closed = false;
  private granted = 0;  // connections the native side may still accept before it stops
  private backoffMs = 0;
  private backoffTimer: NodeJS.Timeout | null = null;
  private warned = false;
  private readonly queue: C[] = [];
  private readonly waiters: Waiter<C>[] = [];
  private limiter: Limiter | undefined;
  // What serve() and serveNode() are serving now, for shutdown(); null until they start.
  private served: Set<C> | null = null;
  private streams: Set<Duplex> | null = null;
  private nodeServer: NodeServer | null = null;
  private stopping: AbortController | null = null;
  private drained: (() => void) | null = null;  // shutdown() waits for the sets to empty
  private proxy: ProxyAcceptOptions | undefined;  // listen's proxyProtocol option
  private readonly headerReads = new Set<Conn>();  // accepted, reading their PROXY header

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

  /** @internal listen's `proxyProtocol` option: every connection reads its header before accept() sees it. */
  _useProxyProtocol(options: ProxyAcceptOptions): void {
    this.proxy = options;
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
    checkStreamOptions(options);  // once, before any connection is taken
    server.emit('listening');
    this.nodeServer = server;
    const streams = (this.streams ??= new Set());
    try {
      for await (const conn of this) {
        const stream = conn.stream(options);
        streams.add(stream);
        stream.once('close', () => {
          streams.delete(stream);
          this.checkDrained();
        });
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
   * errors such as EMFILE are retried with back-off). To stop with the handlers finished,
   * call {@link shutdown} and await what it returns.
   */
  async serve(handler: Handler<C>, options: ServeOptions<C> = {}): Promise<void> {
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
    const served = (this.served ??= new Set());
    const signal = (this.stopping ??= new AbortController()).signal;
    const done = (conn: C): void => {
      conn.close();
      served.delete(conn);
      this.checkDrained();
    };
    const failed = (conn: C) => (err: unknown): void => {
      try {
        onError(err, conn);
      } finally {
        done(conn);
      }
    };
    for await (const conn of this) {
      served.add(conn);
      // Through a promise, so a handler that throws at once is caught like one that rejects.
      Promise.resolve(conn).then((c) => handler(c, signal)).then(() => done(conn), failed(conn));
    }
  }

  /**
   * Stops gracefully, as Go's `Server.Shutdown`: closes the listener at once (no new
   * connections), aborts the `signal` that {@link serve}'s handlers got, and waits for the
   * connections being served to finish: each handler of {@link serve} to return, and each
   * connection of {@link serveNode} to close (Node's `http.Server` closes its idle
   * keep-alive connections; polled as they become idle). When `options.timeout` passes or
   * `options.signal` aborts first, the connections still open are closed (their pending
   * reads and writes reject with {@link ErrClosed}). Resolves with how many finished and how
   * many were closed. Connections taken with `accept()` or `for await` are the caller's:
   * shutdown does not wait for them.
   *
   * ```ts
   * const ln = listen('tcp', ':8080');
   * ln.serve(handler);
   * process.once('SIGTERM', async () => console.log(await ln.shutdown({ timeout: 10_000 })));
   * ```
   */
  async shutdown(options: ShutdownOptions = {}): Promise<ShutdownResult> {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`options: expected an object, got ${describeValue(options)}`);
    }
    const { timeout, signal } = options;
    if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 ||
        timeout > 0x7fffffff)) {
      throw new RangeError(`options.timeout: expected milliseconds, an integer from 0 to 2147483647, got ${describeValue(timeout)}`);
    }
    if (signal !== undefined && (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
      throw new TypeError(`options.signal: expected an AbortSignal, got ${describeValue(signal)}`);
    }
    this.close();
    this.stopping?.abort();
    const serving = this.servingCount();
    if (serving > 0) {
      await new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | null = null;
        let pollMs = kPollMinMs;
        const poll = (): void => {
          this.nodeServer?.closeIdleConnections?.();
          pollMs = Math.min(kPollMaxMs, pollMs * 2);
          pollTimer = setTimeout(poll, pollMs);
        };
        let pollTimer: NodeJS.Timeout | null = this.nodeServer?.closeIdleConnections === undefined ? null
          : setTimeout(poll, pollMs);
        const finish = (): void => {
          if (timer !== null) clearTimeout(timer);
          if (pollTimer !== null) clearTimeout(pollTimer);
          signal?.removeEventListener('abort', finish);
          this.drained = null;
          resolve();
        };
        this.drained = finish;
        if (timeout !== undefined) timer = setTimeout(finish, timeout);
        if (signal?.aborted) finish();
        else signal?.addEventListener('abort', finish, { once: true });
        this.checkDrained();
      });
    }
    const forced = this.servingCount();
    for (const conn of this.served ?? []) conn.close();
    for (const stream of this.streams ?? []) stream.destroy();
    return { finished: serving - forced, forced };
  }

  /** Connections serve() and serveNode() are serving now. */
  private servingCount(): number {
    return (this.served?.size ?? 0) + (this.streams?.size ?? 0);
  }

  /** Resolves a waiting shutdown() once nothing served is left open. */
  private checkDrained(): void {
    if (this.drained !== null && this.servingCount() === 0) this.drained();
  }

  /** @internal Enforces `listen()`'s `limits` on every connection accepted from now on. */
  _setLimits(limiter: Limiter | undefined): void {
    this.limiter = limiter;
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
    for (const conn of this.headerReads) conn.close();
    const err = new OpError('accept', this.network, new ErrClosed(), undefined, this.address);
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /**
   * @internal From now on this listener hands out `f(conn)` for each connection it accepts
   * (listenTLS wraps each in a TLSConn). Only before the first accept.
   */
  _mapConns<D extends ListenerConn>(f: (conn: C) => D): Listener<D> {
    const mapped = this as unknown as Listener<D>;
    mapped.mapConn = f as unknown as (conn: ListenerConn) => D;
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
      this.backoffMs = 0;
      this.granted--;
      if (this.limiter !== undefined && !this.limiter.admit(this.loop, a)) {
        if (this.granted === 0) this.startAccepting();
        return;
      }
      const conn = this.wrap(a);
      if (this.proxy !== undefined) this.acceptProxied(conn as Conn);  // a stream Conn before any mapping
      else this.deliver(conn);
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

  /** Hands an accepted connection to the oldest waiting accept(), or queues it. */
  private deliver(accepted: ListenerConn): void {
    const conn = this.mapConn === null ? accepted as C : this.mapConn(accepted);
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve(conn);
    else this.queue.push(conn);
  }

  /**
   * PROXY protocol: reads `conn`'s header (concurrently with other connections' headers),
   * then delivers it; a bad, missing or late header closes it (see readProxyHeader).
   */
  private acceptProxied(conn: Conn): void {
    this.headerReads.add(conn);
    void readProxyHeader(conn, this.proxy!, (code) => this.loop.countError(code)).then((ok) => {
      this.headerReads.delete(conn);
      if (!ok) {
        this.startAccepting();
      } else if (this.closed) {
        conn.close();
      } else {
        this.deliver(conn);
        this.startAccepting();
      }
    });
  }

  /** Lets the native side accept as many as the queue has room for; it stops by itself. */
  private startAccepting(): void {
    if (this.granted > 0 || this.closed || this.backoffTimer !== null) return;
    const room = Math.min(kAcceptQueue - this.queue.length, kMaxHeaderReads - this.headerReads.size);
    if (room <= 0) return;
    this.granted = room;
    this._acceptUpTo(room);
  }

  /**
   * Lets the source of connections deliver up to `room` more Accept events to `_onEvent`:
   * the kernel's accept queue here; a subclass may take them from elsewhere (lib/worker-listener.ts
   * takes them from an acceptor thread). @internal
   */
  protected _acceptUpTo(room: number): void {
    this.loop.native.setAccepting(this.id, room);
  }
}
