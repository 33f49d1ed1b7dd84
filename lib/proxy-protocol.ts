// The PROXY protocol (HAProxy's spec, v1 text and v2 binary): a pure parser of the header a load balancer sends first.
import { isIP } from 'node:net';
import { Addr } from './addr';

/** What a PROXY protocol failure is counted and reported under (stats().errors, `err.code`). */
export const kProxyErrorCode = 'ERR_PROXY_PROTOCOL';

/**
 * A header that is not a valid PROXY protocol header (or none at all, or one not complete in
 * time). `code` is 'ERR_PROXY_PROTOCOL'.
 */
export class ProxyProtocolError extends Error {
  /** 'ERR_PROXY_PROTOCOL'. */
  readonly code = kProxyErrorCode;
  constructor(message: string) {
    super(`PROXY protocol: ${message}`);
    this.name = 'ProxyProtocolError';
  }
}

/** One type-length-value field of a v2 header (e.g. 0x01 ALPN, 0x02 authority, 0x20 SSL). */
export interface ProxyTlv {
  /** The type byte. */
  type: number;
  /** The value: a view into the header's bytes. */
  value: Uint8Array;
}

/** A parsed PROXY protocol header. */
export interface ProxyHeader {
  /** 1 (text) or 2 (binary). */
  version: 1 | 2;
  /**
   * 'PROXY': the connection was relayed for `source`; 'LOCAL': the balancer's own connection
   * (a v2 health check). v1 headers are always 'PROXY'.
   */
  command: 'PROXY' | 'LOCAL';
  /**
   * The client the balancer relayed and the address it connected to; undefined when the
   * header carries none (v1 UNKNOWN, v2 LOCAL or an unspecified family): then the
   * transport's addresses stand.
   */
  source?: Addr;
  /** The address the client connected to (on the balancer); see {@link source}. */
  destination?: Addr;
  /** v2 TLVs after the addresses, in order; empty for v1 and v2 LOCAL. */
  tlvs: ProxyTlv[];
  /** The header's length in bytes: the connection's own data starts after it. */
  length: number;
}

/** Which versions {@link parseProxyHeader} accepts (both by default). */
export interface ProxyVersions {
  /** Accept v1 (text) headers. Default true. */
  allowV1?: boolean;
  /** Accept v2 (binary) headers. Default true. */
  allowV2?: boolean;
}

/**
 * What {@link parseProxyHeader} found: the header, or `need`: how many more bytes to read
 * before calling again. `need` is a lower bound of what a valid header still lacks, so
 * reading exactly that many never takes bytes of the data after the header.
 */
export type ProxyParse = {
  /** The complete header. */
  header: ProxyHeader;
  /** Absent once the header is complete. */
  need?: undefined;
} | {
  /** Absent until the header is complete. */
  header?: undefined;
  /** Bytes to read (at least 1) before calling again. */
  need: number;
};

