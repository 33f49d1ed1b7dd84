// Network addresses: Go's host:port syntax, parsed and printed.
import { isIP } from 'node:net';

/** A TCP endpoint, like Go's `*net.TCPAddr`. */
export class Addr {
  /** 'tcp', 'tcp4' or 'tcp6'. */
  readonly network: string;
  /** The numeric IP address, without brackets. */
  readonly ip: string;
  /** The port number, 0 to 65535. */
  readonly port: number;

  constructor(network: string, ip: string, port: number) {
    this.network = network;
    this.ip = ip;
    this.port = port;
  }

  /** "127.0.0.1:8080" or "[::1]:8080", as Go prints it. */
  toString(): string {
    return isIP(this.ip) === 6 ? `[${this.ip}]:${this.port}` : `${this.ip}:${this.port}`;
  }
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
