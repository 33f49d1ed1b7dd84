// Descriptor: what Conn and PacketConn share, written once: lifetime on the loop and GC reclaim, deadlines, read arming, addresses, options, errors.
import { Addr, addrFromNative } from './addr';
import { EBADF, ErrClosed, ErrDeadlineExceeded, OpError, SystemError, describeValue } from './errors';
import { connInfo, readInfo, type ConnInfo } from './info';
import type { Loop, LoopHandle } from './loop';
import { DeadlineKind, type EventKind, SocketOption } from './native';

/** A Go bool parameter: anything else is a mistake (a truthy 'false' would turn the option on). @internal */
export function checkOn(on: unknown): void {
  if (typeof on !== 'boolean') throw new TypeError(`on: expected a boolean, got ${describeValue(on)}`);
}

/** A socket buffer size argument, or a RangeError naming `bytes`. @internal */
export function checkBytes(bytes: number): number {
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes > 0x7fffffff) {
    throw new RangeError(`bytes: expected a positive integer, got ${describeValue(bytes)}`);
  }
  return bytes;
}

/** A deadline argument as epoch ms (0 clears), or a TypeError naming `name`. @internal */
export function toDeadline(t: Date | number, name: string): number {
  const ms = t instanceof Date ? t.getTime() : t;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
    throw new TypeError(`${name}: expected a Date or epoch milliseconds (0 clears it), got ${describeValue(t)}`);
  }
  return ms;
}

// The last addresses made (see tryAddr): connections share them to save memory per connection.
let lastLocal: Addr | undefined;
let lastRemoteIp: string | undefined;

/**
 * A socket on a loop, as Go's `internal/poll.FD` is to its connections: the base of
 * {@link Conn} and {@link PacketConn}. Not constructed by users.
 *
 * Lifetime: adopted by the loop at construction, so a descriptor dropped without `close()`
 * while idle is collected and its socket closed; held strongly while {@link busy} (an
 * operation someone may await is in flight).
 */
export abstract class Descriptor implements LoopHandle {
  /** The network, e.g. 'tcp', 'unix', 'udp' or 'unixgram'. */
  readonly network: string;
  /** @internal */
  protected readonly loop: Loop;
  /** @internal */
  protected readonly id: number;
  /** @internal */
  protected closed = false;
  /** Readiness seen since the last EAGAIN. @internal */
  protected readable = true;
  /** The native side reports readiness. @internal */
  protected armed: boolean;
  /** @internal */
  protected readDeadline = 0;
  /** @internal */
  protected writeDeadline = 0;
  private readTag = 0;
  private writeTag = 0;
  /** The local address, cached once known (kept after close, as Go does). @internal */
  protected local: Addr | undefined;
  /** The remote address, cached once known. @internal */
  protected remote: Addr | undefined;

  /** @internal */
  constructor(loop: Loop, id: number, network: string) {
    this.loop = loop;
    this.id = id;
    this.network = network;
    this.armed = loop.edge;  // edge-triggered sockets report every edge, always
    loop.adopt(id, this);
  }

  /** The multiplexing backend this socket runs on, e.g. 'epoll'. */
  get backend(): string {
    return this.loop.backend;
  }

  /**
   * Closes the socket. Pending operations reject with {@link ErrClosed}; queued bytes are
   * dropped. The addresses stay readable. Calling it again does nothing.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.loop.forget(this.id, this);
    this.loop.native.close(this.id);
    this.abort();
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
    this.armDeadline(DeadlineKind.Read, ms, this.readTag);
  }

  /** Like {@link setReadDeadline}, for writes. */
  setWriteDeadline(deadline: Date | number): void {
    const ms = toDeadline(deadline, 'deadline');
    this.checkOpen();
    this.writeDeadline = ms;
    this.writeTag = (this.writeTag + 1) | 0;
    this.armDeadline(DeadlineKind.Write, ms, this.writeTag);
  }

  /** SO_RCVBUF in bytes (the kernel doubles it and applies its bounds). */
  setReadBuffer(bytes: number): void {
    this.setOption(SocketOption.ReadBuffer, checkBytes(bytes));
  }

