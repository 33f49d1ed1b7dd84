// listen's proxyProtocol option: reads an accepted connection's PROXY header exactly, then gives it the real client's address.
import { Addr } from './addr';
import type { Conn } from './conn';
import { ErrClosed, describeValue } from './errors';
import {
  ProxyProtocolError, kProxyErrorCode, kProxyV1MaxLength, parseProxyHeader, type ProxyHeader,
} from './proxy-protocol';

/** The `proxyProtocol` option of `listen`, as an object (`true` means all defaults). */
export interface ProxyProtocolOptions {
  /**
   * Milliseconds a connection has to send its complete header (default 5000); a silent or
   * slow peer is closed then.
   */
  timeout?: number;
  /** Accept v1 (text) headers. Default true. */
  allowV1?: boolean;
  /** Accept v2 (binary) headers. Default true. */
  allowV2?: boolean;
  /**
   * Called for each connection refused for its header (malformed, missing, incomplete in
   * time, or the peer left first), after it is closed, with the error and the transport's
   * peer (the balancer, or whoever connected). Such connections never reach `accept()`;
   * with or without this callback they are counted in `stats().errors`, under
   * 'ERR_PROXY_PROTOCOL' (or the failed read's own code, e.g. 'ECONNRESET').
   */
  onError?: (err: Error, peer: Addr | undefined) => void;
}

/** {@link ProxyProtocolOptions} checked, with the defaults filled in. @internal */
export interface ProxyAcceptOptions {
  timeout: number;
  allowV1: boolean;
  allowV2: boolean;
  onError: ((err: Error, peer: Addr | undefined) => void) | undefined;
}

const kDefaultTimeoutMs = 5000;

/**
 * Checks listen's `proxyProtocol` option: undefined when off, else the resolved options.
 * Throws a TypeError/RangeError naming the bad field. @internal
 */
export function checkProxyOptions(value: unknown): ProxyAcceptOptions | undefined {
  if (value === undefined || value === false) return undefined;
  const opts = (value === true ? {} : value) as ProxyProtocolOptions;
  if (opts === null || typeof opts !== 'object') {
    throw new TypeError(`options.proxyProtocol: expected true, false or an object, got ${describeValue(value)}`);
  }
  const timeout = opts.timeout ?? kDefaultTimeoutMs;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > 0x7fffffff) {
    throw new RangeError(`options.proxyProtocol.timeout: expected milliseconds, an integer from 1 to ${0x7fffffff}, got ${describeValue(timeout)}`);
  }
  const flag = (name: 'allowV1' | 'allowV2'): boolean => {
    const v = opts[name] ?? true;
    if (typeof v !== 'boolean') throw new TypeError(`options.proxyProtocol.${name}: expected a boolean, got ${describeValue(v)}`);
    return v;
  };
  const allowV1 = flag('allowV1');
  const allowV2 = flag('allowV2');
  if (!allowV1 && !allowV2) throw new TypeError('options.proxyProtocol: allowV1 and allowV2 are both false: no header could be accepted');
  if (opts.onError !== undefined && typeof opts.onError !== 'function') {
    throw new TypeError(`options.proxyProtocol.onError: expected a function, got ${describeValue(opts.onError)}`);
  }
  return { timeout, allowV1, allowV2, onError: opts.onError };
}

// The header each connection came with, for proxyHeader().
const headers = new WeakMap<Conn, ProxyHeader>();

/**
 * The PROXY protocol header `conn` arrived with (version, command, addresses, v2 TLVs such
 * as 0x01 ALPN or 0x20 SSL), or undefined for a connection accepted without the
 * `proxyProtocol` option of `listen`.
 */
export function proxyHeader(conn: Conn): ProxyHeader | undefined {
  return headers.get(conn);
}

/** An address from the header, under the connection's own network name where both are TCP. */
function asConnAddr(conn: Conn, addr: Addr | undefined): Addr | undefined {
  if (addr === undefined || !conn.network.startsWith('tcp') || !addr.network.startsWith('tcp')) return addr;
  return new Addr(conn.network, addr.ip, addr.port);
}

/**
 * Reads `conn`'s PROXY protocol header, exactly: never a byte of the data after it (each
 * read asks for no more than a valid header still lacks). On success the header's addresses
 * replace the connection's (`remoteAddr()` is the client) and it resolves true. On a bad,
 * missing or late header it closes `conn`, counts the failure with `countError`, reports
 * it to `onError`, and resolves false; closed by someone else meanwhile, false too. Never
 * rejects. @internal
 */
export async function readProxyHeader(conn: Conn, opts: ProxyAcceptOptions, countError: (code: string) => void): Promise<boolean> {
  // From Node's shared pool (no ArrayBuffer per connection); a v2 header with TLVs may need more: grown then.
  let buf: Uint8Array = Buffer.allocUnsafe(kProxyV1MaxLength);
  let have = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, opts.timeout);
  try {
    // Bounded: each pass reads at least one byte, and the parser refuses a header past its maximum length.
    for (;;) {
      const parsed = parseProxyHeader(buf.subarray(0, have), opts);
      if (parsed.header !== undefined) {
        const { header } = parsed;
        // A copy, so the TLV views do not keep the read buffer alive beyond the header.
        if (header.tlvs.length > 0) header.tlvs = header.tlvs.map((t) => ({ type: t.type, value: t.value.slice() }));
        headers.set(conn, header);
        if (header.command === 'PROXY') conn._setAddrs(asConnAddr(conn, header.destination), asConnAddr(conn, header.source));
        return true;
      }
      if (have + parsed.need > buf.length) {
        const bigger = new Uint8Array(have + parsed.need);
        bigger.set(buf.subarray(0, have));
        buf = bigger;
      }
      const n = await conn.read(buf.subarray(have, have + parsed.need));
      if (n === null) throw new ProxyProtocolError(`the peer closed the connection after ${have} bytes of the header`);
      have += n;
    }
  } catch (caught) {
    let err = caught as Error;
    if (timedOut) err = new ProxyProtocolError(`no complete header within ${opts.timeout} ms (${have} bytes came)`);
    else if (err instanceof ErrClosed) return false;  // the listener closed: nothing went wrong
    let peer: Addr | undefined;
    try {
      peer = conn.remoteAddr();
    } catch {
      // Never known: the error says what happened.
    }
    conn.close();
    // A failed read (e.g. ECONNRESET) was counted under its own code by the connection.
    if (err instanceof ProxyProtocolError) countError(kProxyErrorCode);
    if (opts.onError !== undefined) {
      try {
        opts.onError(err, peer);
      } catch (thrown) {
        process.emitWarning(`muxnet: proxyProtocol.onError threw: ${String(thrown)}`);
      }
    }
    return false;
  } finally {
    clearTimeout(timer);
  }
}
