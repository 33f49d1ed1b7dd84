// TLS: Go's crypto/tls (Listen, Dial, Server, Client, Conn) with Node's tls (OpenSSL) over muxnet connections.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import type { Addr } from './addr';
import { splitHostPort } from './addr';
import { Conn } from './conn';
import { toDeadline } from './descriptor';
import { EPIPE, ErrClosed, ErrDeadlineExceeded, OpError, SystemError, describeValue } from './errors';
import type { Listener, ListenerConn } from './listener';
import { AbortError, dial, listen, type DialOptions, type ListenOptions, type Network } from './net';
import type { ConnStreamOptions } from './stream';

/** Node's tls.Server default: a peer gets this long (ms) to finish its handshake. */
const kDefaultHandshakeTimeout = 120_000;
const RESOLVED: Promise<void> = Promise.resolve();
// How long close() lets close_notify take to reach the kernel before it closes anyway
// (Go gives it 5 s; the write is one small record, so only a peer that stopped reading waits).
const kCloseNotifyMs = 1000;
const noop = (): void => {};

// The keys of ListenOptions and DialOptions: they go to listen/dial, not to OpenSSL.
const kListenKeys = ['backlog', 'reusePort', 'reuseAddr', 'writeQueueLimit', 'backend', 'trigger', 'mode'];
const kDialKeys = ['timeout', 'signal', 'writeQueueLimit', 'backend', 'trigger', 'mode'];

/** Options of a TLS server ({@link listenTLS}, {@link tlsServer}): Node's tls server options. */
export interface TLSServerOptions extends tls.SecureContextOptions {
  /** A context made with `tls.createSecureContext`; otherwise one is made from these options. */
  secureContext?: tls.SecureContext;
  /** Picks the context for the name the client asks for (SNI); called per handshake. */
  SNICallback?: (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void) => void;
  /** Protocols offered for ALPN, most preferred first, e.g. `['h2', 'http/1.1']`. */
  ALPNProtocols?: readonly string[] | NodeJS.ArrayBufferView;
  /** Ask the client for a certificate (mTLS). Default false. */
  requestCert?: boolean;
  /**
   * With `requestCert`: refuse a client whose certificate is missing or not signed by `ca`
   * (the handshake fails). Default true; false lets it in with `tlsState().authorized` false.
   */
  rejectUnauthorized?: boolean;
  /**
   * Milliseconds a peer gets to finish the handshake from accept; then the handshake fails
   * with code 'ERR_TLS_HANDSHAKE_TIMEOUT' and the connection is closed. Default 120000
   * (Node's); 0 turns it off.
   */
  handshakeTimeout?: number;
}

/** Options of {@link listenTLS}: {@link ListenOptions} and {@link TLSServerOptions}. */
export interface ListenTLSOptions extends ListenOptions, TLSServerOptions {}

/** Options of a TLS client ({@link dialTLS}, {@link tlsClient}): Node's `tls.connect` options. */
export interface TLSClientOptions extends tls.SecureContextOptions {
  /** A context made with `tls.createSecureContext`; otherwise one is made from these options. */
  secureContext?: tls.SecureContext;
  /**
   * The server's name: sent for SNI and checked against its certificate. dialTLS defaults
   * it to the host of the address when that is a name; with an IP address no SNI is sent and
   * the certificate is checked against the IP.
   */
  servername?: string;
  /** Protocols offered for ALPN, most preferred first. */
  ALPNProtocols?: readonly string[] | NodeJS.ArrayBufferView;
  /** Refuse a server whose certificate does not verify against `ca` (or the system's CAs). Default true. */
  rejectUnauthorized?: boolean;
  /** A session from {@link TLSConn.session} of an earlier connection, to resume it. */
  session?: Buffer;
  /** Replaces the check of the certificate's names (Node's `tls.checkServerIdentity`). */
  checkServerIdentity?: (hostname: string, cert: tls.PeerCertificate) => Error | undefined;
}

/** Options of {@link dialTLS}: {@link DialOptions} (its `timeout` covers the handshake) and {@link TLSClientOptions}. */
export interface DialTLSOptions extends DialOptions, TLSClientOptions {}

