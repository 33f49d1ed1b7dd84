// listen and dial: Go's net.Listen and net.Dial for TCP and Unix sockets, with validated arguments.
import { lookup } from 'node:dns/promises';
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { Addr, addrFromNative, checkUnixPath, nativeHostPort, splitHostPort } from './addr';
import { resolveLoopOptions, type LoopOptions } from './backends';
import { type Conn, kDefaultWriteQueueLimit } from './conn';
import { EINPROGRESS, ErrDeadlineExceeded, OpError, SystemError, describeValue } from './errors';
import { checkLimits, type ConnectionLimits } from './limits';
import { Listener } from './listener';
import { loopFor } from './loop';
import { checkProxyOptions, type ProxyProtocolOptions } from './proxy-accept';
import { dialPacket, isPacketNetwork, type PacketConn, type PacketNetwork } from './packet';
import { streamConn, type UnixConn } from './unix-conn';

/** The stream networks muxnet speaks. */
export type Network = 'tcp' | 'tcp4' | 'tcp6' | 'unix';

/** Options of {@link listen}. */
export interface ListenOptions extends LoopOptions {
  /** Length of the kernel's accept queue (default 511, capped by net.core.somaxconn). */
  backlog?: number;
  /** SO_REUSEPORT: several listeners (one per worker) share the port. Default false; TCP only. */
  reusePort?: boolean;
  /** SO_REUSEADDR: rebind while old connections are in TIME_WAIT. Default true; TCP only. */
  reuseAddr?: boolean;
  /** Bytes each accepted connection may queue before write() waits (default 1 MiB). */
  writeQueueLimit?: number;
  /** Connections over these limits are closed at once and counted: see {@link ConnectionLimits}. */
  limits?: ConnectionLimits;
  /**
   * Expect a PROXY protocol header (v1 or v2, as HAProxy, nginx, AWS NLB or Envoy send it)
   * first on every connection: it is read before `accept()` sees the connection, and
   * `remoteAddr()` is then the client it names (`localAddr()` the address that client
   * connected to). A connection with a bad, missing or late header is closed and counted;
   * the listener serves on. `true` for the defaults (5 s timeout, both versions).
   */
  proxyProtocol?: boolean | ProxyProtocolOptions;
}

/** Options of {@link dial}. */
export interface DialOptions extends LoopOptions {
  /** Milliseconds for the whole dial, name resolution included; 0 or absent: no limit. */
  timeout?: number;
  /** Aborts the dial; the promise rejects with an AbortError. */
  signal?: AbortSignal;
  /** Bytes the connection may queue before write() waits (default 1 MiB). */
  writeQueueLimit?: number;
}

/** What a dial rejects with when its signal aborts it, as Node's own APIs do. */
export class AbortError extends Error {
  /** 'ABORT_ERR', as Node's own aborted operations report it. */
  readonly code = 'ABORT_ERR';
  constructor(cause?: unknown) {
    super('The operation was aborted', { cause });
    this.name = 'AbortError';
  }
}

const NETWORKS: readonly string[] = ['tcp', 'tcp4', 'tcp6', 'unix'];

function checkNetwork(network: unknown): Network {
  if (typeof network !== 'string' || !NETWORKS.includes(network)) {
    throw new TypeError(`network: expected 'tcp', 'tcp4', 'tcp6' or 'unix', got ${describeValue(network)}`);
  }
  return network as Network;
}

function checkOptions<T extends object>(options: unknown): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`options: expected an object, got ${describeValue(options)}`);
  }
  return options as T;
}

