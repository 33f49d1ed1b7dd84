// Network addresses: Go's host:port syntax, parsed and printed.
import { isIP } from 'node:net';

/**
 * An endpoint, like Go's `*net.TCPAddr` (ip and port) or `*net.UnixAddr` (path; ip is ''
 * and port 0 then).
 */
export class Addr {
  /** 'tcp', 'tcp4', 'tcp6', 'udp', 'udp4', 'udp6', 'unix' or 'unixgram'. */
  readonly network: string;
  /** The numeric IP address, without brackets; '' for a Unix address. */
  readonly ip: string;
  /** The port number, 0 to 65535. */
  readonly port: number;
  /** A Unix socket's path ("@name" for a Linux abstract name, '' when unnamed); '' for IP. */
  readonly path: string;

  constructor(network: string, ip: string, port: number, path = '') {
    this.network = network;
    this.ip = ip;
    this.port = port;
    this.path = path;
  }

  /** A Unix-domain address. */
  static unix(path: string, network: 'unix' | 'unixgram' = 'unix'): Addr {
    return new Addr(network, '', 0, path);
  }

  /** "127.0.0.1:8080" or "[::1]:8080", as Go prints it; a Unix address prints its path. */
  toString(): string {
    if (isUnix(this.network)) return this.path;
    if (this.network.startsWith('ip')) return this.ip;  // raw IP ('ip4:icmp'): no port
    return isIP(this.ip) === 6 ? `[${this.ip}]:${this.port}` : `${this.ip}:${this.port}`;
  }
}

/** The addon's [host, port] for an address: a Unix path goes with port -1. */
export function nativeHostPort(addr: Addr): [string, number] {
  return isUnix(addr.network) ? [addr.path, -1] : [addr.ip, addr.port];
}

/** An address the addon reported as [ip or path, port]. */
export function addrFromNative(network: string, [host, port]: [string, number]): Addr {
  return isUnix(network) ? new Addr(network, '', 0, host) : new Addr(network, host, port);
}

function isUnix(network: string): boolean {
  return network === 'unix' || network === 'unixgram';
}

// sun_path is 108 bytes: a path needs its terminating NUL inside, an abstract name does not.
const kMaxUnixPath = 107;

/**
 * Checks a Unix socket path ("@name": Linux abstract name). Throws a TypeError or
 * RangeError naming `address`: the kernel would refuse (or cut) what does not fit.
 */
export function checkUnixPath(address: string): string {
  if (address === '' || address === '@' || address.includes('\0')) {
    throw new TypeError(`address ${JSON.stringify(address)}: expected a Unix socket path or "@name" (no NUL bytes)`);
  }
  const bytes = Buffer.byteLength(address);
  const max = address.startsWith('@') ? kMaxUnixPath + 1 : kMaxUnixPath;
  if (bytes > max) {
    throw new RangeError(`address: a Unix socket path of ${bytes} bytes is longer than the ${max} the kernel allows ` +
      '(use a shorter path, e.g. a relative one, or an "@name")');
  }
  return address;
}

/**
 * Splits "host:port", "[v6]:port" or ":port" like Go's `net.SplitHostPort`. Throws a
 * TypeError naming `address` for anything else.
 */
export function splitHostPort(address: string): { host: string; port: number } {
  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0 || address[close + 1] !== ':') {
      throw new TypeError(`address ${JSON.stringify(address)}: expected "[ipv6]:port"`);
    }
    host = address.slice(1, close);
    portText = address.slice(close + 2);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0) throw new TypeError(`address ${JSON.stringify(address)}: missing port (expected "host:port")`);
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host.includes(':')) {
      throw new TypeError(`address ${JSON.stringify(address)}: too many colons (write IPv6 as "[ipv6]:port")`);
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new RangeError(`address ${JSON.stringify(address)}: port must be a number from 0 to 65535`);
  }
  return { host, port: Number(portText) };
}