/** What was agreed in the handshake, like Go's `tls.ConnectionState` (with Node's names). */
export interface TLSState {
  /** True once the handshake has completed; the other fields are empty before. */
  handshakeComplete: boolean;
  /** 'TLSv1.3', 'TLSv1.2', …, or null. */
  protocol: string | null;
  /** The cipher suite, as `tlsSocket.getCipher()`. */
  cipher: tls.CipherNameAndProtocol | null;
  /** The protocol agreed by ALPN, or false. */
  alpnProtocol: string | false;
  /** The name the client asked for (SNI), or null. */
  servername: string | null;
  /** The peer's certificate (with `subject`, `issuer`, `valid_to`, …), or null if it sent none. */
  peerCertificate: tls.PeerCertificate | null;
  /** The peer's certificate verified (a client always verifies; a server with `requestCert`). */
  authorized: boolean;
  /** Why it did not verify, e.g. 'CERT_HAS_EXPIRED', or null. */
  authorizationError: string | null;
  /** The session was resumed (a session ticket or id), not negotiated afresh. */
  resumed: boolean;
}

const kNotYet: TLSState = Object.freeze({
  handshakeComplete: false, protocol: null, cipher: null, alpnProtocol: false, servername: null,
  peerCertificate: null, authorized: false, authorizationError: null, resumed: false,
});

/** The parts of a server-side TLSSocket that Node's own tls.Server uses and does not type. */
interface ServerSocketInternals {
  ssl: { verifyError(): (Error & { code?: string }) | null } | null;
  _releaseControl(): boolean;
  authorized: boolean;
  authorizationError: string | null;
}

/** The verified and prepared options of a TLS server: the context is made once per listener. @internal */
interface ServerConfig {
  socket: tls.TLSSocketOptions;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  handshakeTimeout: number;
}

/** An error with Node's shape for a TLS failure of our own making. */
function tlsError(message: string, code: string): Error {
  const err = new Error(message);
  (err as { code?: string }).code = code;
  return err;
}

function hangUp(): Error {
  return tlsError('socket hang up: the connection ended before the TLS handshake completed', 'ECONNRESET');
}

