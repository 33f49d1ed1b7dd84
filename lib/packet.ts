// PacketConn: datagram sockets (UDP, unixgram) with Go's ReadFrom/WriteTo, deadlines, and batched I/O.
import { isIP } from 'node:net';
import { Addr, addrFromNative, checkUnixPath, nativeHostPort, splitHostPort } from './addr';
import { resolveLoopOptions, type LoopOptions } from './backends';
import { Descriptor, checkOn } from './descriptor';
import {
  EAGAIN, EMSGSIZE, ErrClosed, ErrDeadlineExceeded, OpError, SystemError, describeValue,
} from './errors';
import { loopFor, type Loop } from './loop';
import { EventKind, SocketOption } from './native';

/**
 * The datagram networks muxnet speaks: UDP, Unix datagrams, and raw IP as Go names it,
 * `ip4:<protocol>` / `ip6:<protocol>` (e.g. 'ip4:icmp', 'ip6:ipv6-icmp', 'ip4:17').
 */
export type PacketNetwork = 'udp' | 'udp4' | 'udp6' | 'unixgram' | `ip4:${string}` | `ip6:${string}`;

/** IP protocol numbers by the names Go accepts in `ip4:<name>`. */
const IP_PROTOCOLS: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, 'ipv6-icmp': 58, icmpv6: 58 };

/** For 'ip4:icmp' and the like: the family and protocol number; undefined for other networks. @internal */
export function rawNetwork(network: string): { family: 4 | 6; protocol: number } | undefined {
  const m = /^ip([46]):(.+)$/.exec(network);
  if (m === null) return undefined;
  const protocol = /^\d+$/.test(m[2]) ? Number(m[2]) : IP_PROTOCOLS[m[2]];
  if (protocol === undefined || protocol < 1 || protocol > 255) return undefined;
  return { family: m[1] === '4' ? 4 : 6, protocol };
}

/** Options of {@link listenPacket}. */
export interface ListenPacketOptions extends LoopOptions {
  /** SO_REUSEADDR (UDP): several sockets may bind the same address. Default false. */
  reuseAddr?: boolean;
}

/** One datagram received: bytes copied, the sender, and whether it was longer than the buffer. */
export interface Datagram {
  /** Bytes copied into the buffer. */
  n: number;
  /** The sender (for unixgram, its path; '' when unnamed). */
  addr: Addr;
  /** The datagram was longer than the buffer: the rest was discarded by the kernel. */
  truncated: boolean;
}

/** One datagram to send with {@link PacketConn.writeBatch}. */
export interface OutgoingDatagram {
  /** The datagram's bytes. */
  data: Uint8Array;
  /** The destination; omitted on a connected socket. */
  addr?: Addr | string;
}

type ReadKind = 0 | 1 | 2;  // readFrom, read, readBatch
const FROM: ReadKind = 0;
const READ: ReadKind = 1;
const BATCH: ReadKind = 2;

interface PendingRead {
  kind: ReadKind;
  bufs: Uint8Array[];
  resolve: (value: any) => void;
  reject: (err: Error) => void;
}

