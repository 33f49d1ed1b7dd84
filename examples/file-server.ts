// Static file server, Go's http.FileServer(http.Dir(root)) cut down to a hand-written HTTP/1.1
// on muxnet's own API: GET and HEAD, keep-alive, one byte Range, the body sent by conn.sendFile
// (sendfile(2): the file's bytes never pass through JavaScript). 404 for what is not there,
// 403 for a path that leaves the root ("..", or a symlink pointing out), 400 for a bad request.
//   npx tsc -p examples/tsconfig.json && node .test-build/examples/file-server.js <root dir> [127.0.0.1:8081]
// Try it: curl -O http://127.0.0.1:8081/some/file   or   curl -r 0-99 http://127.0.0.1:8081/some/file
import { open, realpath, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { Conn } from 'muxnet';
import { listenOrExit, stopOnSignals } from './shared/cli';
import { lingerClose } from './shared/linger';

const usage = 'file-server.js <root dir> [host:port]';
const maxHead = 8 * 1024;  // a request head bigger than this gets 431: the per-connection buffer is fixed
const idleMs = 10_000;     // a keep-alive connection idle this long is closed
const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.txt': 'text/plain; charset=utf-8', '.json': 'application/json', '.css': 'text/css', '.js': 'text/javascript', '.png': 'image/png', '.jpg': 'image/jpeg' };

/** A request head: method, path (still %-encoded) and the headers this server looks at. */
interface Head { method: string; target: string; headers: Map<string, string>; keepAlive: boolean }

function parseHead(text: string): Head | null {
  const [requestLine, ...fields] = text.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.([01])$/.exec(requestLine);
  if (m === null) return null;
  const headers = new Map<string, string>();
  for (const f of fields) {
    const colon = f.indexOf(':');
    if (colon <= 0) return null;
    headers.set(f.slice(0, colon).trim().toLowerCase(), f.slice(colon + 1).trim());
  }
  const conn = (headers.get('connection') ?? '').toLowerCase();
  return { method: m[1], target: m[2], headers, keepAlive: m[3] === '1' ? conn !== 'close' : conn === 'keep-alive' };
}

/** The file `target` names under `root`, or the status refusing it. */
async function resolve(root: string, target: string): Promise<string | number> {
  let rel: string;
  try {
    rel = decodeURIComponent(target.split('?')[0]);
  } catch {
    return 400;  // a bad %-escape
  }
  if (!rel.startsWith('/') || rel.includes('\0')) return 400;
  if (rel.split(/[/\\]/).includes('..')) return 403;
  let file: string;
  try {
    file = await realpath(path.join(root, rel));
  } catch {
    return 404;
  }
  // A symlink inside the root may point out of it: the resolved path must still be inside.
  return file.startsWith(root + path.sep) ? file : 403;
}

/** The [start, end] (inclusive) of a single `bytes=` range over `size` bytes; null: serve it all; 416: unsatisfiable. */
function parseRange(header: string | undefined, size: number): [number, number] | null | 416 {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header);
  if (m === null || (m[1] === '' && m[2] === '')) return null;  // absent, multiple ranges or not bytes: the whole file
  const [start, end] = m[1] === '' ? [size - Number(m[2]), size - 1] : [Number(m[1]), m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)];
  return start < 0 || start > end || start >= size ? 416 : [start, end];
}