function checkObject<T extends object>(options: unknown, name = 'options'): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${name}: expected an object, got ${describeValue(options)}`);
  }
  return options as T;
}

function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`options.${name}: expected a boolean, got ${describeValue(value)}`);
  }
  return value;
}

function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(`options.${name}: expected a function, got ${describeValue(value)}`);
  }
}

function checkALPN(value: unknown): void {
  if (value === undefined || ArrayBuffer.isView(value)) return;
  if (!Array.isArray(value) || !value.every((p) => typeof p === 'string' && p.length > 0 && p.length < 256)) {
    throw new TypeError(`options.ALPNProtocols: expected an array of protocol names (strings of 1 to 255 bytes), got ${describeValue(value)}`);
  }
}

function without(options: object, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const k of keys) delete out[k];
  return out;
}

/** The session id context Node's tls.Server defaults to: resumption needs one with client certificates. */
function defaultSessionIdContext(): string {
  return createHash('sha1').update(process.argv.join(' ')).digest('hex').slice(0, 32);
}

/** Validates server options and makes the secure context (once: it holds the session ticket keys). */
function serverConfig(options: unknown): ServerConfig {
  const opts = checkObject<ListenTLSOptions>(options);
  if (options === undefined) throw new TypeError('options: expected an object with key and cert (or pfx, secureContext, SNICallback), got undefined');
  const requestCert = checkBoolean('requestCert', opts.requestCert) ?? false;
  const rejectUnauthorized = checkBoolean('rejectUnauthorized', opts.rejectUnauthorized) ?? true;
  checkFunction('SNICallback', opts.SNICallback);
  checkALPN(opts.ALPNProtocols);
  const timeout = opts.handshakeTimeout ?? kDefaultHandshakeTimeout;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0 || timeout > 0x7fffffff) {
    throw new RangeError(`options.handshakeTimeout: expected milliseconds, an integer from 0 (none) to 2147483647, got ${describeValue(timeout)}`);
  }
  if (opts.secureContext !== undefined && !(opts.secureContext instanceof Object && 'context' in opts.secureContext)) {
    throw new TypeError(`options.secureContext: expected a tls.SecureContext (tls.createSecureContext), got ${describeValue(opts.secureContext)}`);
  }
  if (opts.secureContext === undefined && opts.pfx === undefined && opts.SNICallback === undefined &&
      (opts.key === undefined || opts.cert === undefined)) {
    throw new TypeError('options: a TLS server needs a certificate: expected key and cert, pfx, secureContext or SNICallback');
  }
  const contextOptions = without(opts, [...kListenKeys, 'secureContext', 'SNICallback', 'ALPNProtocols', 'requestCert',
    'rejectUnauthorized', 'handshakeTimeout']) as tls.SecureContextOptions;
  contextOptions.sessionIdContext ??= defaultSessionIdContext();
  // OpenSSL's own errors (a key that does not match, a bad PEM) are thrown here, as tls.createServer throws them.
  const secureContext = opts.secureContext ?? tls.createSecureContext(contextOptions);
  const socket: tls.TLSSocketOptions = { isServer: true, secureContext, requestCert, rejectUnauthorized };
  if (opts.ALPNProtocols !== undefined) socket.ALPNProtocols = opts.ALPNProtocols;
  if (opts.SNICallback !== undefined) socket.SNICallback = opts.SNICallback;
  return { socket, requestCert, rejectUnauthorized, handshakeTimeout: timeout };
}

/** Validates client options; returns what tls.connect takes (without the socket). */
function clientConfig(options: unknown): tls.ConnectionOptions {
  const opts = checkObject<DialTLSOptions>(options);
  checkBoolean('rejectUnauthorized', opts.rejectUnauthorized);
  checkFunction('checkServerIdentity', opts.checkServerIdentity);
  checkALPN(opts.ALPNProtocols);
  if (opts.servername !== undefined && (typeof opts.servername !== 'string' || opts.servername === '' || isIP(opts.servername) !== 0)) {
    throw new TypeError(`options.servername: expected a host name (not an IP address), got ${describeValue(opts.servername)}`);
  }
  if (opts.session !== undefined && !Buffer.isBuffer(opts.session)) {
    throw new TypeError(`options.session: expected a Buffer from conn.session(), got ${describeValue(opts.session)}`);
  }
  return without(opts, kDialKeys) as tls.ConnectionOptions;
}

function checkConn(conn: unknown): Conn {
  if (!(conn instanceof Conn)) throw new TypeError(`conn: expected a muxnet Conn (from dial or accept), got ${describeValue(conn)}`);
  return conn;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * A TLS connection over a muxnet {@link Conn}, like Go's `tls.Conn`: Node's tls (OpenSSL)
 * does the protocol. The handshake starts at once and {@link read}, {@link write} and
 * {@link handshake} wait for it (they reject with its error if it fails: the connection is
 * then closed). Deadlines cover the handshake. Get one from {@link listenTLS},
 * {@link dialTLS}, {@link tlsServer} or {@link tlsClient}.
 */
export class TLSConn implements AsyncIterable<Buffer>, ListenerConn {
  /** The network of the connection underneath: 'tcp', 'tcp4', 'tcp6' or 'unix'. */
  readonly network: string;
  private readonly conn: Conn;
  private readonly socket: tls.TLSSocket;
  private closed = false;
  private secure = false;
  private streamed = false;
  private writeShut = false;
  private ended = false;  // the peer's end of stream was read
  private failure: Error | null = null;     // the socket failed after the handshake (Node's error)
  private writeFailure: OpError | null = null;  // a write deadline passed: writes fail from then on, as in Go
  private handshakeErr: OpError | null = null;
  private readonly handshaken: Promise<void>;
  private settleHandshake: (err?: Error) => void = noop;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private state: TLSState = kNotYet;
  private lastSession: Buffer | undefined;
  private leftover: Buffer | null = null;  // what a read() had no room for
  private readsPending = 0;
  private readTail: Promise<unknown> = RESOLVED;
  private readWaiter: Waiter | null = null;
  private readonly writes = new Set<Waiter>();  // writes whose bytes are not in the kernel yet
  // Epoch ms (0: none) and the timer that fails what waits then.
  private readonly deadlines = {
    read: { at: 0, timer: null as NodeJS.Timeout | null },
    write: { at: 0, timer: null as NodeJS.Timeout | null },
  };
  private readonly wake = (): void => this.wakeReader(null);

  /** @internal Use listenTLS, dialTLS, tlsServer or tlsClient. */
  constructor(conn: Conn, socket: tls.TLSSocket, server: ServerConfig | null) {
    this.conn = conn;
    this.network = conn.network;
    this.socket = socket;
    this.handshaken = new Promise<void>((resolve, reject) => {
      this.settleHandshake = (err) => (err === undefined ? resolve() : reject(err));
    });
    this.handshaken.catch(noop);  // reported by handshake(), read() and write()
    const onError = (err: Error): void => this.onSocketError(err);
    socket.on('error', onError);
    // A server socket reports what fails before it is released (below) as '_tlsError' only.
    if (server !== null) socket.on('_tlsError', onError);
    socket.on('end', () => {
      this.ended = true;
      // The peer gave up mid-handshake (e.g. it refused our certificate): nothing more will come.
      if (!this.secure) this.failHandshake(hangUp());
      this.wakeReader(null);
    });
    socket.on('close', () => this.onSocketClose());
    if (server === null) {
      socket.on('secureConnect', () => this.onSecure());
      // TLS 1.3 sends tickets after the handshake: keep the last for session().
      socket.on('session', (session: Buffer) => { this.lastSession = session; });
      return;
    }
    socket.on('secure', () => this.onServerSecure(server));
    if (server.handshakeTimeout > 0) {
      this.handshakeTimer = setTimeout(() => {
        this.handshakeTimer = null;
        this.failHandshake(tlsError(`TLS handshake timeout (${server.handshakeTimeout} ms)`, 'ERR_TLS_HANDSHAKE_TIMEOUT'));
      }, server.handshakeTimeout);
      this.handshakeTimer.unref();  // the connection keeps the process alive, not its timer
    }
  }

  /** The multiplexing backend of the connection underneath, e.g. 'epoll'. */
  get backend(): string {
    return this.conn.backend;
  }

  /**
   * Completes the handshake, or waits for it: resolves once it is done; rejects with an
   * {@link OpError} (op 'handshake') whose `code` is Node's (e.g. 'CERT_HAS_EXPIRED',
   * 'ERR_TLS_HANDSHAKE_TIMEOUT', 'ETIMEDOUT' when a deadline passed), after which the
   * connection is closed.
   */
  handshake(): Promise<void> {
    if (this.secure) return this.closed ? Promise.reject(this.opError('handshake', new ErrClosed())) : RESOLVED;
    if (this.handshakeErr !== null) return Promise.reject(this.handshakeErr);
    if (this.closed) return Promise.reject(this.opError('handshake', new ErrClosed()));
    if (this.deadlinePassed()) this.failHandshake(new ErrDeadlineExceeded());
    return this.handshaken;
  }

  /**
   * Reads decrypted bytes into `buf`: resolves with how many (at least 1), or null at end of
   * stream (the peer's close_notify or FIN). Rejects with an {@link OpError}:
   * {@link ErrClosed} after `close()`, {@link ErrDeadlineExceeded} after the read deadline,
   * the handshake's error, or the connection's (e.g. ECONNRESET). Concurrent reads complete
   * in the order they were made.
   */
  read(buf: Uint8Array): Promise<number | null> {
    if (!(buf instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`buf: expected a Uint8Array or Buffer, got ${describeValue(buf)}`));
    }
    return this.queueRead(() => this.readSome(buf) as Promise<number | null>);
  }

  /** Iterates over the decrypted stream: each chunk is a Buffer of its own, to keep. */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return {
      next: () => this.queueRead(() => this.readSome(null) as Promise<Buffer | null>)
        .then((chunk): IteratorResult<Buffer> => (chunk === null ? { done: true, value: undefined } : { done: false, value: chunk })),
      return: () => Promise.resolve({ done: true, value: undefined }),
    };
  }

  /**
   * Writes all of `data` (a string as UTF-8) through TLS. Resolves when its records are in
   * the kernel (Go: all or an error), so a `close()` after it loses nothing; before the
   * handshake, the bytes wait for it. Writes go out in order; not awaiting them pipelines.
   * Rejects with an {@link OpError}: {@link ErrClosed}, EPIPE after `closeWrite()`,
   * {@link ErrDeadlineExceeded} after the write deadline (writes fail from then on, as in
   * Go), the handshake's or the connection's error. Do not modify `data` until it settles.
   */
  write(data: Uint8Array | string): Promise<void> {
    if (typeof data === 'string') data = Buffer.from(data, 'utf8');
    else if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError(`data: expected a Uint8Array, Buffer or string, got ${describeValue(data)}`));
    }
    const fail = this.writeFails();
    if (fail !== null) return Promise.reject(fail);
    if (data.length === 0) return RESOLVED;
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      this.writes.add(w);
      // The socket keeps writes made before the handshake until it is done; its callback
      // comes when the encrypted bytes are in the kernel (the Conn's write resolved).
      this.socket.write(data, (err?: Error | null) => {
        if (!this.writes.delete(w)) return;  // failed already (deadline, close)
        if (err === undefined || err === null) resolve();
        else reject(this.handshakeErr ?? this.opError('write', this.failure ?? err));
      });
    });
  }

  /**
   * Ends the sending side: close_notify, then the connection's FIN, after what was written.
   * The peer reads end of stream; this side can still read.
   */
  closeWrite(): void {
    if (this.closed) throw this.opError('close', new ErrClosed());
    if (this.writeShut) return;
    this.writeShut = true;
    this.socket.end();
  }

  /**
   * Closes the connection. Pending reads, writes and the handshake reject with
   * {@link ErrClosed}. After a completed handshake it sends close_notify first, as Go's
   * Close does, so the peer reads a clean end of stream (the descriptor is closed once that
   * is written, or after 1 s). Calling it again does nothing.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimers();
    if (!this.secure && this.handshakeErr === null) {
      this.handshakeErr = this.opError('handshake', new ErrClosed());
      this.settleHandshake(this.handshakeErr);
    }
    this.wakeReader(this.opError('read', new ErrClosed()));
    this.rejectWrites(this.opError('write', new ErrClosed()));
    const socket = this.socket;
    if (this.secure && !this.writeShut && !socket.destroyed && this.failure === null) {
      this.writeShut = true;
      const timer = setTimeout(() => socket.destroy(), kCloseNotifyMs);
      timer.unref();
      socket.end(() => {
        clearTimeout(timer);
        socket.destroy();
      });
      return;  // the socket's 'close' closes the Conn
    }
    socket.destroy();
    this.conn.close();
  }

  /** Sets both deadlines: a Date or epoch milliseconds; 0 clears. They cover the handshake too. */
  setDeadline(deadline: Date | number): void {
    const ms = toDeadline(deadline, 'deadline');
    this.setReadDeadline(ms);
    this.setWriteDeadline(ms);
  }

  /**
   * Reads pending now or started later fail with {@link ErrDeadlineExceeded} once `deadline`
   * passes (as does the handshake, if not done by then). A later deadline extends it; 0 clears it.
   */
  setReadDeadline(deadline: Date | number): void {
    this.armDeadline('read', deadline);
  }

  /** Like {@link setReadDeadline}, for writes. */
  setWriteDeadline(deadline: Date | number): void {
    this.armDeadline('write', deadline);
  }

  /**
   * What the handshake agreed: protocol, cipher, ALPN protocol, SNI name, the peer's
   * certificate and whether it verified, whether the session was resumed. Before the
   * handshake completes, `handshakeComplete` is false and the rest empty. Still readable after close.
   */
  tlsState(): TLSState {
    return this.state;
  }

  /**
   * The last session the server sent (a TLS 1.3 ticket comes after the handshake, once the
   * client has read something), to pass as `session` to a later dialTLS or tlsClient; or
   * undefined. Client side only.
   */
  session(): Buffer | undefined {
    return this.lastSession;
  }

  /**
   * The `tls.TLSSocket` itself, for anything that takes a Node socket: give a TLS listener
   * to an `http.Server` with {@link Listener.serveNode} to serve HTTPS. The stream does the
   * reading from then on: make no reads of your own. Its options were fixed when the
   * connection was made: pass none.
   */
  stream(options?: ConnStreamOptions): tls.TLSSocket {
    if (options !== undefined && (options === null || typeof options !== 'object' || Object.keys(options).length > 0)) {
      throw new TypeError(`options: a TLS connection's stream takes no options, got ${describeValue(options)}`);
    }
    if (this.readsPending > 0 || this.leftover !== null) throw new TypeError('stream: the connection already has a reader (pending read() calls)');
    this.streamed = true;
    return this.socket;
  }

  /** The local address. */
  localAddr(): Addr {
    return this.conn.localAddr();
  }

  /** The remote address (still there after close). */
  remoteAddr(): Addr {
    return this.conn.remoteAddr();
  }

  /** TCP_NODELAY on the connection underneath (on by default). */
  setNoDelay(on = true): void {
    this.conn.setNoDelay(on);
  }

  /** SO_KEEPALIVE on the connection underneath; see {@link Conn.setKeepAlive}. */
  setKeepAlive(on: boolean, options?: { idle?: number; interval?: number; count?: number }): void {
    this.conn.setKeepAlive(on, options);
  }

  private queueRead<T>(read: () => Promise<T>): Promise<T> {
    const p = this.readsPending === 0 ? read() : this.readTail.then(read);
    this.readsPending++;
    const done = (): void => { this.readsPending--; };
    this.readTail = p.then(done, done);
    return p;
  }

  /** One read: into `buf` (a count), or a whole chunk (buf null); null at end of stream. */
  private async readSome(buf: Uint8Array | null): Promise<number | Buffer | null> {
    if (!this.secure) await this.handshake();
    // Bounded: each wait ends with data, end of stream, an error, close or the deadline.
    for (;;) {
      const fail = this.readFails();
      if (fail !== null) throw fail;
      const chunk = this.leftover ?? (this.socket.read() as Buffer | null);
      this.leftover = null;
      if (chunk !== null) {
        if (buf === null) return chunk;
        const n = Math.min(buf.length, chunk.length);
        chunk.copy(buf, 0, 0, n);
        if (n < chunk.length) this.leftover = chunk.subarray(n);
        return n;
      }
      if (this.failure !== null) throw this.opError('read', this.failure);
      if (this.ended || this.socket.destroyed) return null;
      await new Promise<void>((resolve, reject) => {
        this.readWaiter = { resolve, reject };
        // Only while waiting: a 'readable' listener would stop a stream() consumer's 'data'.
        this.socket.once('readable', this.wake);
      });
    }
  }

  private wakeReader(err: Error | null): void {
    const w = this.readWaiter;
    if (w === null) return;
    this.readWaiter = null;
    this.socket.removeListener('readable', this.wake);
    if (err === null) w.resolve();
    else w.reject(err);
  }

  private rejectWrites(err: Error): void {
    const all = [...this.writes];
    this.writes.clear();
    for (const w of all) w.reject(err);
  }

  private readFails(): Error | null {
    if (this.closed) return this.opError('read', new ErrClosed());
    if (this.streamed) return new TypeError('read: this connection reads through its stream()');
    if (this.deadlines.read.at !== 0 && Date.now() >= this.deadlines.read.at) return this.opError('read', new ErrDeadlineExceeded());
    return null;
  }

  private writeFails(): Error | null {
    if (this.closed) return this.opError('write', new ErrClosed());
    if (this.writeShut) return this.opError('write', new SystemError(EPIPE, 'write'));
    if (this.handshakeErr !== null) return this.handshakeErr;
    if (this.writeFailure !== null) return this.writeFailure;
    if (this.failure !== null) return this.opError('write', this.failure);
    if (this.socket.destroyed) return this.opError('write', new SystemError(EPIPE, 'write'));
    if (this.deadlines.write.at !== 0 && Date.now() >= this.deadlines.write.at) {
      this.writeFailure = this.opError('write', new ErrDeadlineExceeded());
      return this.writeFailure;
    }
    return null;
  }

  /** The read or the write deadline has passed. */
  private deadlinePassed(): boolean {
    const now = Date.now();
    return [this.deadlines.read.at, this.deadlines.write.at].some((at) => at !== 0 && now >= at);
  }

  /** Sets the read or write deadline and its timer (JS timers: the Conn underneath is the TLS socket's). */
  private armDeadline(op: 'read' | 'write', deadline: Date | number): void {
    const ms = toDeadline(deadline, 'deadline');
    this.checkOpen();
    const d = this.deadlines[op];
    d.at = ms;
    if (d.timer !== null) clearTimeout(d.timer);
    d.timer = null;
    if (ms === 0) return;
    const fire = (): void => {
      d.timer = null;
      this.onDeadline(op);
    };
    const delay = ms - Date.now();
    if (delay <= 0) {
      fire();
      return;
    }
    d.timer = setTimeout(fire, delay);
    d.timer.unref();
  }

  /**
   * A deadline passed: a handshake still going fails with it (as Go's does under the conn's
   * deadlines), then the reads or writes waiting now.
   */
  private onDeadline(op: 'read' | 'write'): void {
    if (!this.secure) this.failHandshake(new ErrDeadlineExceeded());
    const err = this.opError(op, new ErrDeadlineExceeded());
    if (op === 'read') {
      this.wakeReader(err);
    } else if (this.writes.size > 0) {
      this.writeFailure = err;
      this.rejectWrites(err);
    }
  }

  private clearTimers(): void {
    for (const t of [this.deadlines.read.timer, this.deadlines.write.timer, this.handshakeTimer]) if (t !== null) clearTimeout(t);
    this.deadlines.read.timer = this.deadlines.write.timer = this.handshakeTimer = null;
  }

  private checkOpen(): void {
    if (this.closed) throw this.opError('set', new ErrClosed());
  }

  /** A server's handshake is done: check the client's certificate as Node's tls.Server does. */
  private onServerSecure(server: ServerConfig): void {
    const s = this.socket as unknown as ServerSocketInternals;
    if (server.requestCert) {
      const err = s.ssl?.verifyError() ?? null;
      if (err !== null) {
        s.authorizationError = err.code ?? err.message;
        if (server.rejectUnauthorized) {
          this.failHandshake(err);
          return;
        }
      } else {
        s.authorized = true;
      }
    }
    // From now on the socket reports its errors as 'error' (as tls.Server's sockets do): http relies on it.
    if (typeof s._releaseControl === 'function') s._releaseControl();
    this.onSecure();
  }

  private onSecure(): void {
    if (this.closed || this.handshakeErr !== null) return;
    const s = this.socket;
    const cert = s.getPeerCertificate();
    this.state = Object.freeze({
      handshakeComplete: true,
      protocol: s.getProtocol(),
      cipher: s.getCipher(),
      alpnProtocol: s.alpnProtocol ?? false,
      servername: typeof s.servername === 'string' ? s.servername : null,
      peerCertificate: cert !== null && Object.keys(cert).length > 0 ? cert : null,
      authorized: s.authorized,
      authorizationError: (s.authorizationError as unknown as string | null) ?? null,
      resumed: s.isSessionReused(),
    });
    this.secure = true;
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.settleHandshake();
  }

  /** The handshake failed: it stays failed, and the connection is closed (its descriptor too). */
  private failHandshake(err: Error): void {
    if (this.secure || this.handshakeErr !== null) return;
    this.handshakeErr = this.opError('handshake', err);
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.settleHandshake(this.handshakeErr);
    this.wakeReader(this.handshakeErr);
    this.rejectWrites(this.handshakeErr);
    // Closed after the code awaiting the handshake has seen its error (a server logs it
    // before the peer sees the close).
    setImmediate(() => {
      this.socket.destroy();
      this.conn.close();
    });
  }

  private onSocketError(err: Error): void {
    if (!this.secure) {
      this.failHandshake(err);
      return;
    }
    if (this.failure !== null || this.closed) return;
    this.failure = err;
    this.wakeReader(null);  // the read reports it after any bytes that came before it
    this.rejectWrites(this.opError('write', err));
  }

  private onSocketClose(): void {
    this.conn.close();
    if (!this.secure) this.failHandshake(hangUp());
    this.wakeReader(null);
    if (this.writes.size > 0) this.rejectWrites(this.opError('write', this.failure ?? new SystemError(EPIPE, 'write')));
  }

  private opError(op: string, err: Error): OpError {
    if (err instanceof OpError && !(op === 'handshake' && err.op !== 'handshake')) return err;
    let source: Addr | undefined;
    let addr: Addr | undefined;
    try {
      source = this.conn.localAddr();
      addr = this.conn.remoteAddr();
    } catch {
      // Never known (an unnamed Unix socket): the error says what happened without them.
    }
    return new OpError(op, this.network, err instanceof OpError ? err.err : err, source, addr);
  }
}

