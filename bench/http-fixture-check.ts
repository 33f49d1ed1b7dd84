// Correctness self-check of the HTTP benchmark fixture (servers/http.ts), run before it is
// measured: a fixture that answers wrongly would make its numbers meaningless.
import * as net from 'node:net';

// Every exchange is bounded: the fixture answers within milliseconds on loopback.
const kExchangeTimeoutMs = 3000;
// After the expected answers, how long to keep listening for an extra answer or a close.
const kSettleMs = 50;

interface Response {
  status: number;
  headers: Map<string, string>;
  body: string;
}

interface Exchange {
  responses: Response[];
  /** The server closed the connection (read end of stream) before the exchange ended. */
  closed: boolean;
}

/** Parses the complete responses at the start of `data`; returns them and the bytes used. */
function parseResponses(data: Buffer): { responses: Response[]; used: number } {
  const responses: Response[] = [];
  let used = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', used, 'latin1');
    if (headEnd < 0) break;
    const lines = data.subarray(used, headEnd).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]);
    if (status === null) {
      // Not a response this checker understands: reported as status 0, and parsing stops.
      responses.push({ status: 0, headers: new Map(), body: lines[0] });
      return { responses, used: data.length };
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? 0);
    if (data.length < headEnd + 4 + length) break;
    responses.push({ status: Number(status[1]), headers, body: data.subarray(headEnd + 4, headEnd + 4 + length).toString('latin1') });
    used = headEnd + 4 + length;
  }
  return { responses, used };
}

/**
 * Sends `parts` on one connection, `gapMs` apart, and collects responses until `expect` have
 * arrived (and, with `expectClose`, the server has closed), or the time limit passes.
 */
function exchange(port: number, parts: (string | Buffer)[], expect: number, expectClose: boolean, gapMs = 30): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let data = Buffer.alloc(0);
    let closed = false;
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses: parseResponses(data).responses, closed });
    };
    const timer = setTimeout(finish, kExchangeTimeoutMs);
    let lingering = false;
    const check = (): void => {
      const got = parseResponses(data).responses.length;
      if (got < expect) return;
      if (expectClose) {
        if (closed) finish();
      } else if (!lingering) {
        // Wait a little longer: an extra answer or a wrongful close would show now.
        lingering = true;
        setTimeout(finish, kSettleMs);
      }
    };
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk]);
      check();
    });
    socket.on('end', () => {
      closed = true;
      check();
      finish();
    });
    socket.on('error', () => {
      closed = true;
      finish();
    });
    socket.on('connect', async () => {
      for (let i = 0; i < parts.length && !settled; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (!socket.destroyed) socket.write(parts[i]);
      }
    });
  });
}

const GET = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

interface Case {
  name: string;
  parts: (string | Buffer)[];
  /** Expected statuses, in order; then whether the server must have closed. */
  statuses: number[];
  closes: boolean;
}

const cases: Case[] = [
  { name: 'one GET, kept alive', parts: [GET], statuses: [200], closes: false },
  { name: 'three pipelined GETs in one write', parts: [GET + GET + GET], statuses: [200, 200, 200], closes: false },
  { name: 'keep-alive: a second GET after the first answer', parts: [GET, GET], statuses: [200, 200], closes: false },
  { name: 'a GET split inside the request line', parts: ['GET / HT', 'TP/1.1\r\nHost: 127.0.0.1\r\n\r\n'], statuses: [200], closes: false },
  { name: 'a GET split inside the final CRLF', parts: ['GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r', '\n'], statuses: [200], closes: false },
  { name: 'one GET and half of the next, then the rest', parts: [`${GET}GET /x HTTP/1.1\r\nHo`, 'st: a\r\n\r\n'], statuses: [200, 200], closes: false },
  { name: 'Connection: close', parts: ['GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'], statuses: [200], closes: true },
  { name: 'HTTP/1.0 without keep-alive closes', parts: ['GET / HTTP/1.0\r\n\r\n'], statuses: [200], closes: true },
  { name: 'POST with a body', parts: ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello'], statuses: [400], closes: true },
  { name: 'GET with a chunked body', parts: ['GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], statuses: [400], closes: true },
  { name: 'HEAD (not handled)', parts: ['HEAD / HTTP/1.1\r\nHost: a\r\n\r\n'], statuses: [400], closes: true },
  { name: 'malformed request line', parts: ['GET /\r\nHost: a\r\n\r\n'], statuses: [400], closes: true },
  { name: 'unknown version', parts: ['GET / HTTP/2.0\r\n\r\n'], statuses: [400], closes: true },
  { name: 'header line without a colon', parts: ['GET / HTTP/1.1\r\nHost a\r\n\r\n'], statuses: [400], closes: true },
  { name: 'bare LF line ending', parts: ['GET / HTTP/1.1\nHost: a\n\n'], statuses: [400], closes: true },
  { name: 'header section over 8 KiB', parts: [`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`], statuses: [400], closes: true },
  { name: 'header section over 8 KiB, no end in sight', parts: [`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(5000)}`, 'a'.repeat(5000)], statuses: [400], closes: true },
  { name: 'a GET, then a POST in the same write', parts: [`${GET}POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx`], statuses: [200, 400], closes: true },
];

/**
 * Checks the fixture listening on `port`; throws an Error listing every case it got wrong.
 * Returns the number of cases checked.
 */
export async function checkHttpFixture(port: number): Promise<number> {
  const failures: string[] = [];
  for (const c of cases) {
    const got = await exchange(port, c.parts, c.statuses.length, c.closes);
    const statuses = got.responses.map((r) => r.status);
    const problems: string[] = [];
    if (statuses.join(',') !== c.statuses.join(',')) problems.push(`statuses [${statuses.join(', ')}], expected [${c.statuses.join(', ')}]`);
    if (c.closes && !got.closed) problems.push('connection left open, expected the server to close it');
    if (!c.closes && got.closed) problems.push('connection closed, expected it kept alive');
    got.responses.forEach((r, i) => {
      if (r.status === 200 && r.body !== 'Hello, World!') problems.push(`response ${i + 1}: body ${JSON.stringify(r.body)}`);
      if (r.status === 400 && r.headers.get('connection')?.toLowerCase() !== 'close') problems.push(`response ${i + 1}: 400 without Connection: close`);
      const last = i === got.responses.length - 1;
      if (r.status === 200 && c.closes && last && r.headers.get('connection')?.toLowerCase() !== 'close') {
        problems.push(`response ${i + 1}: closing 200 without Connection: close`);
      }
    });
    if (problems.length > 0) failures.push(`${c.name}: ${problems.join('; ')}`);
  }
  if (failures.length > 0) {
    throw new Error(`the HTTP fixture (bench/servers/http.ts) misbehaves, so its numbers would mean nothing:\n  ${failures.join('\n  ')}`);
  }
  return cases.length;
}