  /** SO_SNDBUF in bytes (the kernel doubles it and applies its bounds). */
  setWriteBuffer(bytes: number): void {
    this.setOption(SocketOption.WriteBuffer, checkBytes(bytes));
  }

  /**
   * The local address, cached when the socket was made: still there after the peer resets
   * and after `close()`. Throws an {@link OpError} only if it was never known.
   */
  localAddr(): Addr {
    const addr = this.tryAddr(false);
    if (addr instanceof Addr) return addr;
    throw this.opError('set', this.closed ? new ErrClosed() : new SystemError(addr, 'getsockname'));
  }

  /**
   * What the socket is doing: addresses, state, bytes moved through muxnet, age, the socket
   * buffer sizes and, for TCP, the kernel's `TCP_INFO`. Throws {@link ErrClosed} after `close()`.
   */
  info(): ConnInfo {
    if (this.closed) throw this.opError('info', new ErrClosed());
    const info = this._describe();
    if (info === undefined) throw this.opError('info', new SystemError(EBADF, 'getsockopt'));
    return info;
  }

  /** @internal This handle's id on `loop`, or -1 (closed, or on another loop). */
  _handleOn(loop: Loop): number {
    return this.closed || loop !== this.loop ? -1 : this.id;
  }

  /** @internal */
  get _kind(): 'conn' {
    return 'conn';
  }

  /** @internal */
  _describe(): ConnInfo | undefined {
    if (this.closed) return undefined;
    const v = readInfo(this.loop.native, this.id);
    if (typeof v === 'number') return undefined;
    const local = this.tryAddr(false);
    const remote = this.tryAddr(true);
    return connInfo(v, {
      kind: 'conn',
      network: this.network,
      local: local instanceof Addr ? String(local) : '',
      remote: remote instanceof Addr ? String(remote) : '',
      backend: this.loop.backend,
    }, this.unixState());
  }

  /** @internal One event of a batch for this socket. */
  abstract _onEvent(kind: EventKind, a: number, b: number): void;

  /** An operation someone may await is in flight: the loop must hold this strongly. @internal */
  protected abstract busy(): boolean;
  /** The read deadline passed: fail the reads waiting now. @internal */
  protected abstract expireReads(): void;
  /** The write deadline passed: fail the writes waiting now. @internal */
  protected abstract expireWrites(): void;
  /**
   * close(): reject whatever is pending with an {@link ErrClosed} (wrapped per operation),
   * made only for what is pending: closing an idle socket builds no Error. @internal
   */
  protected abstract abort(): void;
  /** The state {@link info} reports for a socket without TCP_INFO. @internal */
  protected unixState(): string {
    return 'CONNECTED';
  }

  /** Holds this strongly while an operation is in flight. @internal */
  protected keep(): void {
    this.loop.hold(this.id, this);
  }

  /**
   * With nothing in flight, the loop holds this socket only weakly: dropped without
   * close(), it can be collected (and its socket closed by the loop's finalizer). @internal
   */
  protected settle(): void {
    if (!this.closed && !this.busy()) this.loop.hold(this.id, undefined);
  }

  /** Asks for readiness reports, unless they come already. @internal */
  protected armRead(): void {
    if (!this.armed) {
      this.loop.native.wantRead(this.id);
      this.armed = true;
    }
  }

  /** A read met EAGAIN: the native side armed readiness itself. @internal */
  protected drained(): void {
    this.readable = false;
    this.armed = true;
  }

  /**
   * Readiness with nobody waiting: level-triggered readiness would fire again and again,
   * so pause it (edge-triggered sockets report each edge once and need nothing). @internal
   */
  protected pauseIdleRead(): void {
    if (!this.loop.edge && this.armed) {
      this.loop.native.pauseRead(this.id);
      this.armed = false;
    }
  }