/** Wraps `conn` as the server side of a TLS connection. */
function serverConn(conn: Conn, config: ServerConfig): TLSConn {
  const socket = new tls.TLSSocket(conn.stream(), config.socket);
  return new TLSConn(conn, socket, config);
}

/** Wraps `conn` as the client side; `host` is what the certificate is checked against when no servername is set. */
function clientConn(conn: Conn, options: tls.ConnectionOptions, host: string | undefined): TLSConn {
  const socket = tls.connect({ ...options, socket: conn.stream(), host: options.servername ?? host });
  return new TLSConn(conn, socket, null);
}

/**
 * Listens for TLS connections, like Go's `tls.Listen`: a {@link Listener} whose connections
 * are {@link TLSConn}s. `options` are {@link listen}'s and Node's tls server options: a
 * certificate (`key` and `cert`, `pfx`, `secureContext` or `SNICallback`), `ca` with
 * `requestCert` for client certificates (mTLS), `ALPNProtocols`, `sessionIdContext`,
 * `ticketKeys`, and `handshakeTimeout` (default 120 s: a peer that connects and sends nothing
 * is dropped then). The secure context is made once, here: session tickets resume across
 * the listener's connections. Accept returns each connection at once; its handshake runs
 * in the background and its first read or write waits for it. Throws like `listen`, or
 * with OpenSSL's error for an unusable key or certificate.
 *
 * ```ts
 * const ln = listenTLS('tcp', '127.0.0.1:8443', { key, cert });
 * await ln.serve(async (conn) => {
 *   for await (const data of conn) await conn.write(data);
 * });
 * ```
 */