function checkInteger(name: string, value: unknown, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`options.${name}: expected an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return value;
}

function checkBoolean(name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`options.${name}: expected a boolean, got ${describeValue(value)}`);
  }
  return value;
}

function familyOf(network: Network | PacketNetwork): 0 | 4 | 6 {
  return network === 'tcp4' || network === 'udp4' ? 4 : network === 'tcp6' || network === 'udp6' ? 6 : 0;
}

function checkFamily(network: Network | PacketNetwork, ip: string, address: string): void {
  const family = isIP(ip);
  if (familyOf(network) !== 0 && family !== familyOf(network)) {
    throw new TypeError(`address ${JSON.stringify(address)}: not an IPv${familyOf(network)} address, as network ${network} needs`);
  }
}

/**
 * Listens on a local address, like Go's `net.Listen`. Synchronous: the socket is bound and
 * listening when it returns. For TCP, `address` is "host:port", "[ipv6]:port" or ":port"
 * (all interfaces); the host is an IP address or "localhost" (listen resolves no other
 * names); port 0 picks a free port: read it from `addr()`. For 'unix', `address` is a socket
 * path or a Linux abstract name "@name": a socket file left by a process that is gone is
 * replaced, and the file is removed when the listener closes. Throws an {@link OpError}
 * such as EADDRINUSE, or a TypeError/RangeError naming the bad argument.
 */
export function listen(network: 'unix', address: string, options?: ListenOptions): Listener<UnixConn>;
export function listen(network: Network, address: string, options?: ListenOptions): Listener;
export function listen(network: Network, address: string, options?: ListenOptions): Listener | Listener<UnixConn> {
  const net = checkNetwork(network);
  if (typeof address !== 'string') {
    throw new TypeError(`address: expected a string (${net === 'unix' ? 'a socket path' : '"host:port"'}), got ${describeValue(address)}`);
  }
  const opts = checkOptions<ListenOptions>(options);
  const backlog = checkInteger('backlog', opts.backlog, 1, 0x7fffffff) ?? 511;
  const reuseAddr = checkBoolean('reuseAddr', opts.reuseAddr) ?? true;
  const reusePort = checkBoolean('reusePort', opts.reusePort) ?? false;
  const limit = checkInteger('writeQueueLimit', opts.writeQueueLimit, 1, Number.MAX_SAFE_INTEGER) ?? kDefaultWriteQueueLimit;
  const limiter = checkLimits(opts.limits, net);
  const proxy = checkProxyOptions(opts.proxyProtocol);
  const ln = listenStream(net, address, backlog, reuseAddr, reusePort, limit, opts);
  ln._setLimits(limiter);
  if (proxy !== undefined) ln._useProxyProtocol(proxy);
  return ln;
}

function listenStream(net: Network, address: string, backlog: number, reuseAddr: boolean, reusePort: boolean,
                      limit: number, opts: ListenOptions): Listener | Listener<UnixConn> {
  if (net === 'unix') {
    if (reusePort) throw new TypeError('options.reusePort: only TCP listeners can share a port');
    return listenUnix(checkUnixPath(address), backlog, limit, opts);
  }
  const loop = loopFor(resolveLoopOptions(opts));
  const { host, port } = splitHostPort(address);

  let ip: string;
  let v6only = false;
  if (host === '') {
    ip = net === 'tcp4' ? '0.0.0.0' : '::';
    v6only = net === 'tcp6';
  } else if (host === 'localhost') {
    ip = net === 'tcp6' ? '::1' : '127.0.0.1';
  } else if (isIP(host) !== 0) {
    ip = host;
    checkFamily(net, ip, address);
    v6only = net === 'tcp6';
  } else {
    throw new TypeError(`address ${JSON.stringify(address)}: listen needs an IP address, "localhost" or an empty host (names are resolved by dial only)`);
  }

  let id = loop.native.listen(ip, port, backlog, reuseAddr, reusePort, v6only);
  if (id < 0 && host === '' && net === 'tcp') {
    // No IPv6 on this machine: fall back to every IPv4 interface, as Go does.
    ip = '0.0.0.0';
    id = loop.native.listen(ip, port, backlog, reuseAddr, reusePort, false);
  }
  if (id < 0) throw new OpError('listen', net, new SystemError(id, 'bind'), undefined, new Addr(net, ip, port));
  const bound = loop.native.addr(id, false);
  const addr = typeof bound === 'number' ? new Addr(net, ip, port) : addrFromNative(net, bound);
  return new Listener(loop, id, net, addr, (conn) => streamConn(loop, conn, net, limit));
}

function listenUnix(path: string, backlog: number, limit: number, opts: ListenOptions): Listener<UnixConn> {
  const loop = loopFor(resolveLoopOptions(opts));
  const addr = Addr.unix(path);
  const id = loop.native.listen(path, -1, backlog, false, false, false);
  if (id < 0) throw new OpError('listen', 'unix', new SystemError(id, 'bind'), undefined, addr);
  let file: { dev: number; ino: number } | undefined;
  if (!path.startsWith('@')) {
    // Remembered so that close() removes this socket's file, not one bound later in its place.
    const st = statSync(path, { throwIfNoEntry: false });
    if (st !== undefined) file = { dev: st.dev, ino: st.ino };
  }
  return new Listener(loop, id, 'unix', addr, (conn) => streamConn(loop, conn, 'unix', limit) as UnixConn, file);
}

/**
 * Connects to a remote address, like Go's `net.Dial`. For TCP, `address` is "host:port" or
 * "[ipv6]:port"; a host name is resolved with Node's `dns.lookup` and each address is tried
 * in turn. For 'unix', `address` is a socket path or "@name". For 'udp', 'udp4', 'udp6' and
 * 'unixgram' it resolves with a connected {@link PacketConn} whose `read`/`write` are one
 * datagram each (no packet is sent by dialing). Rejects with an {@link OpError}
 * (ECONNREFUSED, ENOENT, a timeout whose `timeout()` is true, ...), an AbortError when
 * `signal` aborts, or a TypeError/RangeError naming the bad argument.
 */
export async function dial(network: PacketNetwork, address: string, options?: DialOptions): Promise<PacketConn>;
export async function dial(network: 'unix', address: string, options?: DialOptions): Promise<UnixConn>;
export async function dial(network: Network, address: string, options?: DialOptions): Promise<Conn>;
export async function dial(network: Network | PacketNetwork, address: string, options?: DialOptions): Promise<Conn | PacketConn> {
  if (isPacketNetwork(network)) return dialAny(network, address, options);
  return dialAny(checkNetwork(network), address, options);
}

async function dialAny(net: Network | PacketNetwork, address: string, options?: DialOptions): Promise<Conn | PacketConn> {
  if (typeof address !== 'string') {
    throw new TypeError(`address: expected a string (${net === 'unix' ? 'a socket path' : '"host:port"'}), got ${describeValue(address)}`);
  }
  const opts = checkOptions<DialOptions>(options);
  const timeout = checkInteger('timeout', opts.timeout, 0, 0x7fffffff) ?? 0;
  const limit = checkInteger('writeQueueLimit', opts.writeQueueLimit, 1, Number.MAX_SAFE_INTEGER) ?? kDefaultWriteQueueLimit;
  const signal = opts.signal;
  if (signal !== undefined && (signal === null || typeof signal.aborted !== 'boolean')) {
    throw new TypeError(`options.signal: expected an AbortSignal, got ${describeValue(signal)}`);
  }
  const loop = loopFor(resolveLoopOptions(opts));
  if (net === 'unix' || net === 'unixgram') {
    const remote = Addr.unix(checkUnixPath(address), net);
    if (signal?.aborted) throw new AbortError(signal.reason);
    if (net === 'unixgram') return dialPacket(loop, net, remote);
    return connectOne(loop, net, remote, timeout > 0 ? Date.now() + timeout : 0, signal, limit);
  }
  const { host, port } = splitHostPort(address);
  if (port === 0) throw new RangeError(`address ${JSON.stringify(address)}: dial needs a port from 1 to 65535`);
  if (signal?.aborted) throw new AbortError(signal.reason);

  const deadline = timeout > 0 ? Date.now() + timeout : 0;
  let ips: string[];
  if (isIP(host) !== 0) {
    checkFamily(net, host, address);
    ips = [host];
  } else {
    const name = host === '' ? 'localhost' : host;
    try {
      const found = await raceDeadline(lookup(name, { all: true, family: familyOf(net) }), net, deadline, signal);
      ips = found.map((a) => a.address);
    } catch (err) {
      if (err instanceof AbortError || err instanceof OpError) throw err;
      throw new OpError('dial', net, err as Error);
    }
  }

  let lastError: Error = new OpError('dial', net, new SystemError(-constants.errno.EHOSTUNREACH, 'connect'));
  for (const ip of ips) {
    const remote = new Addr(net, ip, port);
    if (deadline !== 0 && Date.now() >= deadline) break;
    try {
      if (isPacketNetwork(net)) return dialPacket(loop, net, remote);
      return await connectOne(loop, net, remote, deadline, signal, limit);
    } catch (err) {
      if ((err as Error).name === 'AbortError' || (err as OpError).timeout?.()) throw err;
      lastError = err as Error;
    }
  }
  if (deadline !== 0 && Date.now() >= deadline) {
    throw new OpError('dial', net, new ErrDeadlineExceeded(), undefined, new Addr(net, ips[0] ?? host, port));
  }
  throw lastError;
}

/**
 * Settles like `promise`, or rejects when `deadline` (epoch ms, 0 = none) passes or `signal`
 * aborts, after calling `giveUp`: name resolution and connecting share one dial timeout.
 */
function raceDeadline<T>(promise: Promise<T>, net: string, deadline: number, signal: AbortSignal | undefined,
                         addr?: Addr, giveUp?: () => void): Promise<T> {
  if (deadline === 0 && signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      finish();
      giveUp?.();
      reject(err);
    };
    const onAbort = (): void => fail(new AbortError(signal?.reason));
    const finish = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    if (deadline !== 0) {
      timer = setTimeout(() => fail(new OpError('dial', net, new ErrDeadlineExceeded(), undefined, addr)),
        Math.max(0, deadline - Date.now()));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    promise.then((value) => {
      finish();
      resolve(value);
    }, (err: unknown) => {
      finish();
      reject(err);
    });
  });
}

function connectOne(loop: ReturnType<typeof loopFor>, net: Network, remote: Addr, deadline: number,
                    signal: AbortSignal | undefined, limit: number): Promise<Conn> {
  const [host, port] = nativeHostPort(remote);
  const r = loop.native.connect(host, port, loop.scratch);
  if (r < 0 && r !== EINPROGRESS) {
    const err = new OpError('dial', net, new SystemError(r, 'connect'), undefined, remote);
    loop.countError(err.code);
    return Promise.reject(err);
  }
  const conn = streamConn(loop, loop.scratch[0], net, limit, r === 0);
  if (r === 0) return Promise.resolve(conn);
  const connected = new Promise<Conn>((resolve, reject) => {
    conn._waitConnected((errno) => {
      if (errno === 0) {
        resolve(conn);
      } else {
        conn.close();
        const err = new OpError('dial', net, new SystemError(errno, 'connect'), undefined, remote);
        loop.countError(err.code);
        reject(err);
      }
    }, remote);
  });
  // A dial given up closes its socket; close() also drops the connect callback.
  return raceDeadline(connected, net, deadline, signal, remote, () => conn.close());
}
