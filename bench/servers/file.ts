// File servers for the benchmark, one process each: `node file.js <form> <json loop options> <dir>`.
// A tiny protocol: the client sends a line naming a file of <dir> ("1m\n"), the server answers
// with the file's bytes and nothing else (the client knows the size), then waits for the next
// line on the same connection; an unknown name closes the connection. Forms: sendfile (muxnet
// conn.sendFile(path)), read (muxnet: the file read in 64 KiB chunks into one buffer, each
// written), node (Node's net, fs.createReadStream(path).pipe(socket)). Every form opens the
// file per request. Prints {"port","pid"} once listening; exits when stdin closes.
import { createReadStream, existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { listen, type Conn } from '../../lib/index';
import { obeyStdin, ready, serverArgs } from './common';

const { form, options } = serverArgs();
const dir = process.argv[4];
if (dir === undefined || !existsSync(dir)) throw new TypeError(`dir: expected a directory of files to serve, got ${dir}`);

const NL = 10;
// A request line is a name, far shorter than this.
const kMaxLine = 256;
// The read form's chunk: Node's createReadStream highWaterMark, and the echo servers' buffer.
const kChunk = 64 * 1024;

/** The file a request line names, or null for a name that is not a plain file name of `dir`. */
function fileOf(line: string): string | null {
  return /^[A-Za-z0-9._-]+$/.test(line) && line !== '.' && line !== '..' ? path.join(dir, line) : null;
}

/**
 * The request lines of one muxnet connection, one per call (null at end of stream, or for a
 * line too long). The client sends a line and waits for its answer, but a line may still
 * arrive in pieces.
 */
function lineReader(c: Conn): () => Promise<string | null> {
  const buf = new Uint8Array(kMaxLine);
  let have = 0;
  return async () => {
    for (;;) {
      const nl = buf.subarray(0, have).indexOf(NL);
      if (nl >= 0) {
        const line = Buffer.from(buf.buffer, buf.byteOffset, nl).toString('latin1');
        buf.copyWithin(0, nl + 1, have);
        have -= nl + 1;
        return line;
      }
      if (have === buf.length) return null;
      const n = await c.read(buf.subarray(have));
      if (n === null) return null;
      have += n;
    }
  };
}

/** The read form's answer: the file read in chunks into `buf`, each chunk written before the next read. */
async function readAndWrite(c: Conn, file: string, buf: Uint8Array): Promise<void> {
  const fh = await open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      await c.write(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

async function serveMuxnet(): Promise<void> {
  const ln = listen('tcp', '127.0.0.1:0', { ...options, backlog: 4096 });
  ready(ln.addr().port);
  for await (const c of ln) {
    void (async () => {
      const next = lineReader(c);
      const buf = form === 'read' ? new Uint8Array(kChunk) : null;
      try {
        for (let line = await next(); line !== null; line = await next()) {
          const file = fileOf(line);
          if (file === null) break;
          if (buf === null) await c.sendFile(file);
          else await readAndWrite(c, file, buf);
        }
      } catch {
        // a reset at the end of a run, or a file that is not there
      }
      c.close();
    })();
  }
}

function serveNode(): void {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let pending = '';
    let busy = false;
    // Lines that came while a file was being sent wait for it (the client sends one at a time).
    const next = (): void => {
      const nl = pending.indexOf('\n');
      if (busy || nl < 0) {
        if (pending.length > kMaxLine) socket.destroy();
        return;
      }
      const file = fileOf(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (file === null) {
        socket.destroy();
        return;
      }
      busy = true;
      const stream = createReadStream(file);
      stream.on('error', () => socket.destroy());
      stream.on('end', () => {
        busy = false;
        next();
      });
      stream.pipe(socket, { end: false });
    };
    socket.on('data', (data: Buffer) => {
      pending += data.toString('latin1');
      next();
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
    ready((server.address() as net.AddressInfo).port);
  });
}

obeyStdin();
if (form === 'node') serveNode();
else if (form === 'sendfile' || form === 'read') void serveMuxnet();
else throw new RangeError(`form: expected sendfile, read or node, got ${form}`);