interface PendingWrite {
  datas: Uint8Array[];
  hosts: string[] | null;  // null: the connected peer
  ports: Int32Array | null;
  sent: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

const PACKET_NETWORKS: readonly string[] = ['udp', 'udp4', 'udp6', 'unixgram'];

/** A datagram network dial() supports (UDP, unixgram). @internal */
export function isPacketNetwork(network: unknown): network is PacketNetwork {
  return typeof network === 'string' && PACKET_NETWORKS.includes(network);
}

/** 'host:port' (numeric IP or localhost) or an Addr, as the addon's [host, port]. */
function destination(network: string, addr: Addr | string, name: string): [string, number] {
  if (addr instanceof Addr) return nativeHostPort(addr);
  if (typeof addr !== 'string') throw new TypeError(`${name}: expected an Addr or a string address, got ${describeValue(addr)}`);
  if (network === 'unixgram') return [checkUnixPath(addr), -1];
  if (rawNetwork(network) !== undefined) {
    if (isIP(addr) === 0) throw new TypeError(`${name} ${JSON.stringify(addr)}: expected a numeric IP address (raw IP has no ports)`);
    return [addr, 0];
  }
  const { host, port } = splitHostPort(addr);
  const ip = host === 'localhost' ? (network === 'udp6' ? '::1' : '127.0.0.1') : host;
  if (isIP(ip) === 0) throw new TypeError(`${name} ${JSON.stringify(addr)}: expected a numeric IP address and port`);
  if (port === 0) throw new RangeError(`${name} ${JSON.stringify(addr)}: expected a port from 1 to 65535`);
  return [ip, port];
}

function checkBuffer(buf: unknown, name: string): Uint8Array {
  if (!(buf instanceof Uint8Array)) throw new TypeError(`${name}: expected a Uint8Array or Buffer, got ${describeValue(buf)}`);
  return buf;
}


/**
 * A datagram socket, like Go's `net.PacketConn` (and, when dialed, a connected `*UDPConn`
 * whose `read`/`write` are one datagram each). Reads are served in the order they were
 * made; a datagram never spans two reads, and one longer than the buffer is reported as
 * truncated (`readFrom`) or rejected with EMSGSIZE (`read`), never silently cut.
 */
export class PacketConn extends Descriptor {
  /** 'udp', 'udp4', 'udp6', 'unixgram' or raw IP ('ip4:icmp', …). */
  declare readonly network: string;
  private readonly reads: PendingRead[] = [];
  private readonly writes: PendingWrite[] = [];
  private writeWanted = false;
  private lens: Int32Array = new Int32Array(64);
  /** ip4 raw sockets read the IPv4 header too; Go's ReadFrom leaves it out, and so do we. */
  private readonly stripIpv4Header: boolean;

  /** @internal */
  constructor(loop: Loop, id: number, network: string, remote?: Addr) {
    super(loop, id, network);
    this.remote = remote;
    this.stripIpv4Header = rawNetwork(network)?.family === 4;
    this.tryAddr(false);  // cached now: kept after close()
  }

  /** Receives one datagram into `buf`: `{ n, addr, truncated }`. */
  readFrom(buf: Uint8Array): Promise<Datagram> {
    return this.startRead(FROM, [checkBuffer(buf, 'buf')]) as Promise<Datagram>;
  }

  /**
   * Connected sockets: receives one datagram into `buf` and resolves with its length.
   * Rejects with EMSGSIZE when it was longer than `buf` (its bytes are lost).
   */
  read(buf: Uint8Array): Promise<number> {
    return this.startRead(READ, [checkBuffer(buf, 'buf')]) as Promise<number>;
  }

