// HTTP/1.1 hello-world servers for the benchmark, one process each: `node http.js <form> <json loop options>`.
// Forms: go (a minimal keep-alive HTTP/1.1 fixture on muxnet, Go-style read/write loop),
// node (Node's http), node-stream (Node's http over muxnet: Listener.serveNode). Prints {"port","pid"} once listening; exits when stdin closes.
//
// The fixture is a benchmark fixture, not an HTTP server (muxnet has no HTTP layer, by design):
// it answers GET with "Hello, World!", keeps connections alive, serves pipelined requests and
// requests split across reads, and answers everything else with 400 and closes.
import * as http from 'node:http';
import { listen, type Conn } from '../../lib/index';
import { obeyStdin, ready, serverArgs } from './common';

const { form, options } = serverArgs();

const BODY = 'Hello, World!';
const CR = 13, LF = 10, SP = 32, HT = 9, COLON = 58, COMMA = 44;
// The header section limit, request line to the empty line included (nginx's default buffer).
const kMaxHeader = 8 * 1024;
// A connection's buffer holds one whole header section and the start of the next pipelined one.
const kBufferSize = 2 * kMaxHeader;
// After a 400 or `Connection: close`: how long and how much to drain before closing, so that
// unread request bytes do not make the kernel reset the connection before the client reads
// the answer (the lingering close of Apache and nginx).
const kLingerMs = 1000;
const kLingerBytes = 64 * 1024;


// Results of parse(): the offset after a complete request (> 0), or one of these.
const INCOMPLETE = -1;
const BAD = -2;
/** Set by parse() for the request it accepted: the connection closes after the answer. */
let closeAfter = false;

const NAME_CONNECTION = bytes('connection');
const NAME_CONTENT_LENGTH = bytes('content-length');
const NAME_TRANSFER_ENCODING = bytes('transfer-encoding');
const TOKEN_CLOSE = bytes('close');
const TOKEN_KEEP_ALIVE = bytes('keep-alive');

function bytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

function indexOfByte(buf: Uint8Array, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] === byte) return i;
  return -1;
}

/** buf[from, to) equals the lower-case ASCII `name`, ignoring case. */
function equalsLower(buf: Uint8Array, from: number, to: number, name: Uint8Array): boolean {
  if (to - from !== name.length) return false;
  for (let i = 0; i < name.length; i++) if ((buf[from + i] | 0x20) !== name[i]) return false;
  return true;
}

// RFC 9110 tchar: the bytes a header name may hold.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** Looks for `token` (lower case) in a comma-separated header value, ignoring case. */
function hasToken(buf: Uint8Array, from: number, to: number, token: Uint8Array): boolean {
  let p = from;
  while (p < to) {
    let e = indexOfByte(buf, COMMA, p, to);
    if (e < 0) e = to;
    let a = p, b = e;
    while (a < b && (buf[a] === SP || buf[a] === HT)) a++;
    while (b > a && (buf[b - 1] === SP || buf[b - 1] === HT)) b--;
    if (equalsLower(buf, a, b, token)) return true;
    p = e + 1;
  }
  return false;
}

/**
 * Parses the request at buf[start, end). Returns the offset just after it when it is a complete
 * GET without a body (closeAfter tells whether the connection closes after the answer),
 * INCOMPLETE when more bytes are needed, or BAD for anything this fixture does not handle.
 */