export function listenTLS(network: Network, address: string, options: ListenTLSOptions): Listener<TLSConn> {
  const config = serverConfig(options);
  const ln = listen(network, address, options) as Listener<Conn>;
  return ln._mapConns((conn) => serverConn(conn, config));
}

/**
 * Connects and completes a TLS handshake, like Go's `tls.Dial`. `options` are {@link dial}'s
 * (`timeout` covers the handshake too) and Node's tls client options: `servername` (SNI;
 * defaults to the host of `address` when it is a name), `ca`, `cert`/`key` for a client
 * certificate, `ALPNProtocols`, `rejectUnauthorized` (default true), `session`. Rejects with
 * an {@link OpError} (op 'dial') whose `code` is Node's: 'DEPTH_ZERO_SELF_SIGNED_CERT',
 * 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ECONNREFUSED', …; the connection is
 * closed then.
 */
export async function dialTLS(network: Network, address: string, options: DialTLSOptions = {}): Promise<TLSConn> {
  if (network !== 'tcp' && network !== 'tcp4' && network !== 'tcp6' && network !== 'unix') {
    throw new TypeError(`network: expected 'tcp', 'tcp4', 'tcp6' or 'unix', got ${describeValue(network)}`);
  }
  const tlsOptions = clientConfig(options);
  const opts = options as DialTLSOptions;
  let host: string | undefined;
  if (network !== 'unix' && typeof address === 'string') {
    host = splitHostPort(address).host || 'localhost';
    if (tlsOptions.servername === undefined && isIP(host) === 0) tlsOptions.servername = host;
  }
  const start = Date.now();
  const conn = await dial(network, address, options);
  const tc = clientConn(conn, tlsOptions, host);
  const timeout = typeof opts.timeout === 'number' && opts.timeout > 0 ? opts.timeout : 0;
  if (timeout > 0) tc.setDeadline(start + timeout);
  const signal = opts.signal;
  const onAbort = (): void => tc.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await tc.handshake();
  } catch (err) {
    tc.close();
    if (signal?.aborted) throw new AbortError(signal.reason);
    const e = err as OpError;
    throw new OpError('dial', e.net ?? network, e.err ?? e, e.source, e.addr);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (timeout > 0) tc.setDeadline(0);
  return tc;
}

/**
 * The server side of TLS over an open connection, like Go's `tls.Server`: for STARTTLS,
 * after the plaintext part. `conn` belongs to the TLSConn from then on (no reads of your
 * own: any unread bytes must be TLS). Options as {@link listenTLS}'s TLS options; the
 * context is made per call unless `secureContext` is given.
 */
export function tlsServer(conn: Conn, options: TLSServerOptions): TLSConn {
  checkConn(conn);
  return serverConn(conn, serverConfig(options));
}

/**
 * The client side of TLS over an open connection, like Go's `tls.Client`: for STARTTLS.
 * The handshake starts at once; await {@link TLSConn.handshake} (or just read or write).
 * Without `servername` the certificate is checked against the peer's IP address.
 */
export function tlsClient(conn: Conn, options: TLSClientOptions = {}): TLSConn {
  checkConn(conn);
  const tlsOptions = clientConfig(options);
  let host: string | undefined;
  try {
    host = conn.remoteAddr().ip || undefined;
  } catch {
    // No peer address (an unnamed Unix socket): only servername can name the server.
  }
  return clientConn(conn, tlsOptions, host);
}