  /** The Deadline event: only a deadline still in force (same tag) fails anything. @internal */
  protected onDeadline(kind: number, tag: number): void {
    // Only operations waiting now fail (and count in stats()): one started after the
    // deadline has failed already, and counted itself.
    if (kind === DeadlineKind.Read && tag === this.readTag && this.readDeadline !== 0) this.expireReads();
    else if (kind === DeadlineKind.Write && tag === this.writeTag && this.writeDeadline !== 0) this.expireWrites();
  }

  /** An OpError for `op` when its deadline has passed already, else null. @internal */
  protected deadlinePassed(op: 'read' | 'write'): OpError | null {
    const deadline = op === 'read' ? this.readDeadline : this.writeDeadline;
    return deadline !== 0 && Date.now() >= deadline ? this.opError(op, new ErrDeadlineExceeded()) : null;
  }

  private armDeadline(kind: DeadlineKind, ms: number, tag: number): void {
    const delay = ms === 0 ? -1 : ms - Date.now();
    this.loop.native.setDeadline(this.id, kind, ms === 0 || delay <= 0 ? -1 : Math.ceil(delay), tag);
    if (ms !== 0 && delay <= 0) {
      this.onDeadline(kind, tag);
      this.settle();
    }
  }

  /** @internal */
  protected checkOpen(): void {
    if (this.closed) throw this.opError('set', new ErrClosed());
  }

  /** setsockopt through the loop, or an OpError. @internal */
  protected setOption(option: SocketOption, a: number, b = 0, c = 0, d = 0): void {
    this.checkOpen();
    const r = this.loop.native.setOption(this.id, option, a, b, c, d);
    if (r < 0) throw this.opError('set', new SystemError(r, 'setsockopt'));
  }

  /**
   * Caches both addresses now that the socket is connected (at accept, or when a dial
   * completes), so they survive a reset peer and close(). `remote` is the fallback when the
   * kernel no longer knows the peer. @internal
   */
  protected cacheAddrs(remote?: Addr): void {
    this.tryAddr(false);
    if (typeof this.tryAddr(true) === 'number' && remote !== undefined) this.remote = remote;
  }

  /**
   * The ends a PROXY protocol header named (the client, and the address it connected to)
   * replace the transport's in the cache; undefined leaves one as it is. @internal
   */
  _setAddrs(local: Addr | undefined, remote: Addr | undefined): void {
    if (local !== undefined) this.local = local;
    if (remote !== undefined) this.remote = remote;
  }

  /** The address, cached once known, or -errno (a reset socket has no peer any more). @internal */
  protected tryAddr(peer: boolean): Addr | number {
    const cached = peer ? this.remote : this.local;
    if (cached !== undefined || this.closed) return cached ?? EBADF;
    const r = this.loop.native.addr(this.id, peer);
    if (typeof r === 'number') return r;
    let addr: Addr;
    if (peer) {
      // Peers mostly share a few IPs: share the string with the last peer's.
      if (lastRemoteIp !== undefined && r[0] === lastRemoteIp) r[0] = lastRemoteIp;
      addr = this.remote = addrFromNative(this.network, r);
      if (addr.ip !== '') lastRemoteIp = addr.ip;
    } else {
      // Every connection a listener accepts has (mostly) one local address: share one
      // frozen Addr among them rather than keep a copy per connection.
      const last = lastLocal;
      // (IP addresses only: a Unix address has ip '' and its path in r[0].)
      addr = last !== undefined && last.network === this.network && last.ip !== '' &&
        last.ip === r[0] && last.port === r[1]
        ? last
        : (lastLocal = Object.freeze(addrFromNative(this.network, r)));
      this.local = addr;
    }
    return addr;
  }

  /** The error of `op` on this socket, naming both ends where known (Go's OpError). @internal */
  protected opError(op: string, err: Error): OpError {
    this.loop.countError((err as { code?: string }).code ?? 'ERR_UNKNOWN');
    const source = this.local;
    // An unnamed Unix socket (a dialing client's) has no address worth printing.
    const named = source !== undefined && (!source.network.startsWith('unix') || source.path !== '');
    return new OpError(op, this.network, err, named ? source : undefined, this.remote);
  }
}