function parse(buf: Uint8Array, start: number, end: number): number {
  // Empty lines before a request line are ignored (RFC 9112 §2.2), but count towards the
  // limit, so that the unparsed bytes never outgrow the buffer.
  const limit = Math.min(end, start + kMaxHeader);
  const tooLong = end >= start + kMaxHeader;
  let p = start;
  while (p + 1 < limit && buf[p] === CR && buf[p + 1] === LF) p += 2;

  // Request line: GET SP request-target SP HTTP-version CRLF.
  let lf = indexOfByte(buf, LF, p, limit);
  if (lf < 0) return tooLong ? BAD : INCOMPLETE;
  const lineEnd = lf - 1;
  if (lf === p || buf[lineEnd] !== CR) return BAD;
  const sp1 = indexOfByte(buf, SP, p, lineEnd);
  if (sp1 - p !== 3 || buf[p] !== 0x47 || buf[p + 1] !== 0x45 || buf[p + 2] !== 0x54) return BAD;  // only GET
  const sp2 = indexOfByte(buf, SP, sp1 + 1, lineEnd);
  if (sp2 <= sp1 + 1) return BAD;  // no target, or an empty one
  for (let i = sp1 + 1; i < sp2; i++) if (buf[i] <= SP || buf[i] === 0x7f) return BAD;
  // "HTTP/1.1" or "HTTP/1.0", exactly.
  if (lineEnd - (sp2 + 1) !== 8 || buf[sp2 + 1] !== 0x48 || buf[sp2 + 2] !== 0x54 || buf[sp2 + 3] !== 0x54 ||
      buf[sp2 + 4] !== 0x50 || buf[sp2 + 5] !== 0x2f || buf[sp2 + 6] !== 0x31 || buf[sp2 + 7] !== 0x2e) return BAD;
  const minor = buf[sp2 + 8];
  if (minor !== 0x31 && minor !== 0x30) return BAD;
  let close = false;
  let keepAlive = minor === 0x31;

  // Header fields, up to the empty line.
  let q = lf + 1;
  for (;;) {
    lf = indexOfByte(buf, LF, q, limit);
    if (lf < 0) return tooLong ? BAD : INCOMPLETE;
    if (lf === q || buf[lf - 1] !== CR) return BAD;  // a bare LF
    const eol = lf - 1;
    if (eol === q) break;  // the empty line
    if (buf[q] === SP || buf[q] === HT) return BAD;  // obsolete line folding
    const colon = indexOfByte(buf, COLON, q, eol);
    if (colon <= q) return BAD;
    for (let i = q; i < colon; i++) if (TCHAR[buf[i]] === 0) return BAD;  // "Name : v" too
    let v = colon + 1;
    let w = eol;
    while (v < w && (buf[v] === SP || buf[v] === HT)) v++;
    while (w > v && (buf[w - 1] === SP || buf[w - 1] === HT)) w--;
    const nameLength = colon - q;
    if (nameLength === 10 && equalsLower(buf, q, colon, NAME_CONNECTION)) {
      if (hasToken(buf, v, w, TOKEN_CLOSE)) close = true;
      if (hasToken(buf, v, w, TOKEN_KEEP_ALIVE)) keepAlive = true;
    } else if (nameLength === 14 && equalsLower(buf, q, colon, NAME_CONTENT_LENGTH)) {
      // A body is something this fixture does not handle; "Content-Length: 0" is no body.
      if (w === v) return BAD;
      for (let i = v; i < w; i++) if (buf[i] !== 0x30) return BAD;
    } else if (nameLength === 17 && equalsLower(buf, q, colon, NAME_TRANSFER_ENCODING)) {
      return BAD;
    }
    q = lf + 1;
  }
  closeAfter = close || !keepAlive;
  return lf + 1;
}

// Answers, rebuilt when the second of the Date header changes.
let dateSecond = -1;
let okResponse = Buffer.alloc(0);
let okCloseResponse = Buffer.alloc(0);
const BAD_REQUEST = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1');

function refreshResponses(): void {
  const second = Math.floor(Date.now() / 1000);
  if (second === dateSecond) return;
  dateSecond = second;
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\n` +
    `Date: ${new Date(second * 1000).toUTCString()}\r\n`;
  // New buffers each time: a write in flight may still hold the previous ones.
  okResponse = Buffer.from(`${head}\r\n${BODY}`, 'latin1');
  okCloseResponse = Buffer.from(`${head}Connection: close\r\n\r\n${BODY}`, 'latin1');
}

/** The answers to `count` pipelined GETs, the last one closing if `close`. */
function answers(count: number, close: boolean): Buffer {
  refreshResponses();
  if (count === 1) return close ? okCloseResponse : okResponse;
  const parts: Buffer[] = new Array(count).fill(okResponse);
  if (close) parts[count - 1] = okCloseResponse;
  return Buffer.concat(parts);
}

/** Stops sending, drains what the client still sends (bounded in time and bytes), closes. */
async function lingeringClose(c: Conn, buf: Uint8Array): Promise<void> {
  try {
    c.closeWrite();
    c.setReadDeadline(Date.now() + kLingerMs);
    let drained = 0;
    while (drained < kLingerBytes) {
      const n = await c.read(buf);
      if (n === null) break;
      drained += n;
    }
  } catch {
    // the deadline, or a reset: close either way
  }
  c.close();
}

async function serveConn(c: Conn): Promise<void> {
  const buf = new Uint8Array(kBufferSize);
  let start = 0;  // the unparsed bytes are buf[start, end)
  let end = 0;
  try {
    for (;;) {
      // Most reads hold whole requests and the buffer is empty again: read at 0, no view made.
      const n = await c.read(end === 0 ? buf : buf.subarray(end));
      if (n === null) break;
      end += n;
      let count = 0;
      let bad = false;
      let close = false;
      while (start < end) {
        const next = parse(buf, start, end);
        if (next === INCOMPLETE) break;
        if (next === BAD) {
          bad = true;
          break;
        }
        count++;
        start = next;
        if (closeAfter) {
          close = true;
          break;
        }
      }
      if (count > 0) await c.write(answers(count, close));
      if (bad) await c.write(BAD_REQUEST);
      if (bad || close) return lingeringClose(c, buf);
      if (start === end) {
        start = end = 0;
      } else if (start > 0) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      }
    }
  } catch {
    // a reset at the end of a run
  }
  c.close();
}

async function serveGo(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) void serveConn(c);
}

function nodeHttpServer(): http.Server {
  return http.createServer({ noDelay: true }, (req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(400, { 'Content-Length': 0, Connection: 'close' });
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
}

function serveNode(): void {
  const server = nodeHttpServer();
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as import('node:net').AddressInfo).port);
  });
}

/** Node's http with the same handler, over muxnet: each connection a ConnStream. */
function serveNodeOverMuxnet(): void {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  void ln.serveNode(nodeHttpServer());
}

obeyStdin();
if (form === 'node') serveNode();
else if (form === 'node-stream') serveNodeOverMuxnet();
else void serveGo();