/** The v2 signature: "\r\n\r\n\0\r\nQUIT\n". */
export const kProxyV2Signature: Readonly<Uint8Array> = Uint8Array.of(
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
// Spec 2.1: a v1 line is at most 107 bytes, "PROXY UNKNOWN\r\n" (15) the shortest; v2 has a
// 16-byte fixed part and announces the rest (at most 65535 bytes).
/** The longest v1 header, CRLF included (spec 2.1). */
export const kProxyV1MaxLength = 107;
const kV1MinLength = 15;
const kV2FixedLength = 16;
// v2 address block by family (UNSPEC, INET, INET6, UNIX): two addresses, and two ports for IP.
const kV2AddressBytes = [0, 12, 36, 216];
const CR = 0x0d;
const LF = 0x0a;

/**
 * Parses the PROXY protocol header at the start of `bytes` (what has been read so far).
 * Returns the header once complete, else how many more bytes to read; throws a
 * {@link ProxyProtocolError} as soon as the bytes cannot begin a valid header (so a client
 * that sends plain data is refused at its first byte). Bytes after the header are ignored.
 */
export function parseProxyHeader(bytes: Uint8Array, versions: ProxyVersions = {}): ProxyParse {
  const allowV1 = versions.allowV1 ?? true;
  const allowV2 = versions.allowV2 ?? true;
  if (bytes.length === 0) return { need: allowV1 ? kV1MinLength : kV2FixedLength };
  if (bytes[0] === CR && allowV2) return parseV2(bytes);
  if (bytes[0] === 0x50 /* P */ && allowV1) return parseV1(bytes);
  if (bytes[0] === CR || bytes[0] === 0x50) {
    throw new ProxyProtocolError(`version ${bytes[0] === CR ? 2 : 1} headers are not accepted here`);
  }
  throw new ProxyProtocolError('no header (the connection did not start with "PROXY " or the v2 signature)');
}

function parseV2(b: Uint8Array): ProxyParse {
  const sig = Math.min(b.length, kProxyV2Signature.length);
  for (let i = 0; i < sig; i++) {
    if (b[i] !== kProxyV2Signature[i]) throw new ProxyProtocolError('bad v2 signature');
  }
  if (b.length > 12 && b[12] >> 4 !== 2) throw new ProxyProtocolError(`bad v2 version ${b[12] >> 4} (expected 2)`);
  if (b.length > 12 && (b[12] & 0xf) > 1) throw new ProxyProtocolError(`bad v2 command ${b[12] & 0xf} (expected 0 LOCAL or 1 PROXY)`);
  if (b.length > 13 && (b[13] >> 4 > 3 || (b[13] & 0xf) > 2)) {
    throw new ProxyProtocolError(`bad v2 address family/protocol 0x${b[13].toString(16).padStart(2, '0')}`);
  }
  if (b.length < kV2FixedLength) {
    // Before the length is whole, its high byte and the family already bound the header from
    // below: an INET header is read in two reads (15 bytes, then the rest), not three.
    let body = b.length > 14 ? b[14] << 8 : 0;
    if (b.length > 13 && (b[12] & 0xf) === 1) body = Math.max(body, kV2AddressBytes[b[13] >> 4]);
    return { need: kV2FixedLength + body - b.length };
  }
  const length = kV2FixedLength + ((b[14] << 8) | b[15]);
  if (b.length < length) return { need: length - b.length };
  const local = (b[12] & 0xf) === 0;
  const header: ProxyHeader = { version: 2, command: local ? 'LOCAL' : 'PROXY', tlvs: [], length };
  // LOCAL: the balancer's own connection; whatever follows the fixed part is to be skipped.
  if (local) return { header };
  const family = b[13] >> 4;
  const transport = b[13] & 0xf;  // 1 STREAM, 2 DGRAM, 0 unspecified
  const body = b.subarray(kV2FixedLength, length);
  let at = 0;
  if (family === 1 || family === 2) {
    const size = family === 1 ? 4 : 16;
    if (body.length < kV2AddressBytes[family]) {
      throw new ProxyProtocolError(`v2 header of ${body.length} bytes is too short for ${family === 1 ? 'IPv4' : 'IPv6'} addresses`);
    }
    const net = (transport === 2 ? 'udp' : 'tcp') + (family === 1 ? '4' : '6');
    const ip = family === 1 ? ipv4 : ipv6;
    const view = new DataView(body.buffer, body.byteOffset, body.length);
    header.source = new Addr(net, ip(body.subarray(0, size)), view.getUint16(2 * size));
    header.destination = new Addr(net, ip(body.subarray(size, 2 * size)), view.getUint16(2 * size + 2));
    at = 2 * size + 4;
  } else if (family === 3) {
    if (body.length < kV2AddressBytes[3]) throw new ProxyProtocolError(`v2 header of ${body.length} bytes is too short for Unix addresses`);
    const net = transport === 2 ? 'unixgram' : 'unix';
    header.source = Addr.unix(unixPath(body.subarray(0, 108)), net);
    header.destination = Addr.unix(unixPath(body.subarray(108, 216)), net);
    at = 216;
  }
  while (at < body.length) {
    if (body.length - at < 3) throw new ProxyProtocolError('truncated v2 TLV');
    const size = (body[at + 1] << 8) | body[at + 2];
    if (at + 3 + size > body.length) throw new ProxyProtocolError('v2 TLV longer than the header');
    header.tlvs.push({ type: body[at], value: body.subarray(at + 3, at + 3 + size) });
    at += 3 + size;
  }
  return { header };
}

function ipv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6(b: Uint8Array): string {
  // IPv4-mapped addresses end in dotted form, as inet_ntop (and so the kernel's peers) print them.
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `::ffff:${ipv4(b.subarray(12))}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  // The canonical form (RFC 5952: the longest run of zero groups shortened), as Node prints peers.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function unixPath(b: Uint8Array): string {
  // A Linux abstract name starts with a NUL byte: printed "@name", as muxnet names them.
  const abstract = b[0] === 0;
  const rest = abstract ? b.subarray(1) : b;
  const nul = rest.indexOf(0);
  const name = Buffer.from(rest.buffer, rest.byteOffset, nul < 0 ? rest.length : nul).toString('utf8');
  return abstract ? `@${name}` : name;
}

// Shortest length of each field of a v1 line per protocol: "PROXY", the protocol, two
// addresses ("0.0.0.0", "::"), two ports. UNKNOWN takes anything after its name.
const kV1Fields: Record<string, number[]> = {
  TCP4: [5, 4, 7, 7, 1, 1],
  TCP6: [5, 4, 2, 2, 1, 1],
  UNKNOWN: [5, 7],
};

function parseV1(b: Uint8Array): ProxyParse {
  const end = Math.min(b.length, kProxyV1MaxLength);
  for (let i = 0; i < end; i++) {
    if (b[i] === LF) throw new ProxyProtocolError('v1 line feed without carriage return');
    if (b[i] !== CR) continue;
    if (i + 1 === b.length) return { need: 1 };
    if (b[i + 1] !== LF) throw new ProxyProtocolError('v1 carriage return without line feed');
    if (i + 2 > kProxyV1MaxLength) break;
    return { header: v1Header(latin1(b.subarray(0, i)), i + 2) };
  }
  if (b.length >= kProxyV1MaxLength) throw new ProxyProtocolError(`v1 header longer than ${kProxyV1MaxLength} bytes`);
  return { need: Math.min(kProxyV1MaxLength - b.length, v1Need(latin1(b))) };
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

/** The fewest bytes a valid v1 line beginning with `prefix` (no CR yet) still lacks. */
function v1Need(prefix: string): number {
  const fields = prefix.split(' ');
  if (fields.length === 1 ? !'PROXY'.startsWith(fields[0]) : fields[0] !== 'PROXY') {
    throw new ProxyProtocolError('no header (the connection did not start with "PROXY ")');
  }
  let best = Infinity;
  for (const [protocol, mins] of Object.entries(kV1Fields)) {
    if (fields.length === 2 ? !protocol.startsWith(fields[1]) : fields.length > 2 && fields[1] !== protocol) continue;
    const i = fields.length - 1;
    let need: number;
    if (protocol === 'UNKNOWN' && i >= 2) need = 2;  // anything, then CRLF
    else if (i >= mins.length) continue;
    else {
      need = Math.max(0, mins[i] - fields[i].length) + 2;
      for (let j = i + 1; j < mins.length; j++) need += 1 + mins[j];
    }
    best = Math.min(best, need);
  }
  if (best === Infinity) throw new ProxyProtocolError(`bad v1 header ${JSON.stringify(prefix)}`);
  return best;
}

function v1Header(line: string, length: number): ProxyHeader {
  const fields = line.split(' ');
  if (fields[0] !== 'PROXY') throw new ProxyProtocolError('no header (the connection did not start with "PROXY ")');
  if (fields[1] === 'UNKNOWN') return { version: 1, command: 'PROXY', tlvs: [], length };
  if (fields[1] !== 'TCP4' && fields[1] !== 'TCP6') {
    throw new ProxyProtocolError(`bad v1 protocol ${JSON.stringify(fields[1] ?? '')} (expected TCP4, TCP6 or UNKNOWN)`);
  }
  if (fields.length !== 6) throw new ProxyProtocolError(`bad v1 header ${JSON.stringify(line)} (expected 6 fields)`);
  const family = fields[1] === 'TCP4' ? 4 : 6;
  const net = `tcp${family}`;
  const [, , srcIp, dstIp, srcPort, dstPort] = fields;
  for (const ip of [srcIp, dstIp]) {
    if (isIP(ip) !== family) throw new ProxyProtocolError(`bad v1 address ${JSON.stringify(ip)} (expected IPv${family})`);
  }
  return {
    version: 1,
    command: 'PROXY',
    // v1 addresses are kept as sent (HAProxy sends them as inet_ntop prints them).
    source: new Addr(net, srcIp, v1Port(srcPort)),
    destination: new Addr(net, dstIp, v1Port(dstPort)),
    tlvs: [],
    length,
  };
}

function v1Port(text: string): number {
  // Spec: a decimal number from 0 to 65535; a leading zero is refused as HAProxy refuses it.
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) {
    throw new ProxyProtocolError(`bad v1 port ${JSON.stringify(text)} (expected 0 to 65535)`);
  }
  return Number(text);
}