  /**
   * Receives up to `bufs.length` datagrams with one `recvmmsg` call, one per buffer;
   * resolves with at least one. The batched form of {@link readFrom}.
   */
  readBatch(bufs: Uint8Array[]): Promise<Datagram[]> {
    if (!Array.isArray(bufs) || bufs.length === 0) {
      return Promise.reject(new TypeError(`bufs: expected a non-empty array of Uint8Arrays, got ${describeValue(bufs)}`));
    }
    try {
      bufs.forEach((b, i) => checkBuffer(b, `bufs[${i}]`));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.startRead(BATCH, bufs) as Promise<Datagram[]>;
  }

  /** Sends `data` as one datagram to `addr` ("ip:port" or an Addr; a path for unixgram). */
  writeTo(data: Uint8Array | string, addr: Addr | string): Promise<void> {
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : checkBuffer(data, 'data');
      const [host, port] = destination(this.network, addr, 'addr');
      return this.startWrite([bytes], [host], Int32Array.of(port));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Connected sockets: sends `data` as one datagram to the peer. */
  write(data: Uint8Array | string): Promise<void> {
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : checkBuffer(data, 'data');
      return this.startWrite([bytes], null, null);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends the datagrams in order with as few `sendmmsg` calls as the socket buffer allows;
   * resolves when all are sent. Either every one has an `addr` or none (connected socket).
   */
  writeBatch(datagrams: OutgoingDatagram[]): Promise<void> {
    try {
      if (!Array.isArray(datagrams) || datagrams.length === 0) {
        throw new TypeError(`datagrams: expected a non-empty array of { data, addr? }, got ${describeValue(datagrams)}`);
      }
      const withAddr = datagrams[0]?.addr !== undefined;
      const datas: Uint8Array[] = [];
      const hosts: string[] | null = withAddr ? [] : null;
      const ports = withAddr ? new Int32Array(datagrams.length) : null;
      datagrams.forEach((d, i) => {
        datas.push(checkBuffer(d?.data, `datagrams[${i}].data`));
        if ((d.addr !== undefined) !== withAddr) {
          throw new TypeError(`datagrams[${i}].addr: give an addr for every datagram or for none`);
        }
        if (withAddr) {
          const [host, port] = destination(this.network, d.addr!, `datagrams[${i}].addr`);
          hosts!.push(host);
          ports![i] = port;
        }
      });
      return this.startWrite(datas, hosts, ports);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The connected peer, or undefined for an unconnected socket (as Go's returns nil). */
  remoteAddr(): Addr | undefined {
    return this.remote;
  }

  /** SO_BROADCAST: allows datagrams to broadcast addresses (without it they fail with EACCES). */
  setBroadcast(on: boolean): void {
    checkOn(on);
    this.setOption(SocketOption.Broadcast, on ? 1 : 0);
  }

  /**
   * Joins multicast group `group` (a numeric IP) on an interface: for IPv4 the interface's
   * address (default: the system's choice), for IPv6 its name (e.g. 'eth0').
   */
  joinGroup(group: string, iface = ''): void {
    this.membership(1, group, iface);
  }

  /** Leaves a group joined with {@link joinGroup}. */
  leaveGroup(group: string, iface = ''): void {
    this.membership(2, group, iface);
  }

  /** The interface multicast datagrams leave by: an IPv4 address, or an IPv6 interface name. */
  setMulticastInterface(iface: string): void {
    if (typeof iface !== 'string' || iface === '') throw new TypeError(`iface: expected an IPv4 address or an interface name, got ${describeValue(iface)}`);
    this.membership(3, '', iface);
  }

  /** IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS: how many hops multicast datagrams may travel (0-255). */
  setMulticastTTL(hops: number): void {
    if (!Number.isInteger(hops) || hops < 0 || hops > 255) throw new RangeError(`hops: expected an integer from 0 to 255, got ${describeValue(hops)}`);
    this.setOption(SocketOption.MulticastHops, hops);
  }

  /** IP_MULTICAST_LOOP: whether this host's own members receive what it sends to a group (default on). */
  setMulticastLoopback(on: boolean): void {
    checkOn(on);
    this.setOption(SocketOption.MulticastLoop, on ? 1 : 0);
  }

  /** @internal */
  _onEvent(kind: EventKind, a: number, b: number): void {
    if (kind === EventKind.Readable) this.onReadable();
    else if (kind === EventKind.Writable) this.onWritable();
    else if (kind === EventKind.Deadline) this.onDeadline(a, b);
    this.settle();
  }

  /** @internal */
  protected unixState(): string {
    return this.remote !== undefined ? 'CONNECTED' : 'UNCONNECTED';
  }

  /** @internal */
  protected busy(): boolean {
    return this.reads.length !== 0 || this.writes.length !== 0;
  }

  /** @internal */
  protected expireReads(): void {
    this.rejectReads(this.opError('read', new ErrDeadlineExceeded()));
  }

  /** @internal */
  protected expireWrites(): void {
    this.rejectWrites(this.opError('write', new ErrDeadlineExceeded()));
  }

  /** @internal */
  protected abort(): void {
    if (this.reads.length > 0) this.rejectReads(this.opError('read', new ErrClosed()));
    if (this.writes.length > 0) this.rejectWrites(this.opError('write', new ErrClosed()));
  }

  private startRead(kind: ReadKind, bufs: Uint8Array[]): Promise<unknown> {
    if (this.closed) return Promise.reject(this.opError('read', new ErrClosed()));
    if (kind === READ && this.remote === undefined) {
      return Promise.reject(new TypeError('read: this socket is not connected; use readFrom'));
    }
    const late = this.deadlinePassed('read');
    if (late !== null) return Promise.reject(late);
    return new Promise((resolve, reject) => {
      this.reads.push({ kind, bufs, resolve, reject });
      if (this.reads.length === 1) {
        this.keep();
        if (this.readable) this.serveReads();
        else this.armRead();
        this.settle();
      }
    });
  }

  /** Serves waiting reads in order until the socket has nothing (readiness is then armed). */
  private serveReads(): void {
    const native = this.loop.native;
    while (this.reads.length > 0 && !this.closed) {
      const r = this.reads[0];
      let result: unknown;
      if (r.kind === BATCH) {
        if (this.lens.length < r.bufs.length * 2) this.lens = new Int32Array(r.bufs.length * 2);
        const from: (string | number)[] = [];
        const n = native.recvMany(this.id, r.bufs, this.lens, from);
        if (n === EAGAIN) return this.drained();
        if (n < 0) {
          result = this.opError('read', new SystemError(n, 'recvmmsg'));
        } else {
          const out: Datagram[] = [];
          for (let i = 0; i < n; i++) {
            out.push({ n: this.payload(r.bufs[i], this.lens[2 * i]), truncated: this.lens[2 * i + 1] === 1,
              addr: addrFromNative(this.network, [from[2 * i] as string, from[2 * i + 1] as number]) });
          }
          result = out;
        }
      } else {
        const from: (string | number)[] = [];
        let n = native.recvFrom(this.id, r.bufs[0], this.loop.scratch, from);
        if (n === EAGAIN) return this.drained();
        if (n > 0) n = this.payload(r.bufs[0], n);
        if (n < 0) {
          result = this.opError('read', new SystemError(n, 'recvmsg'));
        } else {
          const truncated = this.loop.scratch[0] === 1;
          if (r.kind === READ) {
            result = truncated ? this.opError('read', new SystemError(EMSGSIZE, 'recvmsg')) : n;
          } else {
            result = { n, truncated, addr: addrFromNative(this.network, from as [string, number]) };
          }
        }
      }
      this.reads.shift();
      if (result instanceof Error) r.reject(result); else r.resolve(result);
    }
  }

  /** The datagram's length once an IPv4 header is moved out of the way (raw ip4 only). */
  private payload(buf: Uint8Array, n: number): number {
    if (!this.stripIpv4Header || n === 0) return n;
    const header = Math.min(n, (buf[0] & 0x0f) * 4);
    buf.copyWithin(0, header, n);
    return n - header;
  }

  private onReadable(): void {
    this.readable = true;
    if (this.reads.length === 0) {
      this.pauseIdleRead();
      return;
    }
    this.serveReads();
  }

  private startWrite(datas: Uint8Array[], hosts: string[] | null, ports: Int32Array | null): Promise<void> {
    if (this.closed) return Promise.reject(this.opError('write', new ErrClosed()));
    if (hosts === null && this.remote === undefined) {
      return Promise.reject(new TypeError('write: this socket is not connected; use writeTo'));
    }
    const late = this.deadlinePassed('write');
    if (late !== null) return Promise.reject(late);
    return new Promise((resolve, reject) => {
      this.writes.push({ datas, hosts, ports, sent: 0, resolve, reject });
      if (this.writes.length === 1) {
        this.keep();
        this.flushWrites();
        this.settle();
      }
    });
  }

  /** Sends queued datagrams in order until the socket buffer is full (then waits for room). */
  private flushWrites(): void {
    const native = this.loop.native;
    while (this.writes.length > 0 && !this.closed) {
      const w = this.writes[0];
      let r: number;
      if (w.datas.length === 1) {
        const [host, port] = w.hosts === null ? ['', 0] : [w.hosts[0], w.ports![0]];
        r = native.sendTo(this.id, w.datas[0], host, port);
        if (r >= 0) r = 1;
      } else {
        const rest = w.sent === 0 ? w.datas : w.datas.slice(w.sent);
        const hosts = w.hosts === null || w.sent === 0 ? w.hosts : w.hosts.slice(w.sent);
        const ports = w.ports === null || w.sent === 0 ? w.ports : w.ports.subarray(w.sent);
        r = native.sendMany(this.id, rest, hosts, ports);
      }
      if (r === EAGAIN) {
        if (!this.writeWanted) {
          this.writeWanted = true;
          native.wantWrite(this.id);
        }
        return;
      }
      if (r < 0) {
        this.writes.shift();
        w.reject(this.opError('write', new SystemError(r, w.datas.length === 1 ? 'sendto' : 'sendmmsg')));
        continue;
      }
      w.sent += r;
      if (w.sent < w.datas.length) continue;
      this.writes.shift();
      w.resolve();
    }
  }

  private onWritable(): void {
    this.writeWanted = false;
    this.flushWrites();
  }

  private rejectReads(err: Error): void {
    for (const r of this.reads.splice(0)) r.reject(err);
  }

  private rejectWrites(err: Error): void {
    for (const w of this.writes.splice(0)) w.reject(err);
  }


  private membership(op: 1 | 2 | 3, group: string, iface: string): void {
    if (op !== 3 && (typeof group !== 'string' || isIP(group) === 0)) {
      throw new TypeError(`group: expected a numeric multicast IP address, got ${describeValue(group)}`);
    }
    if (typeof iface !== 'string') throw new TypeError(`iface: expected a string, got ${describeValue(iface)}`);
    if (this.closed) throw this.opError('set', new ErrClosed());
    const r = this.loop.native.multicast(this.id, op, group, iface);
    if (r < 0) throw this.opError('set', new SystemError(r, 'setsockopt'));
  }
}

/**
 * Opens a datagram socket bound to `address`, like Go's `net.ListenPacket`: "host:port" for
 * UDP (port 0 picks one; an empty host binds every interface), a path or "@name" for
 * unixgram. Throws an {@link OpError} such as EADDRINUSE, or a TypeError/RangeError naming
 * the bad argument.
 */
export function listenPacket(network: PacketNetwork, address: string, options: ListenPacketOptions = {}): PacketConn {
  const raw = typeof network === 'string' ? rawNetwork(network) : undefined;
  if (!isPacketNetwork(network) && raw === undefined) {
    throw new TypeError(`network: expected 'udp', 'udp4', 'udp6', 'unixgram' or 'ip4:<protocol>'/'ip6:<protocol>' ` +
      `(e.g. 'ip4:icmp'), got ${describeValue(network)}`);
  }
  if (typeof address !== 'string') throw new TypeError(`address: expected a string, got ${describeValue(address)}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`options: expected an object, got ${describeValue(options)}`);
  if (options.reuseAddr !== undefined && typeof options.reuseAddr !== 'boolean') {
    throw new TypeError(`options.reuseAddr: expected a boolean, got ${describeValue(options.reuseAddr)}`);
  }
  const loop = loopFor(resolveLoopOptions(options));
  if (raw !== undefined) return listenRaw(loop, network, address, raw.family, raw.protocol);
  let host: string;
  let port: number;
  if (network === 'unixgram') {
    [host, port] = [checkUnixPath(address), -1];
  } else {
    ({ host, port } = splitHostPort(address));
    if (host === '') host = network === 'udp4' ? '0.0.0.0' : '::';
    else if (host === 'localhost') host = network === 'udp6' ? '::1' : '127.0.0.1';
    else if (isIP(host) === 0) throw new TypeError(`address ${JSON.stringify(address)}: expected a numeric IP, "localhost" or an empty host`);
  }
  let id = loop.native.bindPacket(host, port, options.reuseAddr ?? false);
  if (id < 0 && network === 'udp' && host === '::') {
    // No IPv6 on this machine: every IPv4 interface, as listen does for TCP.
    host = '0.0.0.0';
    id = loop.native.bindPacket(host, port, options.reuseAddr ?? false);
  }
  const where = network === 'unixgram' ? Addr.unix(host, network) : new Addr(network, host, port);
  if (id < 0) throw new OpError('listen', network, new SystemError(id, 'bind'), undefined, where);
  return new PacketConn(loop, id, network);
}

function listenRaw(loop: Loop, network: string, address: string, family: 4 | 6, protocol: number): PacketConn {
  const ip = address === '' ? (family === 4 ? '0.0.0.0' : '::') : address;
  if (isIP(ip) !== family) {
    throw new TypeError(`address ${JSON.stringify(address)}: expected an IPv${family} address (raw IP has no port) or ''`);
  }
  const id = loop.native.bindRaw(ip, protocol);
  if (id < 0) {
    const err = new OpError('listen', network, new SystemError(id, 'socket'), undefined, new Addr(network, ip, 0));
    if (err.code === 'EPERM' || err.code === 'EACCES') {
      err.message += ' (raw sockets need the CAP_NET_RAW capability: run as root, or grant it to Node with ' +
        '`sudo setcap cap_net_raw+ep "$(command -v node)"`)';
    }
    throw err;
  }
  return new PacketConn(loop, id, network);
}

/** dial() for datagram networks: a connected PacketConn. @internal */
export function dialPacket(loop: Loop, network: PacketNetwork, remote: Addr): PacketConn {
  const [host, port] = nativeHostPort(remote);
  const id = loop.native.dialPacket(host, port);
  if (id < 0) {
    const err = new OpError('dial', network, new SystemError(id, 'connect'), undefined, remote);
    loop.countError(err.code);
    throw err;
  }
  return new PacketConn(loop, id, network, remote);
}