async function respond(conn: Conn, root: string, head: Head): Promise<string> {
  const { method, target, headers } = head;
  const reply = (status: number, fields: string[], body = ''): Promise<void> => conn.write(
    `HTTP/1.1 ${status} ${statusText[status]}\r\n${[...fields, `Content-Length: ${Buffer.byteLength(body)}`].join('\r\n')}\r\n` +
    `Connection: ${head.keepAlive ? 'keep-alive' : 'close'}\r\n\r\n${method === 'HEAD' ? '' : body}`);
  if (method !== 'GET' && method !== 'HEAD') return reply(405, ['Allow: GET, HEAD'], 'method not allowed\n').then(() => '405');
  // Bodies are not read here: a request with one is refused, and the connection closed after.
  if (headers.has('transfer-encoding') || Number(headers.get('content-length') ?? 0) !== 0) {
    head.keepAlive = false;
    return reply(400, [], 'request bodies not accepted\n').then(() => '400');
  }
  const file = await resolve(root, target);
  if (typeof file === 'number') return reply(file, [], `${statusText[file].toLowerCase()}\n`).then(() => String(file));
  const fh = await open(file, 'r').catch(() => null);  // gone since realpath, or unreadable
  if (fh === null) return reply(404, [], 'not found\n').then(() => '404');
  try {
    const st = await fh.stat();  // of the open file: what is sent is what was measured
    if (!st.isFile()) return await reply(404, [], 'not found\n').then(() => '404');
    const range = parseRange(headers.get('range'), st.size);
    if (range === 416) return await reply(416, [`Content-Range: bytes */${st.size}`], 'range not satisfiable\n').then(() => '416');
    const [start, end] = range ?? [0, st.size - 1];
    const length = end - start + 1;
    const status = range === null ? 200 : 206;
    await conn.write(`HTTP/1.1 ${status} ${statusText[status]}\r\nContent-Type: ${types[path.extname(file)] ?? 'application/octet-stream'}\r\n` +
      `Content-Length: ${length}\r\nAccept-Ranges: bytes\r\nLast-Modified: ${st.mtime.toUTCString()}\r\n` +
      `${range === null ? '' : `Content-Range: bytes ${start}-${end}/${st.size}\r\n`}Connection: ${head.keepAlive ? 'keep-alive' : 'close'}\r\n\r\n`);
    if (method === 'GET' && length > 0) await conn.sendFile(fh.fd, { offset: start, length });
    return `${status} ${length}`;
  } finally {
    await fh.close();
  }
}

const statusText: Record<number, string> = { 200: 'OK', 206: 'Partial Content', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 416: 'Range Not Satisfiable', 431: 'Request Header Fields Too Large' };

async function main(): Promise<void> {
  const [rootArg, address = '127.0.0.1:8081'] = process.argv.slice(2);
  const root = rootArg === undefined ? undefined : await realpath(rootArg).catch(() => undefined);
  if (root === undefined || !(await stat(root)).isDirectory()) {
    console.error(`root dir: expected a directory, got ${JSON.stringify(rootArg)}\nusage: ${usage}`);
    process.exit(2);
  }
  const ln = listenOrExit(address, usage);
  stopOnSignals(ln, 5000);
  await ln.serve(async (conn, signal) => {
    const buf = Buffer.alloc(maxHead);
    let filled = 0;
    const wake = (): void => conn.setReadDeadline(1);  // shutdown: an idle read ends at once
    signal.addEventListener('abort', wake, { once: true });
    try {
      while (!signal.aborted) {
        let end = buf.subarray(0, filled).indexOf('\r\n\r\n');
        while (end < 0) {
          if (filled === maxHead) {
            await conn.write('HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
            return await lingerClose(conn);
          }
          conn.setReadDeadline(Date.now() + idleMs);
          const n = await conn.read(buf.subarray(filled)).catch(() => null);  // idle too long, shut down, or reset: end
          if (n === null) return;
          filled += n;
          end = buf.subarray(0, filled).indexOf('\r\n\r\n');
        }
        const head = parseHead(buf.toString('latin1', 0, end));
        buf.copyWithin(0, end + 4, filled);  // a pipelined next request stays for the next turn
        filled -= end + 4;
        if (head === null) {
          await conn.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          return await lingerClose(conn);
        }
        console.log(`${conn.remoteAddr()} ${head.method} ${head.target} ${await respond(conn, root, head)}`);
        if (!head.keepAlive) return await lingerClose(conn);
      }
    } finally {
      signal.removeEventListener('abort', wake);
    }
  }, { onError: (err) => console.log(`connection error: ${(err as Error).message}`) });
}

void main();
